package simulations

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
)

// spreadRounds publishes one message from node 0 of an n-node simulation
// and returns, for each node, the round (counted from the publish) in which
// it delivered it.
func spreadRounds(t testing.TB, n int, loss float64, seed uint64) []int {
	s, err := New(Config{Nodes: n, Seed: seed, Loss: loss})
	require.NoError(t, err)
	s.RunFor(time.Second) // let every node's clock start
	_, err = s.Publish(0, "sim.one", []byte("hello"))
	require.NoError(t, err)
	require.True(t, s.RunUntilDelivered(time.Minute), "every node delivers within a virtual minute")
	s.RunFor(2 * time.Second) // and nobody delivers it twice afterwards
	require.Zero(t, s.Redelivered(), "every node delivers exactly once")
	interval := s.Config().Gossip.Interval
	rounds := make([]int, n)
	for i := range rounds {
		at, ok := s.DeliveredAt(0, i)
		require.True(t, ok, "node %d delivers", i)
		rounds[i] = int(math.Ceil(float64(at) / float64(interval)))
	}
	return rounds
}

func maxInt(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// TestNodesDeliverExactlyOnce: 1,000 nodes (300 under -race), with and
// without loss, each deliver the message once, in the same round for the
// same seed.
func TestNodesDeliverExactlyOnce(t *testing.T) {
	t.Parallel()
	n := underRace(1000, 300)
	for _, loss := range []float64{0, 0.2} {
		t.Run(fmt.Sprintf("loss=%.0f%%", loss*100), func(t *testing.T) {
			t.Parallel()
			rounds := spreadRounds(t, n, loss, 7)
			t.Logf("N=%d loss=%.0f%%: 100%% delivered in %d rounds (log4 N + log4 ln N = %.2f)",
				n, loss*100, maxInt(rounds), PullBound(n))
			require.Equal(t, rounds, spreadRounds(t, n, loss, 7), "same seed, same delivery round for every node")
		})
	}
}

// TestOverheadRatio: 1,000 messages of 256 bytes (300 under -race) among
// 50 nodes, published from random nodes 10ms apart, with long-poll (the
// default) and with round-paced pulls. Total bytes sent on the wire (pulls
// and answers) divided by N × message bytes must stay at most 2.0; a pull
// answered with the whole cache gives far more.
func TestOverheadRatio(t *testing.T) {
	t.Parallel()
	for _, maxPark := range []time.Duration{0, -1} {
		ratio, dups := overheadRun(t, 50, underRace(1000, 300), 256, 1, maxPark)
		t.Logf("MaxPark %v: overhead ratio %.3f, duplicates per delivery %.4f", maxPark, ratio, dups)
		require.LessOrEqual(t, ratio, 2.0)
	}
}

// overheadRun runs the load of TestOverheadRatio with the core's MaxPark
// (0: the default).
func overheadRun(t testing.TB, nodes, messages, size int, seed uint64, maxPark time.Duration) (ratio, dupsPerDelivery float64) {
	s, err := New(Config{Nodes: nodes, Seed: seed, Gossip: gossip.Config{MaxPark: maxPark}})
	require.NoError(t, err)
	s.RunFor(time.Second)
	before := s.Totals()
	rng := rand.New(rand.NewPCG(seed, 99))
	payload := make([]byte, size)
	for i := 0; i < messages; i++ {
		for j := range payload {
			payload[j] = byte(rng.Uint32())
		}
		_, err := s.Publish(rng.IntN(nodes), "sim.load", payload)
		require.NoError(t, err)
		s.RunFor(10 * time.Millisecond)
	}
	require.True(t, s.RunUntilDelivered(time.Minute))
	after := s.Totals()
	bytes := after.BytesOut - before.BytesOut
	ratio = float64(bytes) / float64(nodes*messages*size)
	dupsPerDelivery = float64(after.Duplicates-before.Duplicates) / float64(after.Delivered-before.Delivered)
	require.Zero(t, s.Redelivered(), "every node delivers every message once")
	return ratio, dupsPerDelivery
}

// TestRoundsAtScale reports rounds to full delivery at 10,000 nodes; it
// takes a few seconds, so -short skips it, and so does -race, under which
// TestBroadcast asserts the same bound at 500 nodes.
func TestRoundsAtScale(t *testing.T) {
	if testing.Short() || raceDetector {
		t.Skip("10,000-node runs are skipped with -short and -race")
	}
	for _, loss := range []float64{0, 0.2} {
		rounds := spreadRounds(t, 10_000, loss, 3)
		t.Logf("N=10000 loss=%.0f%%: 100%% delivered in %d rounds (log4 N + log4 ln N = %.2f)",
			loss*100, maxInt(rounds), PullBound(10_000))
		if loss == 0 {
			require.LessOrEqual(t, float64(maxInt(rounds)), PullBound(10_000)+3)
		}
	}
}
