package gossip

import (
	"slices"
	"time"

	"github.com/hearsay-io/hearsay/wire"
)

// What the pulls parked here get (park.go): the messages this node newly
// accepts that their digests lack, batched per BatchWindow while a pull is
// eager, or a hint of them once it is lazy.

// offerParked offers a message just accepted to the parked pulls: each
// whose digest lacks it gets it, or a hint of it, at the end of the input
// step (flushParked). The peer it came from has it.
func (c *Core) offerParked(e *cacheEntry) {
	pk := &c.parked
	if len(pk.pulls) == 0 {
		return
	}
	now := c.now
	tag := TagOf(e.msg.Origin)
	for _, p := range pk.pulls {
		if p.done || p.peer == c.from {
			continue
		}
		if !now.Before(p.expires) {
			p.done = true
			c.stats.ParkExpired++
			continue
		}
		if !p.lacks(tag, e.msg.Seq) {
			continue
		}
		if now.Before(p.eagerUntil) {
			p.pending = append(p.pending, e)
		} else {
			p.hint = append(p.hint, e)
		}
		pk.dirty = true
	}
}

// due is when p's pending messages may be sent: BatchWindow after the
// last datagram sent to it, so that a slow stream goes out at once and a
// faster one a few messages a datagram; at once when they fill a
// datagram, so that a fast stream waits no longer than that takes.
func (c *Core) due(p *parkedPull) time.Time {
	if p.lastSend.IsZero() {
		return time.Time{}
	}
	room := c.cfg.MaxPacketSize - wire.HeaderSize
	for _, e := range p.pending {
		if room -= len(e.enc); room < 0 {
			return time.Time{}
		}
	}
	return p.lastSend.Add(c.cfg.BatchWindow)
}

// flushParked sends, at the end of an input step, the pending messages
// that are due and the hints, and forgets the pulls that are done.
func (c *Core) flushParked(now time.Time) {
	pk := &c.parked
	if !pk.dirty {
		return
	}
	pk.dirty = false
	for _, p := range pk.pulls {
		if len(p.pending) > 0 {
			if now.Before(c.due(p)) {
				pk.dirty = true
				continue
			}
			c.sendPending(now, p)
		}
		if len(p.hint) > 0 {
			c.sendHint(p, p.hint)
			p.hint = p.hint[:0]
			p.done = true
		}
	}
	c.removeDone()
}

// nextParked is the earliest time a parked pull has messages due; zero if
// none.
func (c *Core) nextParked() time.Time {
	var next time.Time
	for _, p := range c.parked.pulls {
		if len(p.pending) == 0 {
			continue
		}
		if d := c.due(p); next.IsZero() || d.Before(next) {
			next = d
		}
	}
	return next
}

// sendPending sends p's pending messages, within the peer's budget of the
// round. What the budget leaves out is hinted instead, and the pull is
// done: the puller pulls again for it, as for any answer cut short.
func (c *Core) sendPending(now time.Time, p *parkedPull) {
	a := c.answerTo(p.peer, c.cfg.MaxAnswerBytes)
	rest := p.pending
	if a.pr != nil { // an untracked peer cannot be budgeted: hinted only
		c.ageSent(now, p)
		for len(rest) > 0 {
			e := rest[0]
			if !e.dead {
				if !a.add(e) {
					break
				}
				p.sent = addRange(p.sent, TagOf(e.msg.Origin), e.msg.Seq)
			}
			rest = rest[1:]
		}
	}
	sent := a.spent
	a.finish()
	if sent > 0 {
		p.lastSend = now
		c.stats.ParkedSends++
	}
	if len(rest) > 0 {
		c.stats.ParkCut++
		c.sendHint(p, rest)
		p.done = true
	}
	clear(p.pending)
	p.pending = p.pending[:0]
}

// sendHint sends p's peer a hint naming the messages es.
func (c *Core) sendHint(p *parkedPull, es []*cacheEntry) {
	c.ranges = c.ranges[:0]
	for _, e := range es {
		if e.dead {
			continue
		}
		tag, seq := TagOf(e.msg.Origin), e.msg.Seq
		i := slices.IndexFunc(c.ranges, func(o OriginRanges) bool { return o.Origin == tag })
		if i < 0 {
			c.ranges = append(c.ranges, OriginRanges{Origin: tag})
			i = len(c.ranges) - 1
		}
		c.ranges[i].Ranges = insertSeq(c.ranges[i].Ranges, seq)
	}
	if len(c.ranges) == 0 {
		return
	}
	// A hint names at most what fits in one datagram.
	limit := c.cfg.MaxPacketSize - wire.HeaderSize - 10
	kept, size := c.ranges[:0], 0
	for _, o := range c.ranges {
		if s := originRangesSize(&o); size+s <= limit {
			size += s
			kept = append(kept, o)
		}
	}
	start := len(c.arena)
	c.arena = AppendHint(c.arena, kept)
	c.emit(p.peer, start)
	c.stats.HintsOut++
	for i := range c.ranges {
		c.ranges[i].Ranges = nil // they were allocated for this hint alone
	}
}
