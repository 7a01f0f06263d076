package gossip

import (
	"net/netip"
	"time"

	"github.com/hearsay-io/hearsay/wire"
)

// The answering side: a pull is answered from the propagation cache with
// what its digest lacks, within the puller's budgets (budget.go).

// handlePull answers a pull with the cached messages its digest says the
// requester lacks, packed into as few datagrams as fit, under a byte budget.
func (c *Core) handlePull(now time.Time, from netip.AddrPort, body []byte) {
	req, err := c.pulls.decode(body)
	if err != nil {
		c.drop(DropMalformed, 1)
		return
	}
	c.stats.PullsIn++
	c.observePull(req)
	c.notePullStatements(from, req.Statements)
	skipFresh := false
	if c.longPoll() {
		skipFresh = req.LongPoll.SkipFresh
		// The newest pull of a peer replaces its parked one, if any:
		// parked after its answer is built (a full table still answers),
		// or, if it asks not to be, just forgotten.
		old := c.parked.find(from)
		if lp := req.LongPoll; lp.Park > 0 && req.PartitionBits == 0 {
			parked := req
			defer func() {
				c.park(now, from, parked)
				if parked.LongPoll.Eager > 0 {
					c.reciprocate(now, from)
				}
			}()
		} else if old != nil {
			defer c.unpark(now, old)
		}
		req = c.withSent(now, req, old)
	}
	// A small digest is scanned; a large one indexed, in a map that a core
	// only pays for once it meets one.
	small := len(req.Origins) <= smallDigest
	if !small {
		if c.wanted == nil {
			c.wanted = make(map[OriginTag]int)
		}
		clear(c.wanted)
		for i := range req.Origins {
			c.wanted[req.Origins[i].Origin] = i
		}
	}
	a := c.answerTo(from, max(c.cfg.MaxPacketSize, c.cfg.MaxAnswerBytes>>req.PartitionBits))
	if skipFresh {
		// The puller expects what arrived here lately from its
		// subscriptions.
		a.fresh, a.freshAfter = true, now.Add(-c.freshness()).UnixNano()
	}
	pr := a.pr
	n := len(c.cache.origins)
	if n == 0 || a.budget <= 0 {
		return
	}
	// Start at a random origin so that a tight budget is shared fairly.
	first := c.rng.IntN(n)
	for k := 0; k < n; k++ {
		oe := c.cache.origins[(first+k)%n]
		if !req.covers(oe.tag) {
			continue
		}
		var held []SeqRange
		if small {
			for i := range req.Origins {
				if req.Origins[i].Origin == oe.tag {
					held = req.Origins[i].Ranges
					break
				}
			}
		} else if i, ok := c.wanted[oe.tag]; ok {
			held = req.Origins[i].Ranges
		}
		if !oe.forEachMissing(held, a.add) {
			break
		}
	}
	a.finish()
	if pr == nil {
		return
	}
	// A digest too large for one datagram comes as one pull per partition,
	// back to back: one MORE for them all, after the last, or each would
	// bring a pull again of every partition, the later ones with a digest
	// that lacks what the first is bringing.
	pr.cut = pr.cut || a.cut
	if int(req.Partition) == 1<<req.PartitionBits-1 && pr.cut {
		pr.cut = false
		if c.allowance(pr) < c.cfg.MaxPacketSize {
			return
		}
		// Say so, and the puller pulls again at once with a digest that
		// holds this answer, instead of waiting for its next round.
		start := len(c.arena)
		c.arena = wire.AppendHeader(c.arena, wire.More)
		c.stats.MoresOut++
		c.emit(from, start)
	}
}

// smallDigest is the number of origins up to which a pull's digest is
// scanned rather than indexed.
const smallDigest = 16

// answer packs messages into datagrams for one pull.
type answer struct {
	c      *Core
	to     netip.AddrPort
	pr     *peerRound // to's budget this round; nil: untracked
	budget int
	spent  int
	start  int  // arena offset of the open datagram, or -1
	cut    bool // a message was left out for want of budget
	// statements: to understands them (statement_peers.go); else they are
	// left out.
	statements bool
	// With fresh, messages that entered the cache after freshAfter are
	// left out.
	fresh      bool
	freshAfter int64
}

func (a *answer) add(e *cacheEntry) bool {
	if a.fresh && e.at > a.freshAfter {
		return true
	}
	return a.addEncoded(e.enc)
}

// addEncoded adds one encoded message; false when the budget is spent.
func (a *answer) addEncoded(enc []byte) bool {
	c := a.c
	n := len(enc)
	if wire.HeaderSize+n > c.cfg.MaxPacketSize {
		return true // from a peer with larger datagrams; never forwarded
	}
	if !a.statements && isStatementEncoding(enc) {
		return true // the peer would drop the whole datagram
	}
	if a.spent+n > a.budget {
		a.cut = true
		return false
	}
	if a.start >= 0 && len(c.arena)-a.start+n > c.cfg.MaxPacketSize {
		a.flush()
	}
	if a.start < 0 {
		a.start = len(c.arena)
		c.arena = wire.AppendHeader(c.arena, wire.Messages)
	}
	c.arena = append(c.arena, enc...)
	a.spent += n
	c.stats.MessagesOut++
	return true
}

// answerTo starts an answer to peer of at most limit bytes of messages,
// within what is left of the peer's budget this round. finish ends it.
func (c *Core) answerTo(peer netip.AddrPort, limit int) answer {
	pr := c.peerRoundOf(peer)
	return answer{c: c, to: peer, pr: pr, budget: min(limit, c.allowance(pr)), start: -1, statements: c.stmtPeers.understands(peer)}
}

// finish sends what is left of the answer and charges it to the peer's
// budget.
func (a *answer) finish() {
	a.flush()
	a.c.charge(a.pr, a.spent)
}

// flush sends the open datagram.
func (a *answer) flush() {
	if a.start < 0 {
		return
	}
	a.c.stats.AnswerDatagramsOut++
	a.c.emit(a.to, a.start)
	a.start = -1
}
