package gossip

import "time"

// lateness estimates how long after a peer's hint this node's
// subscriptions bring the message it named, when they do: a hint is waited
// on for twice that before grafting, so that a node on a fast network
// grafts within milliseconds when its subscriptions fall behind, and one
// on a slow network does not graft at every hint that outran them. The
// round trips of pulls answered at once (a graft's, a lazy pull's) are
// samples too, the first ones: a path is as slow as its links. The estimate is the latest
// sample's or, if longer, the last estimate less an eighth: it follows a
// slower path at once and a faster one over a few dozen samples.
type lateness struct {
	late  time.Duration
	known bool
}

// observe adds a sample: a message hinted (or a graft sent) at from that a
// subscription brought (or the graft's answer) at to.
func (l *lateness) observe(from, to time.Time) {
	d := max(to.Sub(from), 0)
	l.late, l.known = max(d, l.late-l.late/8), true
}

// wait is how long to wait on a hint: twice the estimate, from least (what
// a subscription's datagram may wait for its batch) to most (an Interval,
// which round pulls leave to the subscriptions); most until a sample is
// known.
func (l *lateness) wait(least, most time.Duration) time.Duration {
	if !l.known {
		return most
	}
	return min(max(2*l.late, least), most)
}
