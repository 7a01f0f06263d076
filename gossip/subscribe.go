package gossip

import (
	"net/netip"
	"slices"
	"time"
)

// The puller's side of long-poll (docs/latency.md). A node keeps a few
// eager long-poll pulls, its subscriptions, parked at peers that send it
// every new message as they accept it: a message crosses each subscription
// in one link delay. The subscriptions of all nodes make a tree, as in
// Plumtree: a node subscribes at a peer whose hint named a message it
// lacked (a graft); a peer it subscribes at subscribes back, so that
// messages flow both ways whatever their origin; and a subscription that
// keeps bringing what another already brought closes a cycle, and is
// dropped on both sides (a prune). With no cycle, every node receives
// every message once.
//
// The round pulls go on, the safety net. A node without subscriptions
// seeks them: its round pulls are answered in full, as ever, and parked,
// so that a peer that accepts a new message hints it. A node with
// subscriptions has them bring what is new: its round pulls are answered
// without what is fresh, and one a round is parked, so that a hint still
// comes when the subscriptions do not bring a message in time.

// poll is one of this node's long-poll pulls, parked at a peer as far as
// this node knows.
type poll struct {
	peer   netip.AddrPort
	until  time.Time
	sentAt time.Time
	eager  bool      // a subscription
	heard  time.Time // when the peer last sent messages; subscriptions only
	dups   int       // datagrams from it that brought a message already here, since dupsAt
	dupsAt time.Time
}

// graft is a hint waited on, to see whether the subscriptions bring what
// it names.
type graft struct {
	peer   netip.AddrPort
	hinted time.Time // when the hint came
	at     time.Time // when to graft if the subscriptions have not brought it
	tag    OriginTag // the first message the hint named that this node lacked
	seq    uint64
}

// Bounds of the puller's state. Past maxPolls the oldest poll is
// forgotten, which only makes its hint ignored; past maxSubscriptions a
// graft drops the subscription heard from least lately.
const (
	maxPolls          = 32
	maxSubscriptions  = 16
	maxGraftsPerRound = 8  // to one peer, whatever hints it sends
	maxPruned         = 16 // peers whose subscription was pruned lately
	// pruneAfter is how many datagrams bringing a message already here,
	// within MaxPark, prune a subscription: a cycle keeps bringing them,
	// while a transient (a pull crossing what is on its way) passes.
	pruneAfter = 3
)

// longPoll reports whether long-poll is on.
func (c *Core) longPoll() bool { return c.cfg.MaxPark > 0 }

// subscription is the option of a subscribing pull: eager all along, for
// MaxPark; sent again (renewed) when less than an Interval is left. Its
// answer at once leaves out what is fresh, which the other subscriptions
// bring, but for a graft's: the node lacks it.
func (c *Core) subscription(graft bool) LongPoll {
	return LongPoll{Park: c.cfg.MaxPark, Eager: c.cfg.MaxPark, SkipFresh: !graft}
}

// The options of a round pull: seeking, without subscriptions (answered in
// full, parked for MaxPark, lazy); with subscriptions, watching for the
// round's first pull (without what is fresh, parked for an Interval, lazy)
// and settled for the others (without what is fresh, not parked).
func (c *Core) seeking() LongPoll  { return LongPoll{Park: c.cfg.MaxPark} }
func (c *Core) watching() LongPoll { return LongPoll{Park: c.cfg.Interval, SkipFresh: true} }
func (c *Core) settled() LongPoll  { return LongPoll{SkipFresh: true} }

// freshness is how long a message counts as fresh here: a SkipFresh
// pull's answer leaves out what arrived less than that ago.
func (c *Core) freshness() time.Duration { return c.cfg.Interval }

// graftWait is how long a hint of what the subscriptions have not brought
// is waited on before grafting: twice as long as they have lately been late
// (graft_wait.go), at least four batch windows and at most the freshness
// (round pulls leave what is fresh to the subscriptions); subscriptionIdle,
// how long a subscription may go without bringing anything before it is
// let go.
func (c *Core) graftWait() time.Duration {
	return c.lateness.wait(max(4*c.cfg.BatchWindow, time.Millisecond), c.freshness())
}

func (c *Core) subscriptionIdle() time.Duration { return 30 * c.cfg.MaxPark }

// roundPull is where the round pull of this slot goes, given the peer
// sampled for it, and its long-poll option: to a subscription due for
// renewal, else to the sampled peer, lazily unless it is subscribed at.
func (c *Core) roundPull(now time.Time, sampled netip.AddrPort) (netip.AddrPort, LongPoll) {
	if !c.longPoll() {
		return sampled, LongPoll{}
	}
	for _, p := range c.polls {
		if p.eager && p.until.Sub(now) < c.cfg.Interval {
			return p.peer, c.subscription(false)
		}
	}
	switch p := c.findPoll(sampled); {
	case p != nil && p.eager:
		return sampled, c.subscription(false)
	case c.subscriptions() == 0:
		return sampled, c.seeking()
	case c.slot == 0:
		return sampled, c.watching()
	}
	return sampled, c.settled()
}

// optionFor is the option of a pull again (on a MORE) to peer.
func (c *Core) optionFor(peer netip.AddrPort) LongPoll {
	switch p := c.findPoll(peer); {
	case !c.longPoll():
		return LongPoll{}
	case p != nil && p.eager:
		return c.subscription(true)
	}
	return LongPoll{}
}

// polled records a pull sent to peer now: it replaces the poll there, and
// one that is not parked ends it.
func (c *Core) polled(peer netip.AddrPort, lp LongPoll) {
	p := c.findPoll(peer)
	if lp.Park == 0 {
		if p != nil {
			*p = c.polls[len(c.polls)-1]
			c.polls = c.polls[:len(c.polls)-1]
		}
		return
	}
	if p == nil {
		if len(c.polls) == maxPolls {
			// The oldest lazy poll goes; subscriptions stay.
			i := slices.IndexFunc(c.polls, func(p poll) bool { return !p.eager })
			c.polls = append(c.polls[:max(i, 0)], c.polls[max(i, 0)+1:]...)
		}
		c.polls = append(c.polls, poll{peer: peer, heard: c.now})
		p = &c.polls[len(c.polls)-1]
	}
	p.until, p.sentAt, p.eager = c.now.Add(lp.Park), c.now, lp.subscribes()
}

func (c *Core) findPoll(peer netip.AddrPort) *poll {
	for i := range c.polls {
		if c.polls[i].peer == peer {
			return &c.polls[i]
		}
	}
	return nil
}

// subscriptions is the number of subscriptions.
func (c *Core) subscriptions() int {
	n := 0
	for _, p := range c.polls {
		if p.eager {
			n++
		}
	}
	return n
}

// expirePolls forgets the polls past their time, and lets go of the
// subscriptions that brought nothing for subscriptionIdle.
func (c *Core) expirePolls(now time.Time) {
	c.polls = slices.DeleteFunc(c.polls, func(p poll) bool {
		if p.eager {
			return now.Sub(p.heard) > c.subscriptionIdle()
		}
		return now.After(p.until.Add(c.cfg.Interval))
	})
}

// handleHint acts on a hint from a peer that holds a pull of ours: if it
// names a message this node lacks, it grafts a subscription there, at once
// if it has none, else if its subscriptions have not brought that message
// within graftWait. Anything else is ignored and counted.
func (c *Core) handleHint(now time.Time, from netip.AddrPort, body []byte) {
	if !c.longPoll() {
		c.drop(DropUnknownType, 1) // as a node that predates long-poll
		return
	}
	origins, err := c.pulls.decodeHint(body)
	if err != nil {
		c.drop(DropMalformed, 1)
		return
	}
	c.stats.HintsIn++
	// A hint answers a pull: it may come until that pull's peer forgets it.
	p := c.findPoll(from)
	if p == nil || !now.Before(p.until.Add(c.cfg.Interval)) {
		c.stats.HintsIgnored++
		return
	}
	if !p.eager {
		p.until = time.Time{} // hinted: the peer forgot it
	}
	tag, seq, lacking := c.firstLacking(origins)
	switch {
	case !lacking:
		c.stats.HintsIgnored++
	case c.subscriptions() > 0:
		// The subscriptions may bring it: look again in a while, one hint
		// at a time.
		if c.pendingGraft.peer.IsValid() {
			c.stats.HintsIgnored++
			return
		}
		c.pendingGraft = graft{peer: from, hinted: now, at: now.Add(c.graftWait()), tag: tag, seq: seq}
	default:
		c.graft(now, from)
	}
}

// tickGraft grafts, or forgets, the hint waited on once its time has come.
func (c *Core) tickGraft(now time.Time) {
	g := &c.pendingGraft
	if !g.peer.IsValid() || now.Before(g.at) {
		return
	}
	peer := g.peer
	g.peer = netip.AddrPort{}
	if arrived, ok := c.bySubscription(g.tag, g.seq); ok && !c.lacksSeq(g.tag, g.seq) {
		c.stats.HintsIgnored++ // the subscriptions brought it meanwhile
		c.lateness.observe(g.hinted, arrived)
		return
	}
	c.graft(now, peer)
}

// graft subscribes at from, whose hint named a message this node lacks:
// one graft at a time, until the last one's answer arrives or a slot has
// passed, and at most maxGraftsPerRound to a peer.
func (c *Core) graft(now time.Time, from netip.AddrPort) {
	if now.Before(c.graftUntil) {
		// The hints of several peers name the same new message; pulling
		// each would bring it from each.
		c.stats.HintsIgnored++
		return
	}
	pr := c.peerRoundOf(from)
	if pr == nil || pr.grafts >= maxGraftsPerRound {
		c.stats.HintsIgnored++
		return
	}
	pr.grafts++
	c.stats.Grafts++
	c.graftPeer, c.graftSent, c.graftUntil = from, now, now.Add(c.slotInterval)
	if p := c.findPoll(from); (p == nil || !p.eager) && c.subscriptions() >= maxSubscriptions {
		c.prune(now, c.quietestSubscription())
	}
	c.sendPull(from, c.subscription(true))
}

func (c *Core) quietestSubscription() netip.AddrPort {
	var q *poll
	for i := range c.polls {
		if p := &c.polls[i]; p.eager && (q == nil || p.heard.Before(q.heard)) {
			q = p
		}
	}
	return q.peer
}

// reciprocate subscribes back at peer, which subscribed here, so that
// messages flow both ways: unless it is subscribed at already, was pruned
// lately, or this node has its fill of subscriptions.
func (c *Core) reciprocate(now time.Time, peer netip.AddrPort) {
	if p := c.findPoll(peer); p != nil && p.eager || c.wasPruned(now, peer) || c.subscriptions() >= maxSubscriptions {
		return
	}
	c.stats.Reciprocated++
	c.sendPull(peer, c.subscription(false))
}

// prune drops the subscription at peer: its pull there is replaced by one
// that is not parked, which tells the peer to drop its subscription here
// too.
func (c *Core) prune(now time.Time, peer netip.AddrPort) {
	if p := c.findPoll(peer); p == nil || !p.eager {
		return
	}
	c.stats.Prunes++
	if len(c.pruned) == maxPruned {
		c.pruned = c.pruned[1:]
	}
	c.pruned = append(c.pruned, poll{peer: peer, until: now.Add(2 * c.cfg.MaxPark)})
	c.sendPull(peer, c.settled())
}

func (c *Core) wasPruned(now time.Time, peer netip.AddrPort) bool {
	for _, p := range c.pruned {
		if p.peer == peer && now.Before(p.until) {
			return true
		}
	}
	return false
}

// duplicate notes message id received again from the peer of the datagram
// being handled: a subscription that brings what another subscription
// already brought closes a cycle, and is pruned. Not so one that brings
// late what a round pull or a graft brought (a slow path, or a loss), nor
// the answer at once to a pull just sent there, which may cross what is
// on its way.
func (c *Core) duplicate(now time.Time, id MessageID) {
	if !c.fromSub {
		return
	}
	if e, ok := c.cache.peek(id); !ok || !e.bySub {
		return
	}
	if c.dupSeen {
		return // one per datagram
	}
	c.dupSeen = true
	if p := c.findPoll(c.from); p != nil && p.eager && now.Sub(p.sentAt) > c.slotInterval {
		if now.Sub(p.dupsAt) > c.cfg.MaxPark {
			p.dups, p.dupsAt = 0, now
		}
		if p.dups++; p.dups >= pruneAfter {
			c.prune(now, c.from)
			c.fromSub = false
		}
	}
}

// isSubscription reports whether this node is subscribed at peer.
func (c *Core) isSubscription(peer netip.AddrPort) bool {
	p := c.findPoll(peer)
	return p != nil && p.eager
}

// answered notes a datagram of messages from peer.
func (c *Core) answered(now time.Time, peer netip.AddrPort) {
	if peer == c.graftPeer && !c.graftUntil.IsZero() {
		c.graftUntil = time.Time{}
		c.lateness.observe(c.graftSent, now)
	}
	if p := c.findPoll(peer); p != nil {
		if !p.eager && !p.heard.After(p.sentAt) {
			// A lazy pull gets messages only in its answer at once.
			c.lateness.observe(p.sentAt, now)
		}
		p.heard = now
	}
}

// firstLacking returns the first message the ranges name that this node's
// holdings lack, by origin tag and sequence number; false if it lacks
// none.
func (c *Core) firstLacking(origins []OriginRanges) (OriginTag, uint64, bool) {
	for _, o := range origins {
		held := c.heldByTag(o.Origin)
		for _, r := range o.Ranges {
			if seq, ok := firstUncovered(held, r); ok {
				return o.Origin, seq, true
			}
		}
	}
	return 0, 0, false
}

// lacksSeq reports whether this node's holdings lack seq of the origin
// tagged tag.
func (c *Core) lacksSeq(tag OriginTag, seq uint64) bool {
	_, ok := firstUncovered(c.heldByTag(tag), SeqRange{First: seq, End: seq + 1})
	return ok
}

// bySubscription reports whether the message seq of the origin tagged tag
// came from a subscription, as far as the cache remembers, and when.
func (c *Core) bySubscription(tag OriginTag, seq uint64) (time.Time, bool) {
	for _, oe := range c.cache.origins {
		if oe.tag != tag {
			continue
		}
		var at time.Time
		by := false
		oe.forEachIn(seq, seq+1, func(e *cacheEntry) bool {
			at, by = time.Unix(0, e.at), e.bySub
			return false
		})
		return at, by
	}
	return time.Time{}, false
}

func (c *Core) heldByTag(tag OriginTag) []SeqRange {
	for i := range c.held.origins {
		if c.held.origins[i].tag == tag {
			return c.held.origins[i].ranges
		}
	}
	return nil
}
