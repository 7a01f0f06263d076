package simulations

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
)

func gossipConfig(fanout int, interval time.Duration) gossip.Config {
	return gossip.Config{Fanout: fanout, Interval: interval}
}

func TestNodeAddrRoundTrip(t *testing.T) {
	for _, i := range []int{0, 1, 255, 256, 65535, MaxNodes - 1} {
		assert.Equal(t, i, NodeIndex(NodeAddr(i)))
	}
	assert.Equal(t, -1, NodeIndex(netip.MustParseAddrPort("10.0.0.1:7600")))
	assert.Equal(t, -1, NodeIndex(netip.MustParseAddrPort("127.0.0.1:80")))
}

func TestRandomGraph(t *testing.T) {
	for _, tc := range []struct{ nodes, degree int }{{100, 4}, {101, 3}, {1000, 8}, {2, 1}} {
		g, err := NewRandomGraph(tc.nodes, tc.degree, 7)
		require.NoError(t, err)
		short := 0
		for i := 0; i < tc.nodes; i++ {
			for _, v := range g.Neighbours(i) {
				if v < 0 {
					short++
					continue
				}
				assert.NotEqual(t, int32(i), v, "no self-loop")
				assert.Contains(t, g.Neighbours(int(v)), int32(i), "edges go both ways")
			}
		}
		if tc.nodes%2 == 1 && tc.degree%2 == 1 {
			assert.Equal(t, 1, short, "one node short of an edge")
		} else {
			assert.Zero(t, short)
		}
		again, err := NewRandomGraph(tc.nodes, tc.degree, 7)
		require.NoError(t, err)
		assert.Equal(t, g.adj, again.adj, "same seed, same graph")
	}

	g, err := NewRandomGraph(1000, 8, 1)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 1000; i++ {
		peers := g.Sampler(i, 1000).SamplePeers(rng, 3, nil)
		require.Len(t, peers, 3)
		seen := map[netip.AddrPort]bool{}
		for _, p := range peers {
			assert.False(t, seen[p], "distinct")
			seen[p] = true
			assert.Contains(t, g.Neighbours(i), int32(NodeIndex(p)), "a neighbour")
		}
	}
	// Asking for more than the degree gives every distinct neighbour.
	assert.Len(t, g.Sampler(0, 1000).SamplePeers(rng, 20, nil), distinct(g.Neighbours(0)))
}

func distinct(xs []int32) int {
	m := map[int32]bool{}
	for _, x := range xs {
		if x >= 0 {
			m[x] = true
		}
	}
	return len(m)
}

func TestGraphPeersDeliver(t *testing.T) {
	t.Parallel()
	n := underRace(2000, 500)
	peers, err := NewRandomGraph(n, 6, 2)
	require.NoError(t, err)
	rep, err := Broadcast(Config{Nodes: n, Seed: 2, Peers: peers})
	require.NoError(t, err)
	assert.Equal(t, "delivered", rep.Ended)
	assert.Equal(t, "graph:6", rep.Summary().Peers)
	full, err := Broadcast(Config{Nodes: n, Seed: 2})
	require.NoError(t, err)
	t.Logf("%d nodes: %d rounds on a graph of degree 6, %d with full membership", n, rep.RoundsToFull, full.RoundsToFull)
	assert.GreaterOrEqual(t, rep.RoundsToFull, full.RoundsToFull)
}

func TestLatencyModels(t *testing.T) {
	t.Parallel()
	n := underRace(500, 200)
	rng := rand.New(rand.NewPCG(1, 1))
	for _, l := range []Latency{
		UniformLatency{Min: time.Millisecond, Max: 9 * time.Millisecond},
		NormalLatency{Mean: 5 * time.Millisecond, StdDev: 2 * time.Millisecond},
		LogNormalLatency{Median: 5 * time.Millisecond, Sigma: 0.5},
	} {
		var sum time.Duration
		for i := 0; i < 10_000; i++ {
			d := l.Delay(0, 1, rng)
			require.GreaterOrEqual(t, d, time.Duration(0), "%v", l)
			sum += d
		}
		mean := sum / 10_000
		assert.InDelta(t, float64(5*time.Millisecond), float64(mean), float64(700*time.Microsecond), "%v: mean %v", l, mean)

		rep, err := Broadcast(Config{Nodes: n, Seed: 1, Latency: l, Loss: 0.05})
		require.NoError(t, err, "%v", l)
		assert.Equal(t, "delivered", rep.Ended, "%v", l)
		again, err := Broadcast(Config{Nodes: n, Seed: 1, Latency: l, Loss: 0.05})
		require.NoError(t, err)
		assert.Equal(t, rep.Rounds, again.Rounds, "%v: deterministic", l)
	}
}

func TestUniformSkew(t *testing.T) {
	s := UniformSkew{Max: time.Second, Seed: 3}
	var lo, hi bool
	for i := 0; i < 1000; i++ {
		d := s.Offset(i)
		require.LessOrEqual(t, d.Abs(), time.Second)
		lo, hi = lo || d < -900*time.Millisecond, hi || d > 900*time.Millisecond
		assert.Equal(t, d, s.Offset(i), "a pure function of the node")
	}
	assert.True(t, lo && hi, "covers the range")
	assert.Zero(t, UniformSkew{}.Offset(5))
}

func TestTheory(t *testing.T) {
	const n = 1000
	sub := TheorySubRounds(n, 3, 0, 10)
	classic := TheoryClassicPull(n, 3, 0, 10)
	async := TheoryAsyncPull(n, 3, 0, 10)
	assert.InDelta(t, 0.001, sub[0], 1e-12)
	// One round of three sub-rounds: 1 → 2 → 4 → 8 nodes, nearly.
	assert.InDelta(t, 8.0/n, sub[1], 0.2/n)
	// Classic: 1 − q^4 with q = 1 − 1/n.
	assert.InDelta(t, 1-math.Pow(1-1.0/n, 4), classic[1], 1e-12)
	for r := 1; r <= 10; r++ {
		assert.GreaterOrEqual(t, sub[r], sub[r-1])
		assert.GreaterOrEqual(t, async[r], sub[r]-1e-9, "round %d: pulls that see this sub-round's news go faster", r)
		assert.GreaterOrEqual(t, sub[r], classic[r]-1e-9, "round %d", r)
	}
	assert.Greater(t, sub[10], 1-1e-9)
	lossy := TheorySubRounds(n, 3, 0.2, 10)
	assert.Less(t, lossy[5], sub[5], "loss slows the spread")
	assert.InDelta(t, 6.38, PullBound(n), 0.01)
}

func TestReportFiles(t *testing.T) {
	t.Parallel()
	rep, err := Broadcast(Config{Nodes: 200, Seed: 1, Messages: 3, Loss: 0.1})
	require.NoError(t, err)
	dir := t.TempDir()
	paths, err := rep.WriteFiles(dir)
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(dir, SummaryFile), filepath.Join(dir, RoundsFile), filepath.Join(dir, ChartFile),
		filepath.Join(dir, LatencyFile), filepath.Join(dir, LatencyChartFile)}, paths)

	raw, err := os.ReadFile(paths[0])
	require.NoError(t, err)
	var s Summary
	require.NoError(t, json.Unmarshal(raw, &s))
	assert.Equal(t, 200, s.Nodes)
	assert.Equal(t, 3, s.Messages)
	assert.Len(t, s.Publishers, 3)
	assert.Equal(t, 0.1, s.Loss)
	assert.Equal(t, rep.RoundsToFull, s.RoundsToFull)
	assert.Equal(t, uint64(597), s.Totals.MessagesReceived-s.Totals.Duplicates, "3 messages to 199 nodes each")
	lat := rep.DeliveryLatency
	assert.Equal(t, 597, s.LatencyPairs, "3 messages to 199 nodes each")
	assert.Equal(t, 597, s.LatencyDelivered)
	assert.Equal(t, LatencyPercentiles{P50: lat.P50.Milliseconds(), P90: lat.P90.Milliseconds(), P99: lat.P99.Milliseconds(), Max: lat.Max.Milliseconds()}, s.LatencyMs)
	assert.Positive(t, s.LatencyMs.P50)
	assert.Equal(t, lat.Full.Milliseconds(), s.FullDeliveryMs)
	assert.Equal(t, s.LatencyMs.Max, s.FullDeliveryMs)
	require.Len(t, s.MessageFullDeliveryMs, 3, "one per message")
	assert.Equal(t, s.FullDeliveryMs, slices.Max(s.MessageFullDeliveryMs))

	csvBytes, err := os.ReadFile(paths[1])
	require.NoError(t, err)
	lines := bytes.Split(bytes.TrimSpace(csvBytes), []byte("\n"))
	assert.Equal(t, "round,time_s,delivered_fraction,nodes_up,messages_sent,bytes_sent,datagrams_sent,duplicates,theory_subrounds,theory_classic,theory_async", string(lines[0]))
	assert.Len(t, lines, len(rep.Rounds)+1)

	latCSV, err := os.ReadFile(paths[3])
	require.NoError(t, err)
	lines = bytes.Split(bytes.TrimSpace(latCSV), []byte("\n"))
	assert.Equal(t, "latency_ms,deliveries,fraction_delivered", string(lines[0]))
	require.Len(t, lines, len(lat.CDF)+1, "a header and one line per point")
	last := lat.CDF[len(lat.CDF)-1]
	assert.Equal(t, fmt.Sprintf("%d,%d,1.000000", last.Latency.Milliseconds(), last.Deliveries), string(lines[len(lines)-1]))

	for _, chart := range []string{paths[2], paths[4]} {
		f, err := os.Open(chart)
		require.NoError(t, err)
		img, err := png.Decode(f)
		require.NoError(t, f.Close())
		require.NoError(t, err, chart)
		assert.Greater(t, img.Bounds().Dx(), 400, chart)
	}
}

func TestSimulatorOperations(t *testing.T) {
	s, err := New(Config{Nodes: 50, Seed: 1, Churn: &Churn{Join: 0.1}})
	require.NoError(t, err)
	assert.Len(t, s.LateJoiners(), 5)
	assert.Equal(t, 45, s.NodesUp())
	late := s.LateJoiners()[0]
	assert.False(t, s.Up(late))
	assert.Nil(t, s.Core(late))
	_, err = s.Publish(late, "t.x", nil)
	assert.ErrorIs(t, err, ErrNodeDown)
	require.NoError(t, s.Start(late))
	assert.ErrorIs(t, s.Start(late), ErrNodeStarted)

	s.RunFor(time.Second)
	up := 0
	for up == late || !s.Up(up) {
		up++
	}
	_, err = s.Publish(up, "t.x", []byte("x"))
	require.NoError(t, err)
	require.NoError(t, s.Crash(late))
	assert.ErrorIs(t, s.Crash(late), ErrNodeDown)
	assert.ErrorIs(t, s.Restart(up, RestartStateless), ErrNodeUp)
	assert.ErrorIs(t, s.Crash(50), ErrNoSuchNode)
	assert.ErrorIs(t, s.Start(-1), ErrNoSuchNode)
	_, err = s.Publish(99, "t.x", nil)
	assert.ErrorIs(t, err, ErrNoSuchNode)
	assert.Error(t, s.Restart(late, NoRestart))
	require.True(t, s.RunUntilDelivered(10*time.Second))
	require.NoError(t, s.Restart(late, RestartStateful))

	fired := time.Duration(-1)
	s.At(s.Now()+500*time.Millisecond, func() { fired = s.Now() })
	assert.Equal(t, 1, s.PendingEvents())
	start := s.Now()
	s.RunFor(time.Second)
	assert.Equal(t, start+500*time.Millisecond, fired)
	assert.Zero(t, s.PendingEvents())
	require.True(t, s.AllDelivered())
	assert.Equal(t, 0, s.Missing())
	at, ok := s.DeliveredAt(0, up)
	assert.True(t, ok)
	assert.Zero(t, at, "the publisher delivers at once")
	assert.Equal(t, 46, s.NodesUp(), "45 started with the rest, one late joiner")
	assert.Equal(t, s.NodesUp(), s.Delivered(0))

	before, gone := s.Totals(), s.Core(up).Stats()
	require.NoError(t, s.Crash(up))
	after := s.Totals()
	assert.Equal(t, before.Rounds, after.Rounds, "a crashed core's counters stay in the totals")
	assert.Equal(t, before.Published, after.Published)
	require.Positive(t, gone.CacheMessages)
	assert.Equal(t, before.CacheMessages-gone.CacheMessages, after.CacheMessages, "and its gauges leave them")
	assert.Equal(t, before.Origins-gone.Origins, after.Origins)
}
