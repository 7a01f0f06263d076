package gossip

import (
	"net/netip"
	"slices"
	"sort"
	"time"
)

// The holder's side of long-poll pulls (docs/latency.md). A pull that
// carries the long-poll option is answered at once, as any pull, and then
// parked: kept, with its digest, until it expires. While it is eager, every
// message this node newly accepts that the digest lacks is sent to the
// puller as it arrives, in one datagram per BatchWindow at most
// (parked_send.go); once it is lazy, the first such message gets a HINT
// instead, and the pull is forgotten. Data still moves only to a peer that
// asked for it: a parked pull is a standing request, and only its digest
// decides what it gets.

// parkedPull is a peer's pull kept open here.
type parkedPull struct {
	peer         netip.AddrPort
	eagerUntil   time.Time // new messages are sent until then, hinted after
	expires      time.Time
	origins      []OriginRanges // the digest, sorted by tag; ranges in rangeBuf
	rangeBuf     []SeqRange
	lastSend     time.Time     // of the last datagram of messages sent to it; zero if none
	pending      []*cacheEntry // accepted while eager, to send at due()
	hint         []*cacheEntry // accepted while lazy, to name in a hint at the end of the step
	done         bool          // hinted or expired: takes no more messages; removed once pending is sent
	subscription bool          // eager all along: the peer's subscription here
	// What was sent to it lately, in two generations of sentAge each: a
	// newer pull from the peer, built before those arrived, must not bring
	// them again. Carried over when it replaces this one.
	sent, sentPrev []OriginRanges
	sentSince      time.Time
}

// parking is every pull parked here: at most MaxParked, one per peer.
type parking struct {
	pulls []*parkedPull
	spare []*parkedPull // removed entries, for reuse
	dirty bool          // some entry has pending messages or a hint to send
}

// park keeps req, a long-poll pull from peer just answered, replacing
// peer's previous one, and returns it; nil when the table is full.
func (c *Core) park(now time.Time, peer netip.AddrPort, req *PullRequest) *parkedPull {
	pk := &c.parked
	p := pk.find(peer)
	if p != nil && len(p.pending) > 0 {
		// Its batch goes out first, under the old entry's rules: those
		// messages were accepted while it was eager.
		c.sendPending(now, p)
	}
	if p == nil {
		c.expireParked(now)
		if len(pk.pulls) >= c.cfg.MaxParked {
			c.stats.ParkRefused++
			return nil
		}
		if n := len(pk.spare); n > 0 {
			p, pk.spare = pk.spare[n-1], pk.spare[:n-1]
		} else {
			p = &parkedPull{}
		}
		pk.pulls = append(pk.pulls, p)
	}
	if p.peer == peer && p.subscription && now.Before(p.expires) && !req.LongPoll.subscribes() {
		c.prunedBy(now, peer)
	}
	park := min(req.LongPoll.Park, c.cfg.MaxPark)
	if p.peer != peer {
		p.sent, p.sentPrev = clearRanges(p.sent), clearRanges(p.sentPrev)
		p.sentSince = now
	}
	*p = parkedPull{
		peer:         peer,
		eagerUntil:   now.Add(min(req.LongPoll.Eager, park)),
		expires:      now.Add(park),
		subscription: req.LongPoll.subscribes(),
		origins:      p.origins[:0],
		rangeBuf:     p.rangeBuf[:0],
		pending:      p.pending[:0],
		hint:         p.hint[:0],
		sent:         p.sent,
		sentPrev:     p.sentPrev,
		sentSince:    p.sentSince,
	}
	for _, o := range req.Origins {
		p.rangeBuf = append(p.rangeBuf, o.Ranges...)
	}
	at := 0
	for _, o := range req.Origins {
		p.origins = append(p.origins, OriginRanges{Origin: o.Origin, Ranges: p.rangeBuf[at : at+len(o.Ranges) : at+len(o.Ranges)]})
		at += len(o.Ranges)
	}
	slices.SortFunc(p.origins, func(a, b OriginRanges) int {
		switch {
		case a.Origin < b.Origin:
			return -1
		case a.Origin > b.Origin:
			return 1
		}
		return 0
	})
	c.stats.Parked++
	return p
}

func (pk *parking) find(peer netip.AddrPort) *parkedPull {
	for _, p := range pk.pulls {
		if p.peer == peer {
			return p
		}
	}
	return nil
}

// lacks reports whether the digest of p lacks seq of the origin tagged tag.
func (p *parkedPull) lacks(tag OriginTag, seq uint64) bool {
	i := sort.Search(len(p.origins), func(i int) bool { return p.origins[i].Origin >= tag })
	if i == len(p.origins) || p.origins[i].Origin != tag {
		return true
	}
	rs := p.origins[i].Ranges
	j := sort.Search(len(rs), func(j int) bool { return rs[j].End > seq })
	return j == len(rs) || seq < rs[j].First
}

// unpark forgets p, replaced by a pull that asks not to be parked.
func (c *Core) unpark(now time.Time, p *parkedPull) {
	if len(p.pending) > 0 {
		c.sendPending(now, p)
	}
	if p.subscription && now.Before(p.expires) {
		c.prunedBy(now, p.peer)
	}
	p.done = true
	c.removeDone()
}

// prunedBy notes that peer dropped its subscription here: this node drops
// its own there.
func (c *Core) prunedBy(now time.Time, peer netip.AddrPort) { c.prune(now, peer) }

// removeDone forgets the pulls that are done and have nothing pending.
func (c *Core) removeDone() {
	pk := &c.parked
	kept := pk.pulls[:0]
	for _, p := range pk.pulls {
		if p.done && len(p.pending) == 0 {
			clear(p.hint)
			pk.spare = append(pk.spare, p)
			continue
		}
		kept = append(kept, p)
	}
	clear(pk.pulls[len(kept):])
	pk.pulls = kept
}

// expireParked forgets the pulls past their time.
func (c *Core) expireParked(now time.Time) {
	for _, p := range c.parked.pulls {
		if !p.done && !now.Before(p.expires) {
			p.done = true
			c.stats.ParkExpired++
		}
	}
	c.removeDone()
}

// sentAge is how long a message sent to a parked pull counts as on its
// way: a newer pull from the same peer, whose digest cannot hold it yet,
// is not answered with it. A message lost on the way is sent again by the
// first pull from that peer after 1 to 2 sentAge.
func (c *Core) sentAge() time.Duration { return c.slotInterval }

// ageSent moves p's sends to the older generation, and forgets the
// oldest, as time passes.
func (c *Core) ageSent(now time.Time, p *parkedPull) {
	switch age := now.Sub(p.sentSince); {
	case age >= 2*c.sentAge():
		p.sentPrev = clearRanges(p.sentPrev)
		p.sent = clearRanges(p.sent)
		p.sentSince = now
	case age >= c.sentAge():
		p.sentPrev, p.sent = p.sent, clearRanges(p.sentPrev)
		p.sentSince = now
	}
}

func clearRanges(os []OriginRanges) []OriginRanges {
	for i := range os {
		os[i].Ranges = os[i].Ranges[:0]
	}
	return os[:0]
}

// addRange records seq of the origin tagged tag in os.
func addRange(os []OriginRanges, tag OriginTag, seq uint64) []OriginRanges {
	for i := range os {
		if os[i].Origin == tag {
			os[i].Ranges = insertSeq(os[i].Ranges, seq)
			return os
		}
	}
	if len(os) < cap(os) {
		// Reuse the ranges of a cleared origin.
		os = os[:len(os)+1]
		o := &os[len(os)-1]
		o.Origin, o.Ranges = tag, insertSeq(o.Ranges[:0], seq)
		return os
	}
	return append(os, OriginRanges{Origin: tag, Ranges: []SeqRange{{seq, seq + 1}}})
}

// withSent returns req with what was sent lately to its parked pull p
// added to its digest, as held: those messages are on their way. It
// returns req itself when there is nothing to add.
func (c *Core) withSent(now time.Time, req *PullRequest, p *parkedPull) *PullRequest {
	if p == nil {
		return req
	}
	c.ageSent(now, p)
	if len(p.sent) == 0 && len(p.sentPrev) == 0 {
		return req
	}
	m := &c.mergedReq
	origins := append(m.Origins[:0], req.Origins...) // m's own array, never the decoder's
	*m = *req
	m.Origins = origins
	for _, sent := range [2][]OriginRanges{p.sent, p.sentPrev} {
		for _, o := range sent {
			if len(o.Ranges) == 0 {
				continue
			}
			i := slices.IndexFunc(m.Origins, func(x OriginRanges) bool { return x.Origin == o.Origin })
			if i < 0 {
				m.Origins = append(m.Origins, OriginRanges{Origin: o.Origin, Ranges: o.Ranges})
				continue
			}
			m.Origins[i].Ranges = unionRanges(m.Origins[i].Ranges, o.Ranges)
		}
	}
	return m
}
