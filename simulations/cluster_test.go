package simulations

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/transport"
	"github.com/stretchr/testify/require"
)

// spreadRounds publishes one message from node 0 of an n-node cluster and
// returns, for each node, the round (counted from the publish) in which it
// delivered it.
func spreadRounds(t testing.TB, n int, loss float64, seed uint64) []int {
	c, err := NewCluster(ClusterConfig{Nodes: n, Seed: seed, Network: transport.NetworkConfig{Loss: loss}})
	require.NoError(t, err)
	c.RunFor(time.Second) // let every node's clock start
	m, err := c.Publish(0, "sim.one", []byte("hello"))
	require.NoError(t, err)
	start := c.Net.Now()
	require.True(t, c.RunUntilDelivered([]gossip.MessageID{m.ID}, time.Minute), "every node delivers within a virtual minute")
	c.RunFor(5 * time.Second) // and nobody delivers it twice afterwards
	interval := c.Nodes[0].Core.Config().Interval
	rounds := make([]int, n)
	for i, node := range c.Nodes {
		require.Equal(t, 1, node.Deliveries[m.ID], "node %d delivers exactly once", i)
		rounds[i] = int(math.Ceil(float64(node.FirstDelivery[m.ID].Sub(start)) / float64(interval)))
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

func pullBound(n int) float64 {
	return math.Log(float64(n))/math.Log(4) + math.Log(math.Log(float64(n)))/math.Log(4)
}

func TestThousandNodesDeliverExactlyOnce(t *testing.T) {
	for _, loss := range []float64{0, 0.2} {
		t.Run(fmt.Sprintf("loss=%.0f%%", loss*100), func(t *testing.T) {
			rounds := spreadRounds(t, 1000, loss, 7)
			t.Logf("N=1000 loss=%.0f%%: 100%% delivered in %d rounds (log4 N + log4 ln N = %.2f)",
				loss*100, maxInt(rounds), pullBound(1000))
			require.Equal(t, rounds, spreadRounds(t, 1000, loss, 7), "same seed, same delivery round for every node")
		})
	}
}

// TestOverheadRatio: 1,000 messages of 256 bytes among 50 nodes, published
// from random nodes over ten seconds. Total bytes sent on the wire (pulls
// and answers) divided by N × message bytes must stay at most 2.0; a pull
// answered with the whole cache gives far more.
func TestOverheadRatio(t *testing.T) {
	ratio, dups := overheadRun(t, 50, 1000, 256, 1)
	t.Logf("overhead ratio %.3f, duplicates per delivery %.4f", ratio, dups)
	require.LessOrEqual(t, ratio, 2.0)
}

func overheadRun(t testing.TB, nodes, messages, size int, seed uint64) (ratio, dupsPerDelivery float64) {
	c, err := NewCluster(ClusterConfig{Nodes: nodes, Seed: seed})
	require.NoError(t, err)
	c.RunFor(time.Second)
	before := c.Totals()
	rng := rand.New(rand.NewPCG(seed, 99))
	payload := make([]byte, size)
	var ids []gossip.MessageID
	for i := 0; i < messages; i++ {
		for j := range payload {
			payload[j] = byte(rng.Uint32())
		}
		m, err := c.Publish(rng.IntN(nodes), "sim.load", payload)
		require.NoError(t, err)
		ids = append(ids, m.ID)
		c.RunFor(10 * time.Millisecond)
	}
	require.True(t, c.RunUntilDelivered(ids, time.Minute))
	after := c.Totals()
	bytes := after.BytesOut - before.BytesOut
	ratio = float64(bytes) / float64(nodes*messages*size)
	dupsPerDelivery = float64(after.Duplicates-before.Duplicates) / float64(after.Delivered-before.Delivered)
	for _, n := range c.Nodes {
		for _, id := range ids {
			require.Equal(t, 1, n.Deliveries[id])
		}
	}
	return ratio, dupsPerDelivery
}

// TestRoundsAtScale reports rounds to full delivery at 10,000 nodes; it
// takes a few seconds, so -short skips it.
func TestRoundsAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000-node runs are skipped with -short")
	}
	for _, loss := range []float64{0, 0.2} {
		rounds := spreadRounds(t, 10_000, loss, 3)
		t.Logf("N=10000 loss=%.0f%%: 100%% delivered in %d rounds (log4 N + log4 ln N = %.2f)",
			loss*100, maxInt(rounds), pullBound(10_000))
		if loss == 0 {
			require.LessOrEqual(t, float64(maxInt(rounds)), pullBound(10_000)+3)
		}
	}
}
