package gossip

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/hearsay-io/hearsay/wire"

	"github.com/hearsay-io/hearsay/merkle"
	"github.com/hearsay-io/hearsay/msglog"
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
	// repairs are the bodies still to fetch from peers, or push to them,
	// after sessions (queueRepair).
	repairs []pendingRepair
	// horizon is the log's Horizon in Unix ms (math.MinInt64: none): a
	// message created before it is refused (pastHorizon).
	horizon int64
	// catchUp: the last session found more than it could report (its
	// budget or MaxDifferences ran out), so the next one starts as soon as
	// the fetches of this one are out, at catchUpAt, not AEInterval later.
	catchUp   bool
	catchUpAt time.Time
	// paceLeft more parts of this round's catch-up fetches go, the next
	// at paceAt (catchUpPaces).
	paceLeft int
	paceAt   time.Time
}

// pendingRepair is what is still to be fetched from one peer (or pushed to
// it), from due on.
type pendingRepair struct {
	peer netip.AddrPort
	ids  []merkle.ID
	push bool
	due  time.Time
	// bulk: a catch-up's share, fetched at up to half the peer's
	// MaxAnswerBytesPerRound per round instead of MaxAnswerBytes.
	bulk bool
}

// maxPendingRepairs bounds the repairs queued; a session's finish past it
// replaces the oldest.
const maxPendingRepairs = 32

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
	ae := &antiEntropy{log: cfg.Log, tree: tree, interval: cfg.AEInterval, horizon: math.MinInt64}
	if err := ae.readHorizon(); err != nil {
		return nil, err
	}
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
	// Inserted first: the message itself is evicted if it is the oldest.
	ae.tree.InsertLater(merkle.ID(e.msg.ID))
	for _, id := range evicted {
		ae.tree.RemoveLater(merkle.ID(id))
	}
	if ae.catchUp && c.pastGossipWindow(e.msg.Created.UnixMilli(), c.now.UnixMilli()) {
		c.expediteCatchUp(c.now)
	}
	if len(evicted) > 0 {
		c.stats.LogEvicted += uint64(len(evicted))
		if err := ae.readHorizon(); err != nil {
			c.stats.LogErrors++
		}
	}
}

// pastGossipWindow reports a message created longer ago than gossip offers
// one (CacheRounds rounds): one that arrives now comes from anti-entropy,
// from a peer's log. When the propagation cache is full such a message is
// accepted all the same, logged but not cached: the peers most likely
// hold it (anti-entropy finds it for those that do not), and a node
// catching up on hours of messages repairs them faster than the cache
// turns over (CacheMessages per CacheRounds × Interval: 16,700 a second
// by default), which would otherwise drop most of its repairs.
func (c *Core) pastGossipWindow(createdMillis, nowMillis int64) bool {
	return c.ae != nil && createdMillis < nowMillis-(time.Duration(c.cfg.CacheRounds)*c.cfg.Interval).Milliseconds()
}

// readHorizon takes the log's Horizon.
func (ae *antiEntropy) readHorizon() error {
	h, err := ae.log.Horizon()
	if err != nil {
		return fmt.Errorf("gossip: reading the message log: %w", err)
	}
	if !h.IsZero() {
		ae.horizon = max(ae.horizon, h.UnixMilli())
	}
	return nil
}

// pastHorizon reports a message created before the log's horizon: its
// like were evicted for the log's byte bound before their retention ended,
// and the seen filter forgets them with them (pruneLog), so accepting it
// might deliver it twice. Refused as too old.
func (c *Core) pastHorizon(createdMillis int64) bool {
	return c.ae != nil && createdMillis < c.ae.horizon
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
	// The seen filter forgets what was created before the horizon, which
	// accept refuses: so it holds no more than the log, whatever MaxAge.
	if ae.horizon != math.MinInt64 {
		if cutoff := timeFromMillis(ae.horizon).Add(c.cfg.MaxAge); cutoff.After(now) {
			if _, err := c.cfg.Filter.Prune(cutoff); err != nil {
				c.stats.FilterErrors++
			}
		}
	}
}

// tickAntiEntropy starts a session when one is due and ticks the running ones.
func (c *Core) tickAntiEntropy(now time.Time) {
	ae := c.ae
	if ae == nil {
		return
	}
	if ae.catchUp && ae.sessions.Len() == 0 && !ae.fetching() && !now.Before(ae.catchUpAt) {
		// Back to back while sessions find more than they can report; at
		// most once a round if none can start.
		ae.catchUpAt = now.Add(c.cfg.Interval)
		c.startSession(now)
	}
	if ae.interval > 0 && !now.Before(ae.next) {
		if ae.next.IsZero() {
			// A random first time spreads nodes started together.
			ae.next = now.Add(time.Duration(c.rng.Int64N(int64(ae.interval)) + 1))
		} else {
			ae.next = now.Add(ae.interval)
			if !ae.catchUp { // a catch-up runs its own sessions
				c.startSession(now)
			}
		}
	}
	if ae.paceLeft > 0 && !now.Before(ae.paceAt) {
		ae.paceLeft--
		ae.paceAt = ae.paceAt.Add(c.cfg.Interval / catchUpPaces)
		c.sendDue(now, true)
	}
	ae.sessions.Tick(now)
	c.flushAntiEntropy(now)
}

// startSession starts a session with a random peer.
func (c *Core) startSession(now time.Time) {
	var peer [1]netip.AddrPort
	if p := c.cfg.Peers.SamplePeers(c.rng, 1, peer[:0]); len(p) == 1 {
		if err := c.ae.sessions.Start(now, p[0]); err == nil {
			c.stats.AESessions++
		}
	}
}

// fetching reports fetches still to send.
func (ae *antiEntropy) fetching() bool {
	return slices.ContainsFunc(ae.repairs, func(r pendingRepair) bool { return !r.push && len(r.ids) > 0 })
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
	if ae.catchUp && ae.sessions.Len() == 0 && !ae.fetching() && (next.IsZero() || ae.catchUpAt.Before(next)) {
		next = ae.catchUpAt
	}
	if ae.paceLeft > 0 && (next.IsZero() || ae.paceAt.Before(next)) {
		next = ae.paceAt
	}
	return next
}

// handleAntiEntropy handles a datagram of types 0x10 to 0x1f.
func (c *Core) handleAntiEntropy(now time.Time, from netip.AddrPort, t wire.PacketType, body []byte) {
	ae := c.ae
	if ae == nil {
		c.drop(DropUnknownType, 1)
		return
	}
	c.stats.AEBytesIn += uint64(wire.HeaderSize + len(body))
	switch t {
	default:
		c.drop(DropUnknownType, 1)
	case wire.AEQuery, wire.AEQueryV2:
		// Both versions are answered, so that nodes of older releases
		// still reconcile with this one.
		answer := ae.responder.AnswerV2
		if t == wire.AEQuery {
			answer = ae.responder.Answer
		}
		start := len(c.arena)
		out, err := answer(c.arena, body)
		if err != nil {
			c.drop(DropMalformed, 1)
			return
		}
		c.arena = out
		c.stats.AEBytesOut += uint64(len(c.arena) - start)
		c.emit(from, start)
	case wire.AEAnswerV2, wire.AEAnswer:
		handle := ae.sessions.Handle
		if t == wire.AEAnswer {
			handle = ae.sessions.HandleV1 // from a peer of an older release
		}
		if err := handle(now, from, body); err != nil {
			if errors.Is(err, merkle.ErrMalformed) {
				c.drop(DropMalformed, 1)
			} // a stale answer (a resent query's second answer) is normal
		}
		c.flushAntiEntropy(now)
	}
}

// flushAntiEntropy queues the sessions' datagrams and acts on finished
// sessions: fetch what we lack, push what the peer lacks.
func (c *Core) flushAntiEntropy(now time.Time) {
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
		// A session over its budget or MaxDifferences, or whose final check
		// failed because a tree changed meanwhile, found true differences
		// all the same.
		truncated := errors.Is(r.Err, merkle.ErrBudgetExceeded) || errors.Is(r.Err, merkle.ErrTooManyDifferences)
		if r.Err != nil && !truncated && !errors.Is(r.Err, merkle.ErrUnverified) {
			c.stats.AEFailures++
			continue
		}
		c.stats.AEMissing += uint64(len(r.Missing))
		switch {
		case truncated && len(r.Missing) > 0:
			c.queueCatchUp(now, f.Peer, r.Missing)
		case ae.catchUp && len(r.Missing) > 0:
			// The rest of a catch-up: fetched at once like the rest.
			c.queueCatchUp(now, f.Peer, r.Missing)
			ae.catchUp = false
		default:
			ae.catchUp = false
			c.queueRepair(now, f.Peer, r.Missing, false)
		}
		if !truncated {
			// A peer far behind catches up by its own sessions, from
			// several peers at once; pushes of ours would mostly cross
			// its fetches and take its per-round allowance from them.
			c.queueRepair(now, f.Peer, r.Extra, true)
		}
	}
}

// catchUpPeers is how many peers a catch-up's fetches are spread over: a
// peer sends one requester at most MaxAnswerBytesPerRound per round, and
// a node that was down for an hour lacks hundreds of thousands of messages.
const catchUpPeers = 4

// catchUpProbe is how many of a first truncated session's Missing are
// fetched at once, to learn whether they are old.
const catchUpProbe = 64

// expediteCatchUp makes a catch-up's fetches due now: a repair older than
// gossip's window arrived, so what the session found is not on its way by
// gossip (mid-burst it would be, and the wait spares fetching it).
func (c *Core) expediteCatchUp(now time.Time) {
	ae := c.ae
	if ae == nil || !ae.catchUp {
		return
	}
	for i := range ae.repairs {
		if r := &ae.repairs[i]; r.bulk && r.due.After(now) {
			r.due = now
		}
	}
}

// queueCatchUp queues the fetch of what a truncated session found missing:
// a node far behind (restarted after hours, a long partition healed). The
// first such session's fetches wait for gossip's window as any do
// (queueRepair); those of the sessions that follow it back to back do not,
// since what gossip could still bring is fetched by then. The IDs are
// shared among the session's peer and up to catchUpPeers-1 others, which
// most likely hold them too; what one of them lacks, the next session
// finds again.
func (c *Core) queueCatchUp(now time.Time, peer netip.AddrPort, ids []merkle.ID) {
	ae := c.ae
	wait := time.Duration(c.cfg.CacheRounds) * c.cfg.Interval
	if ae.catchUp {
		wait = 0
	}
	var probe []merkle.ID
	if wait > 0 && len(ids) > catchUpProbe {
		// A probe goes at once: if what it brings is older than gossip's
		// window, nothing is worth waiting for (expediteCatchUp).
		probe, ids = ids[:catchUpProbe], ids[catchUpProbe:]
	}
	ae.catchUp = true
	ae.catchUpAt = now
	peers := append(make([]netip.AddrPort, 0, catchUpPeers), peer)
	for _, p := range c.cfg.Peers.SamplePeers(c.rng, catchUpPeers, nil) {
		if p != peer && len(peers) < catchUpPeers {
			peers = append(peers, p)
		}
	}
	share := (len(ids) + len(peers) - 1) / len(peers)
	for i, p := range peers {
		part := ids[min(i*share, len(ids)):min((i+1)*share, len(ids))]
		if len(part) == 0 {
			continue
		}
		ae.repairs = slices.DeleteFunc(ae.repairs, func(r pendingRepair) bool { return r.peer == p && !r.push })
		if len(ae.repairs) == maxPendingRepairs {
			c.stats.AERepairsDropped += uint64(len(ae.repairs[0].ids))
			ae.repairs = slices.Delete(ae.repairs, 0, 1)
		}
		ae.repairs = append(ae.repairs, pendingRepair{peer: p, ids: slices.Clone(part), due: now.Add(wait), bulk: true})
	}
	if len(probe) > 0 {
		ae.repairs = append(ae.repairs, pendingRepair{peer: peers[len(peers)-1], ids: slices.Clone(probe), due: now})
	}
}

// queueRepair queues the bodies of ids to be fetched from peer, or pushed
// to it, from a round after now + the cache lifetime (CacheRounds rounds)
// on, a round's worth at a time (sendRepairs).
//
// A session compares logs while gossip may still be carrying messages:
// what it finds missing then is mostly on its way. Fetched at once, by ID
// (in the tree's order, random as to sequence numbers), the bodies arrived
// a few here and there, and left holdings in so many pieces that the
// oldest gaps were given up to anti-entropy (holdings.add), which then took
// tens of seconds to repair what gossip would have delivered. Once gossip
// can no longer deliver them, what is still missing is fetched.
func (c *Core) queueRepair(now time.Time, peer netip.AddrPort, ids []merkle.ID, push bool) {
	if len(ids) == 0 {
		return
	}
	ae := c.ae
	r := pendingRepair{peer: peer, ids: slices.Clone(ids), push: push,
		due: now.Add(time.Duration(c.cfg.CacheRounds) * c.cfg.Interval)}
	if i := slices.IndexFunc(ae.repairs, func(q pendingRepair) bool { return q.peer == peer && q.push == push }); i >= 0 {
		// The newer session knows better what differs; the first one's
		// wait still counts, or sessions more frequent than the wait would
		// put the repair off for ever.
		r.due = ae.repairs[i].due
		ae.repairs[i] = r
		return
	}
	if len(ae.repairs) == maxPendingRepairs {
		c.stats.AERepairsDropped += uint64(len(ae.repairs[0].ids))
		ae.repairs = slices.Delete(ae.repairs, 0, 1)
	}
	ae.repairs = append(ae.repairs, r)
}

// sendRepairs fetches from or pushes to each peer with repairs due a
// round's worth; the core calls it once per round.
func (c *Core) sendRepairs(now time.Time) {
	ae := c.ae
	if ae == nil || len(ae.repairs) == 0 {
		return
	}
	c.sendDue(now, false)
	if ae.fetching() {
		ae.paceLeft, ae.paceAt = catchUpPaces-1, now.Add(c.cfg.Interval/catchUpPaces)
	}
}

// catchUpPaces is how many parts a round's catch-up fetches go in, spread
// over the round: at once, the answers of four peers (2 MiB) overflowed a
// real node's socket buffer while it was busy storing the last ones.
const catchUpPaces = 4

// sendDue sends the repairs due: all, or only the catch-up's (bulk).
func (c *Core) sendDue(now time.Time, bulkOnly bool) {
	ae := c.ae
	wasFetching := ae.fetching()
	for i := range ae.repairs {
		r := &ae.repairs[i]
		switch {
		case now.Before(r.due), bulkOnly && !r.bulk:
		case r.push:
			c.sendPush(r)
		default:
			c.sendFetch(r)
		}
	}
	fetching := ae.fetching()
	ae.repairs = slices.DeleteFunc(ae.repairs, func(r pendingRepair) bool { return len(r.ids) == 0 })
	if ae.catchUp && wasFetching && !fetching {
		// The last fetches are out: the next session starts once their
		// answers are in, a round later.
		ae.catchUpAt = now.Add(c.cfg.Interval)
	}
}

// sendFetch asks r.peer for as many of r.ids as their answers can bring in
// one round: about MaxAnswerBytes, estimated from the size of the messages
// logged. Asking for everything at once would have the peer answer with
// more than it sends a peer per round (MaxAnswerBytesPerRound), and the
// excess would be lost. IDs that arrived meanwhile are skipped.
func (c *Core) sendFetch(r *pendingRepair) {
	ae := c.ae
	perID := c.cfg.MaxPacketSize / 4
	if n := ae.log.Len(); n > 0 {
		perID = max(64, int(ae.log.Bytes()/int64(n))+messageOverheadEstimate)
	}
	budget := max(1, c.cfg.MaxAnswerBytes/perID)
	if r.bulk {
		budget = max(budget/catchUpPaces, c.cfg.MaxAnswerBytesPerRound/2/catchUpPaces/perID)
	}
	per := MaxFetchIDs(c.cfg.MaxPacketSize)
	ids := r.ids
	for len(ids) > 0 && budget > 0 {
		ae.fetchIDs = ae.fetchIDs[:0]
		for len(ids) > 0 && len(ae.fetchIDs) < min(per, budget) {
			id := ids[0]
			ids = ids[1:]
			if has, err := ae.log.Contains(id); err == nil && has {
				continue
			}
			ae.fetchIDs = append(ae.fetchIDs, MessageID(id))
		}
		if len(ae.fetchIDs) == 0 {
			break
		}
		budget -= len(ae.fetchIDs)
		start := len(c.arena)
		c.arena = AppendFetch(c.arena, ae.fetchIDs)
		c.stats.AEBytesOut += uint64(len(c.arena) - start)
		c.emit(r.peer, start)
	}
	r.ids = ids
}

// messageOverheadEstimate is added to the average logged size to estimate
// what one message adds to an answer.
const messageOverheadEstimate = 8

// sendPush sends r.peer the logged messages of r.ids, as many as this
// round allows it (MaxAnswerBytes, and what is left of
// MaxAnswerBytesPerRound).
func (c *Core) sendPush(r *pendingRepair) {
	a := c.answerTo(r.peer, c.cfg.MaxAnswerBytes)
	ids := r.ids
	for len(ids) > 0 {
		data, ok, err := c.ae.log.Get(ids[0])
		if err != nil {
			c.stats.LogErrors++
		}
		if ok && !a.addEncoded(data) {
			break
		}
		if ok {
			c.stats.AEPushed++
		}
		ids = ids[1:] // pruned since the session began, or sent
	}
	a.finish()
	r.ids = ids
}

// handleFetch answers a FETCH with the logged bodies asked for.
func (c *Core) handleFetch(from netip.AddrPort, body []byte) {
	ae := c.ae
	if ae == nil {
		c.drop(DropUnknownType, 1)
		return
	}
	ids, err := decodeFetchBody(ae.fetchIDs[:0], body)
	if err != nil {
		c.drop(DropMalformed, 1)
		return
	}
	ae.fetchIDs = ids
	c.stats.AEBytesIn += uint64(wire.HeaderSize + len(body))
	a := c.answerTo(from, c.cfg.MaxAnswerBytes)
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
	a.finish()
}

// MerkleRoot returns the root of the tree over the retained messages, and
// the number of messages in the log; zero without a log.
func (c *Core) MerkleRoot() (merkle.Hash, int) {
	if c.ae == nil {
		return merkle.Hash{}, 0
	}
	return c.ae.tree.Root(), c.ae.tree.Len()
}
