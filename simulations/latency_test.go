package simulations

import (
	"bytes"
	"image/png"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDeliveryLatencyFigures: percentiles by nearest rank, the CDF over
// every pair, late latencies (counted in the map) in order after the
// others.
func TestDeliveryLatencyFigures(t *testing.T) {
	var c latencyCounts
	for ms := int64(100); ms >= 1; ms-- {
		c.add(ms, 1)
	}
	d := newDeliveryLatency(&c, 100, nil)
	assert.Equal(t, 100, d.Delivered)
	assert.Equal(t, []time.Duration{50, 90, 99, 100}, []time.Duration{d.P50 / time.Millisecond, d.P90 / time.Millisecond, d.P99 / time.Millisecond, d.Max / time.Millisecond})
	assert.Equal(t, 100*time.Millisecond, d.Full)
	require.Len(t, d.CDF, 100)
	assert.Equal(t, LatencyPoint{Latency: time.Millisecond, Deliveries: 1, Fraction: 0.01}, d.CDF[0])
	assert.Equal(t, 1.0, d.CDF[99].Fraction)

	c.add(denseLatencyMs+5, 2)
	c.add(denseLatencyMs, 1)
	c.add(7, 1)
	d = newDeliveryLatency(&c, 200, nil)
	assert.Equal(t, 104, d.Delivered)
	assert.Equal(t, time.Duration(-1), d.Full, "96 pairs not delivered")
	assert.Equal(t, (denseLatencyMs+5)*time.Millisecond, d.Max)
	assert.Equal(t, 51*time.Millisecond, d.P50, "the 52nd of 104: 7ms twice")
	n := len(d.CDF)
	require.Equal(t, 102, n)
	assert.Equal(t, LatencyPoint{Latency: denseLatencyMs * time.Millisecond, Deliveries: 1, Fraction: 102.0 / 200}, d.CDF[n-2])
	assert.Equal(t, 0.52, d.CDF[n-1].Fraction)

	none := newDeliveryLatency(&latencyCounts{}, 10, []time.Duration{-1})
	assert.Zero(t, none.Max)
	assert.Zero(t, none.P99)
	assert.Empty(t, none.CDF)
	assert.Equal(t, time.Duration(-1), none.Full)
}

// TestDeliveryLatencyMatchesRounds: the milliseconds agree with the rounds
// and with the simulator's own records. With 1ms links and 200ms rounds,
// the last delivery falls in the round RoundsToFull counts; at the end of
// every round, the CDF has counted exactly the deliveries the round's row
// has, and it ends at 1.
func TestDeliveryLatencyMatchesRounds(t *testing.T) {
	t.Parallel()
	const messages = 2
	n := underRace(600, 200)
	rep, err := Run(Config{Nodes: n, Seed: 4, Messages: messages})
	require.NoError(t, err)
	require.Equal(t, "delivered", rep.Ended)
	d := rep.DeliveryLatency
	interval := rep.Config.Gossip.Interval
	r := time.Duration(rep.RoundsToFull)
	t.Logf("N=%d: %d rounds; latency p50 %v, p90 %v, p99 %v, full %v", n, rep.RoundsToFull, d.P50, d.P90, d.P99, d.Full)

	assert.Equal(t, messages*(n-1), d.Pairs, "every node but the publisher, per message")
	assert.Equal(t, d.Pairs, d.Delivered)
	assert.Equal(t, d.Max, d.Full)
	assert.Greater(t, d.Full, (r-1)*interval, "not delivered everywhere a round earlier")
	assert.LessOrEqual(t, d.Full, r*interval, "delivered everywhere by the end of round %d", rep.RoundsToFull)
	assert.Positive(t, d.P50)
	assert.LessOrEqual(t, d.P50, d.P90)
	assert.LessOrEqual(t, d.P90, d.P99)
	assert.LessOrEqual(t, d.P99, d.Max)
	require.Len(t, d.PerMessage, messages)
	assert.Equal(t, d.Full, max(d.PerMessage[0], d.PerMessage[1]))

	requireMonotone(t, d.CDF)
	assert.Equal(t, 1.0, d.CDF[len(d.CDF)-1].Fraction)
	for _, row := range rep.Rounds {
		byThen := 0
		for _, p := range d.CDF {
			if p.Latency <= row.Time {
				byThen += p.Deliveries
			}
		}
		inRow := int(math.Round(row.Delivered*float64(n*messages))) - messages // the publishers' own
		assert.Equal(t, inRow, byThen, "round %d", row.Round)
	}
}

// requireMonotone checks a CDF: latencies increasing, fractions rising
// with each point's deliveries, from 0 to at most 1.
func requireMonotone(t *testing.T, cdf []LatencyPoint) {
	t.Helper()
	require.NotEmpty(t, cdf)
	prev := LatencyPoint{Latency: -1}
	for _, p := range cdf {
		require.Greater(t, p.Latency, prev.Latency)
		require.Positive(t, p.Deliveries)
		require.Greater(t, p.Fraction, prev.Fraction)
		prev = p
	}
	require.LessOrEqual(t, prev.Fraction, 1.0)
}

// TestDeliveryLatencyAgreesWithDeliveredAt: the simulator's figures are
// those of its per-node records, for a Simulator driven by hand with
// normal link latency.
func TestDeliveryLatencyAgreesWithDeliveredAt(t *testing.T) {
	t.Parallel()
	n := underRace(300, 100)
	s, err := New(Config{Nodes: n, Seed: 2, Latency: NormalLatency{Mean: 20 * time.Millisecond, StdDev: 5 * time.Millisecond}})
	require.NoError(t, err)
	s.RunFor(time.Second)
	_, err = s.Publish(7, "sim.one", []byte("hello"))
	require.NoError(t, err)
	require.True(t, s.RunUntilDelivered(time.Minute))
	d := s.DeliveryLatency()

	var latest time.Duration
	byP50 := 0
	for i := range n {
		at, ok := s.DeliveredAt(0, i)
		require.True(t, ok)
		if i == 7 {
			assert.Zero(t, at, "the publisher delivers at once, and is not counted")
			continue
		}
		latest = max(latest, at)
		if at <= d.P50 {
			byP50++
		}
	}
	assert.Equal(t, n-1, d.Delivered)
	assert.Equal(t, latest, d.Full)
	assert.Equal(t, []time.Duration{latest}, d.PerMessage)
	assert.GreaterOrEqual(t, byP50, (n-1)/2, "half the nodes by the median")
	requireMonotone(t, d.CDF)
}

// TestDeliveryLatencyWithinARound: the figures resolve the millisecond,
// not the round. Of two nodes, the other gets the message from the
// publisher's first answer after the publication: at least one link delay
// after it, and within one slot of its pulls (plus the millisecond the
// calendar rounds ticks up to) and a round trip.
func TestDeliveryLatencyWithinARound(t *testing.T) {
	t.Parallel()
	rep, err := Run(Config{Nodes: 2, Seed: 1})
	require.NoError(t, err)
	d := rep.DeliveryLatency
	require.Equal(t, 1, d.Delivered)
	assert.Equal(t, 1, rep.RoundsToFull)
	assert.GreaterOrEqual(t, d.Full, time.Duration(DefaultLatency))
	slot := rep.Config.Gossip.Interval / time.Duration(rep.Config.Gossip.Fanout)
	assert.LessOrEqual(t, d.Full, slot+time.Millisecond+2*time.Duration(DefaultLatency))
	assert.Equal(t, d.Full, d.P50)
}

// TestDeliveryLatencyIncomplete: a partition that never heals leaves the
// second group without the message: no time to full delivery, and a CDF
// that ends at the share delivered. The files are written all the same,
// as they are when nothing at all is delivered.
func TestDeliveryLatencyIncomplete(t *testing.T) {
	t.Parallel()
	rep, err := PartitionAndHeal(Config{Nodes: 100, Seed: 3, Partition: &Partition{Split: 0.5}, Duration: time.Second})
	require.NoError(t, err)
	d := rep.DeliveryLatency
	assert.Equal(t, 99, d.Pairs)
	assert.Equal(t, 49, d.Delivered, "the first group but the publisher")
	assert.Equal(t, time.Duration(-1), d.Full)
	assert.Equal(t, []time.Duration{-1}, d.PerMessage)
	requireMonotone(t, d.CDF)
	assert.InDelta(t, 49.0/99, d.CDF[len(d.CDF)-1].Fraction, 1e-12)
	s := rep.Summary()
	assert.Equal(t, int64(-1), s.FullDeliveryMs)
	assert.Equal(t, []int64{-1}, s.MessageFullDeliveryMs)
	assert.Equal(t, d.Max.Milliseconds(), s.LatencyMs.Max)

	lost, err := Run(Config{Nodes: 2, Seed: 1, Loss: 1, Duration: 400 * time.Millisecond})
	require.NoError(t, err)
	assert.Zero(t, lost.DeliveryLatency.Delivered)
	for _, r := range []Report{rep, lost} {
		var points bytes.Buffer
		require.NoError(t, r.WriteLatencyCSV(&points))
		assert.Equal(t, len(r.DeliveryLatency.CDF)+1, bytes.Count(points.Bytes(), []byte("\n")))
	}
	var chart bytes.Buffer // TestReportFiles draws a full one
	require.NoError(t, lost.WriteLatencyChart(&chart))
	_, err = png.Decode(&chart)
	require.NoError(t, err)
}
