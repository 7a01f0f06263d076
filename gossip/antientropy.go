package gossip

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/hearsay-io/hearsay/internal/msglog"
	"github.com/hearsay-io/hearsay/merkle"
)

// Anti-entropy: gossip is fast but best effort; every AEInterval a node
// compares a Merkle tree of its retained messages (the log) with one random
// peer's, descending only into differing subtrees (package merkle), then
// fetches the bodies it lacks and pushes those the peer lacks. Messages
// obtained this way are accepted like any other: once, as the seen filter
// decides.

// antiEntropy is the core's anti-entropy state; nil when the core has no log.
type antiEntropy struct {
	log       msglog.Log
	tree      *merkle.Tree
	sessions  *merkle.Sessions[netip.AddrPort]
	responder *merkle.Responder
	interval  time.Duration // <= 0: the log and tree are kept, no session is started
	next      time.Time
	fetchIDs  []MessageID // scratch
}

// newAntiEntropy rebuilds the tree from the log a restarted node kept,
// showing visit each entry on the way.
func newAntiEntropy(cfg *Config, rng sessionRand, visit func(msglog.Entry)) (*antiEntropy, error) {
	tree, err := merkle.NewTree(merkle.DefaultTreeConfig())
	if err != nil {
		return nil, err
	}
	if err := cfg.Log.ForEach(func(e msglog.Entry) bool {
		tree.InsertLater(merkle.ID(e.ID))
		visit(e)
		return true
	}); err != nil {
		return nil, fmt.Errorf("gossip: reading the message log: %w", err)
	}
	ae := &antiEntropy{log: cfg.Log, tree: tree, interval: cfg.AEInterval}
	ae.sessions, err = merkle.NewSessions[netip.AddrPort](tree, merkle.SessionsConfig{
		Session: merkle.SessionConfig{Rand: rng, MaxPacketSize: cfg.MaxPacketSize},
	})
	if err != nil {
		return nil, fmt.Errorf("gossip: anti-entropy: %w", err)
	}
	ae.responder, err = merkle.NewResponder(tree, merkle.ResponderConfig{MaxPacketSize: cfg.MaxPacketSize})
	if err != nil {
		return nil, fmt.Errorf("gossip: anti-entropy: %w", err)
	}
	return ae, nil
}

// logAccepted records an accepted message in the log and the tree.
func (c *Core) logAccepted(e *cacheEntry) {
	ae := c.ae
	if ae == nil {
		return
	}
	evicted, err := ae.log.Append(e.msg.ID, e.msg.Created, e.enc)
	if err != nil {
		c.stats.LogErrors++
		return
	}
	for _, id := range evicted {
		ae.tree.RemoveLater(merkle.ID(id))
	}
	ae.tree.InsertLater(merkle.ID(e.msg.ID))
}

// pruneLog drops what is past Retention, by creation time: the same
// messages on every node, so that trees agree at the window's edge.
func (c *Core) pruneLog(now time.Time) {
	ae := c.ae
	if ae == nil {
		return
	}
	removed, err := ae.log.Prune(now.Add(-c.cfg.Retention))
	if err != nil {
		c.stats.LogErrors++
	}
	for _, id := range removed {
		ae.tree.RemoveLater(merkle.ID(id))
	}
}

// tickAntiEntropy starts a session when one is due and ticks the running ones.
func (c *Core) tickAntiEntropy(now time.Time) {
	ae := c.ae
	if ae == nil {
		return
	}
	if ae.interval > 0 && !now.Before(ae.next) {
		if ae.next.IsZero() {
			// A random first time spreads nodes started together.
			ae.next = now.Add(time.Duration(c.rng.Int64N(int64(ae.interval)) + 1))
		} else {
			ae.next = now.Add(ae.interval)
			var peer [1]netip.AddrPort
			if p := c.cfg.Peers.SamplePeers(c.rng, 1, peer[:0]); len(p) == 1 {
				if err := ae.sessions.Start(now, p[0]); err == nil {
					c.stats.AESessions++
				}
			}
		}
	}
	ae.sessions.Tick(now)
	c.flushAntiEntropy()
}

// nextAntiEntropy is when anti-entropy next needs a Tick (zero: never).
func (c *Core) nextAntiEntropy() time.Time {
	ae := c.ae
	if ae == nil {
		return time.Time{}
	}
	next := ae.sessions.NextTick()
	if ae.interval > 0 && (next.IsZero() || ae.next.Before(next)) {
		next = ae.next
	}
	return next
}

// handleAntiEntropy handles a datagram of types 0x10 to 0x1f.
func (c *Core) handleAntiEntropy(now time.Time, from netip.AddrPort, datagram []byte) {
	ae := c.ae
	if ae == nil {
		c.drop(DropUnknownType, 1)
		return
	}
	c.stats.AEBytesIn += uint64(len(datagram))
	switch typ, err := merkle.PacketTypeOf(datagram); {
	case err != nil:
		c.drop(DropUnknownType, 1)
	case typ == merkle.PacketQuery:
		start := len(c.arena)
		out, err := ae.responder.Answer(c.arena, datagram)
		if err != nil {
			c.drop(DropMalformed, 1)
			return
		}
		c.arena = out
		c.stats.AEBytesOut += uint64(len(c.arena) - start)
		c.emit(from, start)
	case typ == merkle.PacketAnswer:
		if err := ae.sessions.Handle(now, from, datagram); err != nil {
			if errors.Is(err, merkle.ErrMalformed) {
				c.drop(DropMalformed, 1)
			} // a stale answer (a resent query's second answer) is normal
		}
		c.flushAntiEntropy()
	}
}

// flushAntiEntropy queues the sessions' datagrams and acts on finished
// sessions: fetch what we lack, push what the peer lacks.
func (c *Core) flushAntiEntropy() {
	ae := c.ae
	rd := ae.sessions.Ready()
	for _, d := range rd.Datagrams {
		start := len(c.arena)
		c.arena = append(c.arena, d.Data...)
		c.stats.AEBytesOut += uint64(len(d.Data))
		c.emit(d.To, start)
	}
	for _, f := range rd.Finished {
		r := f.Result
		if r.Err != nil && !errors.Is(r.Err, merkle.ErrBudgetExceeded) {
			c.stats.AEFailures++
			continue
		}
		c.stats.AEMissing += uint64(len(r.Missing))
		c.fetch(f.Peer, r.Missing)
		c.pushBodies(f.Peer, r.Extra)
	}
}

// fetch asks peer for the bodies of ids, in as few datagrams as fit.
func (c *Core) fetch(peer netip.AddrPort, ids []merkle.ID) {
	per := MaxFetchIDs(c.cfg.MaxPacketSize)
	for len(ids) > 0 {
		n := min(per, len(ids))
		c.ae.fetchIDs = c.ae.fetchIDs[:0]
		for _, id := range ids[:n] {
			c.ae.fetchIDs = append(c.ae.fetchIDs, MessageID(id))
		}
		ids = ids[n:]
		start := len(c.arena)
		c.arena = AppendFetch(c.arena, c.ae.fetchIDs)
		c.stats.AEBytesOut += uint64(len(c.arena) - start)
		c.emit(peer, start)
	}
}

// pushBodies sends peer the logged messages it lacks, under MaxAnswerBytes.
func (c *Core) pushBodies(peer netip.AddrPort, ids []merkle.ID) {
	a := answer{c: c, to: peer, budget: c.cfg.MaxAnswerBytes, start: -1}
	for _, id := range ids {
		data, ok, err := c.ae.log.Get(id)
		if err != nil {
			c.stats.LogErrors++
			continue
		}
		if !ok {
			continue // pruned since the session began
		}
		if !a.addEncoded(data) {
			break
		}
		c.stats.AEPushed++
	}
	a.flush()
}

// handleFetch answers a FETCH with the logged bodies asked for.
func (c *Core) handleFetch(from netip.AddrPort, datagram []byte) {
	ae := c.ae
	if ae == nil {
		c.drop(DropUnknownType, 1)
		return
	}
	ids, err := DecodeFetch(ae.fetchIDs[:0], datagram)
	if err != nil {
		c.drop(DropMalformed, 1)
		return
	}
	ae.fetchIDs = ids
	c.stats.AEBytesIn += uint64(len(datagram))
	a := answer{c: c, to: from, budget: c.cfg.MaxAnswerBytes, start: -1}
	for _, id := range ids {
		data, ok, err := ae.log.Get(id)
		if err != nil {
			c.stats.LogErrors++
			continue
		}
		if ok && !a.addEncoded(data) {
			break
		}
	}
	a.flush()
}

// MerkleRoot returns the root of the tree over the retained messages, and
// the number of messages in the log; zero without a log.
func (c *Core) MerkleRoot() (merkle.Hash, int) {
	if c.ae == nil {
		return merkle.Hash{}, 0
	}
	return c.ae.tree.Root(), c.ae.tree.Len()
}
