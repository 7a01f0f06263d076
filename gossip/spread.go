package gossip

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Admission at the spread rate: the origin measures, from the digests of
// the pulls it answers, how many of its own recent messages its pullers
// still lack, and refuses new ones (ErrBackpressure) while that backlog is
// SpreadWindow or more. Pullers are a random sample of the cluster, so the
// backlog falls, and publishing resumes, exactly as fast as the cluster
// takes the messages in; a burst waits at the publisher instead of ageing
// out of the propagation caches before it has spread.

// BackpressureError is the error Push returns when it refuses a message;
// it matches ErrBackpressure (errors.Is) and says when to try again.
type BackpressureError struct {
	// RetryAfter is how long the backlog takes to fall below the limit
	// at the rate the cluster was last measured to take messages in.
	RetryAfter time.Duration
	// Reason says which bound refused: the spread backlog or the cache.
	Reason string
}

func (e *BackpressureError) Error() string {
	return fmt.Sprintf("%v: %s, retry after %v", ErrBackpressure, e.Reason, e.RetryAfter)
}

// Is reports the error as ErrBackpressure.
func (e *BackpressureError) Is(target error) bool { return target == ErrBackpressure }

// RetryAfterOf returns the wait an ErrBackpressure refusal asks for, and
// false for any other error.
func RetryAfterOf(err error) (time.Duration, bool) {
	var be *BackpressureError
	if errors.As(err, &be) {
		return be.RetryAfter, true
	}
	return 0, false
}

// spreadGauge is the origin's estimate of how far its own messages have
// spread: a frontier seq, below which the pullers seen lately hold them.
type spreadGauge struct {
	first     uint64  // the first seq published in this run; 0: none yet
	cur, prev uint64  // the lowest frontier seen this round and last; 0: no pull seen
	last      uint64  // the frontier at the previous round start; 0: unknown
	rate      float64 // messages per second the frontier advanced, smoothed
}

// frontier is the lowest seq a recent puller was seen to lack; 0 if none
// pulled in the last two rounds.
func (g *spreadGauge) frontier() uint64 {
	switch {
	case g.cur == 0:
		return g.prev
	case g.prev == 0:
		return g.cur
	}
	return min(g.cur, g.prev)
}

// observePull counts what a pull's digest says its sender lacks of this
// node's messages among the newest SpreadWindow.
func (c *Core) observePull(req *PullRequest) {
	g := &c.spreadGauge
	w := uint64(c.cfg.SpreadWindow)
	if c.cfg.SpreadWindow <= 0 || !req.covers(c.ownTag) {
		return
	}
	if g.first == 0 {
		g.cur = 1 // a puller was seen; firstPublished moves it to the first seq
		return
	}
	lo := g.first
	if c.nextSeq-lo > w {
		lo = c.nextSeq - w
	}
	// What left the cache is anti-entropy's: waiting would not spread it.
	if oe := c.cache.byOrigin[c.cfg.ID]; oe != nil {
		lo = max(lo, oe.firstLive())
	}
	if lo >= c.nextSeq {
		lo = c.nextSeq
	}
	lacking := c.nextSeq - lo
	for i := range req.Origins {
		if req.Origins[i].Origin != c.ownTag {
			continue
		}
		for _, r := range req.Origins[i].Ranges {
			a, b := max(r.First, lo), min(r.End, c.nextSeq)
			if b > a {
				lacking -= b - a
			}
		}
		break
	}
	f := c.nextSeq - lacking
	if g.cur == 0 || f < g.cur {
		g.cur = f
	}
}

// firstPublished starts the gauge at seq, this run's first message: the
// pullers seen so far lack it, until they say otherwise.
func (g *spreadGauge) firstPublished(seq uint64) {
	g.first = seq
	if g.cur != 0 {
		g.cur = seq
	}
	if g.prev != 0 {
		g.prev = seq
	}
}

// spreadRound ends a round of measurement: the frontier's advance over it
// updates the rate.
func (c *Core) spreadRound() {
	g := &c.spreadGauge
	f := g.frontier()
	if f != 0 && g.last != 0 && f >= g.last {
		r := float64(f-g.last) / c.cfg.Interval.Seconds()
		g.rate = (g.rate + r) / 2
	}
	if f != 0 {
		g.last = f
	}
	g.prev, g.cur = g.cur, 0
}

// admit returns a *BackpressureError if the spread backlog is at
// SpreadWindow, nil otherwise.
func (c *Core) admit() error {
	g := &c.spreadGauge
	f := g.frontier()
	if c.cfg.SpreadWindow <= 0 || f == 0 || c.nextSeq < f {
		return nil
	}
	backlog := c.nextSeq - f
	if backlog < uint64(c.cfg.SpreadWindow) {
		return nil
	}
	c.stats.Backpressure++
	return &BackpressureError{
		RetryAfter: c.spreadWait(float64(backlog - uint64(c.cfg.SpreadWindow) + 1)),
		Reason:     fmt.Sprintf("%d of this node's messages not yet spread (SpreadWindow %d)", backlog, c.cfg.SpreadWindow),
	}
}

// liveFrom returns the first live entry with seq f or above; nil if none.
func (oe *originEntries) liveFrom(f uint64) *cacheEntry {
	i := sort.Search(len(oe.entries), func(i int) bool { return oe.entries[i].msg.Seq >= f })
	for ; i < len(oe.entries); i++ {
		if e := oe.entries[i]; !e.dead {
			return e
		}
	}
	return nil
}

// firstLive is the seq of the oldest live entry; MaxUint64 if none.
func (oe *originEntries) firstLive() uint64 {
	if e := oe.liveFrom(0); e != nil {
		return e.msg.Seq
	}
	return ^uint64(0)
}

// spreadWait is how long n messages take to spread at the measured rate:
// at least a tenth of a round, at most a round (the frontier is measured
// anew with every pull, so a longer wait would only guess), and one
// round while no rate is known.
func (c *Core) spreadWait(n float64) time.Duration {
	lo, hi := c.cfg.Interval/10, c.cfg.Interval
	if c.spreadGauge.rate <= 0 {
		return c.cfg.Interval
	}
	d := time.Duration(n / c.spreadGauge.rate * float64(time.Second))
	return min(max(d, lo), hi)
}

// cacheFull is the refusal when the propagation cache has no room: room
// comes as the oldest entries expire, within a few rounds at most.
func (c *Core) cacheFull() error {
	c.stats.Backpressure++
	return &BackpressureError{RetryAfter: c.cfg.Interval, Reason: "propagation cache full"}
}
