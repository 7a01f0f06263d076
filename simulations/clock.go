package simulations

import "time"

// The virtual clock: time advances a millisecond at a time, delivering
// the datagrams due, running the callbacks of At, then ticking the nodes
// due.

// schedule puts node i's next tick in the calendar at millisecond ms.
func (s *Simulator) schedule(i int32, ms int64) {
	s.nodes[i].tickAt = ms
	s.calendar.add(ms, i)
}

// step runs the next virtual millisecond.
func (s *Simulator) step() {
	t := s.nowMs + 1
	s.net.RunUntil(s.clock(t))
	s.nowMs = t
	s.events.run(t)
	if s.tables != nil {
		s.tables.runTicks(s, t)
	}
	s.runTicks(t)
}

func (s *Simulator) clock(ms int64) time.Time {
	return s.start.Add(time.Duration(ms) * time.Millisecond)
}

// runTicks ticks the nodes due at millisecond t, in the order they were
// scheduled.
func (s *Simulator) runTicks(t int64) {
	bucket := s.calendar.bucket(t)
	now := s.clock(t)
	// A node's first tick may ask for the next one at once: it lands in
	// this bucket, which is why the length is read at every turn.
	for k := 0; k < len(*bucket); k++ {
		i := (*bucket)[k]
		n := &s.nodes[i]
		// Entries left by a crashed life, or made stale by a restart, no
		// longer match the node's tickAt.
		if n.tickAt != t || n.core == nil {
			continue
		}
		n.core.Tick(now.Add(n.skew))
		s.flush(i)
		next := n.core.NextTick().Sub(s.start) - n.skew
		ms := int64((next + time.Millisecond - 1) / time.Millisecond)
		s.schedule(i, min(max(ms, t), t+s.calendar.horizon))
	}
	*bucket = (*bucket)[:0]
	s.ticked = t
}

// tickCalendar holds the nodes due to tick, in one bucket per virtual
// millisecond over a ring as long as the longest wait between two ticks.
// A node is an int32 in a bucket: cheaper than one closure and one heap
// entry per tick, at fifteen million ticks per virtual second with a
// million nodes.
type tickCalendar struct {
	buckets [][]int32
	mask    int64
	horizon int64 // the longest wait, in milliseconds
}

func (c *tickCalendar) init(horizon int64) {
	size := int64(1)
	for size <= horizon {
		size <<= 1
	}
	c.buckets = make([][]int32, size)
	c.mask = size - 1
	c.horizon = horizon
}

func (c *tickCalendar) bucket(ms int64) *[]int32 { return &c.buckets[ms&c.mask] }

func (c *tickCalendar) add(ms int64, i int32) {
	b := c.bucket(ms)
	*b = append(*b, i)
}

// event is a callback scheduled with At.
type event struct {
	ms  int64
	seq uint64
	fn  func()
}

// eventList holds the callbacks scheduled with At, in order of time, then
// of scheduling. There are few, so a sorted slice does.
type eventList struct {
	events []event
	seq    uint64
}

func (l *eventList) add(ms int64, fn func()) {
	e := event{ms: ms, seq: l.seq, fn: fn}
	l.seq++
	i := len(l.events)
	l.events = append(l.events, e)
	for i > 0 && l.events[i-1].ms > ms {
		l.events[i] = l.events[i-1]
		i--
	}
	l.events[i] = e
}

// run runs the callbacks due at or before millisecond t, including those
// they schedule for t.
func (l *eventList) run(t int64) {
	for len(l.events) > 0 && l.events[0].ms <= t {
		e := l.events[0]
		l.events = l.events[1:]
		e.fn()
	}
}

// At schedules fn to run at virtual time t (since the simulation started),
// rounded up to a millisecond, before the ticks of that millisecond. A t in
// the past runs at the next millisecond.
func (s *Simulator) At(t time.Duration, fn func()) {
	ms := int64((t + time.Millisecond - 1) / time.Millisecond)
	s.events.add(max(ms, s.nowMs+1), fn)
}

// PendingEvents is the number of callbacks scheduled with At that have not
// run yet.
func (s *Simulator) PendingEvents() int { return len(s.events.events) }

// Now is the virtual time since the simulation started.
func (s *Simulator) Now() time.Duration { return time.Duration(s.nowMs) * time.Millisecond }

// RunUntil runs the simulation until virtual time t, to the millisecond
// below. A t in the past does nothing.
func (s *Simulator) RunUntil(t time.Duration) {
	target := int64(t / time.Millisecond)
	for s.nowMs < target {
		s.step()
	}
}

// RunFor runs the simulation for d of virtual time.
func (s *Simulator) RunFor(d time.Duration) { s.RunUntil(s.Now() + d) }

// RunUntilDelivered runs the simulation an Interval at a time until every
// node up has delivered every published message, or until limit has
// passed. It reports whether everything was delivered.
func (s *Simulator) RunUntilDelivered(limit time.Duration) bool {
	end := s.Now() + limit
	for {
		if s.AllDelivered() {
			return true
		}
		if s.Now() >= end {
			return false
		}
		s.RunFor(s.cfg.Gossip.Interval)
	}
}
