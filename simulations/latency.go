package simulations

import (
	"math"
	"slices"
	"time"
)

// Delivery latency: how long after its publication each node delivered
// each message, from the virtual instants the simulator records as the
// cores hand their deliveries over (recordDelivery), not from the rounds.

// DeliveryLatency is the distribution of the time from a message's
// publication to its delivery by a node, over the (message, node) pairs of
// every followed message and every node up, each message's publisher
// excepted (it delivers its own message at once). Times are to the
// millisecond above, the resolution of the simulator's records.
type DeliveryLatency struct {
	// Pairs counts the (message, node) pairs; Delivered those delivered.
	Pairs, Delivered int
	// CDF has one point per millisecond at which deliveries happened, in
	// increasing order.
	CDF []LatencyPoint
	// P50, P90, P99 and Max are percentiles (nearest rank) of the
	// deliveries made; zero if none was.
	P50, P90, P99, Max time.Duration
	// Full is the time from the publication to the last delivery when
	// every pair was delivered (Max then), -1 otherwise.
	Full time.Duration
	// PerMessage is each message's time to its last node's delivery, in
	// order of publication; -1 for a message some node up lacks.
	PerMessage []time.Duration
}

// LatencyPoint is a point of DeliveryLatency.CDF.
type LatencyPoint struct {
	// Latency is the time since the publication, a whole millisecond.
	Latency time.Duration
	// Deliveries is the number of pairs delivered at this latency.
	Deliveries int
	// Fraction is the fraction of all pairs (delivered or not) delivered
	// at this latency or sooner.
	Fraction float64
}

// denseLatencyMs bounds the latencies counted in a slice indexed by the
// millisecond, about 17 minutes; later ones, which only runs lasting
// hours have, are counted in a map.
const denseLatencyMs = 1 << 20

// latencyCounts counts deliveries per millisecond of latency.
type latencyCounts struct {
	dense  []int
	sparse map[int64]int
}

func (c *latencyCounts) add(ms int64, n int) {
	if ms < denseLatencyMs {
		if int(ms) >= len(c.dense) {
			c.dense = slices.Grow(c.dense, int(ms)+1-len(c.dense))[:ms+1]
		}
		c.dense[ms] += n
		return
	}
	if c.sparse == nil {
		c.sparse = make(map[int64]int)
	}
	c.sparse[ms] += n
}

// points returns the counts as CDF points over pairs pairs, with their
// fractions.
func (c *latencyCounts) points(pairs int) []LatencyPoint {
	var pts []LatencyPoint
	for ms, n := range c.dense {
		if n > 0 {
			pts = append(pts, LatencyPoint{Latency: time.Duration(ms) * time.Millisecond, Deliveries: n})
		}
	}
	late := make([]int64, 0, len(c.sparse))
	for ms := range c.sparse {
		late = append(late, ms)
	}
	slices.Sort(late)
	for _, ms := range late {
		pts = append(pts, LatencyPoint{Latency: time.Duration(ms) * time.Millisecond, Deliveries: c.sparse[ms]})
	}
	sum := 0
	for k := range pts {
		sum += pts[k].Deliveries
		pts[k].Fraction = float64(sum) / float64(pairs)
	}
	return pts
}

// newDeliveryLatency computes the figures of counts over pairs pairs;
// perMessage is as DeliveryLatency.PerMessage.
func newDeliveryLatency(counts *latencyCounts, pairs int, perMessage []time.Duration) DeliveryLatency {
	d := DeliveryLatency{Pairs: pairs, CDF: counts.points(pairs), PerMessage: perMessage, Full: -1}
	for _, p := range d.CDF {
		d.Delivered += p.Deliveries
	}
	if d.Delivered > 0 {
		d.P50, d.P90, d.P99 = d.percentile(0.50), d.percentile(0.90), d.percentile(0.99)
		d.Max = d.CDF[len(d.CDF)-1].Latency
	}
	if d.Delivered == pairs {
		d.Full = d.Max
	}
	return d
}

// percentile is the smallest latency at or below which at least a share p
// of the deliveries made happened.
func (d *DeliveryLatency) percentile(p float64) time.Duration {
	rank := max(int(math.Ceil(p*float64(d.Delivered))), 1)
	sum := 0
	for _, pt := range d.CDF {
		sum += pt.Deliveries
		if sum >= rank {
			return pt.Latency
		}
	}
	return d.Max
}

// DeliveryLatency measures the latency of every message published with
// Publish so far, to the nodes up now.
func (s *Simulator) DeliveryLatency() DeliveryLatency {
	var counts latencyCounts
	pairs := 0
	perMessage := make([]time.Duration, len(s.msgs))
	for m := range s.msgs {
		rec := &s.msgs[m]
		last, complete := int64(0), true
		for i := range s.nodes {
			if i == rec.publisher || s.nodes[i].state != nodeUp {
				continue
			}
			pairs++
			if rec.first[i] == 0 {
				complete = false
				continue
			}
			ms := int64(rec.first[i]) - 1 - rec.at
			counts.add(ms, 1)
			last = max(last, ms)
		}
		perMessage[m] = -1
		if complete {
			perMessage[m] = time.Duration(last) * time.Millisecond
		}
	}
	return newDeliveryLatency(&counts, pairs, perMessage)
}
