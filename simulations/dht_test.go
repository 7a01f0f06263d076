package simulations

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/registry/dht"
)

// lightDHT is the DHT model with the lighter tables most tests use: half
// the bucket size and a sample pool of 16. At 10,000 nodes a node's join
// then costs about 780 datagrams instead of 1,700, and 60 KB instead of
// 115 KB; gossip still samples 3 of some 20 contacts spread over the
// network.
var lightDHT = DHT{Table: dht.Config{K: 8, SamplePoolSize: 16}}

// TestDHTBootstrapFromOneNode: 200 nodes (40 under -race) join through
// node 0 alone, with the default tables; after the warm-up every table has
// joined and holds at least 16 answering contacts in its k-buckets, and a
// message then reaches every node.
func TestDHTBootstrapFromOneNode(t *testing.T) {
	t.Parallel()
	n := underRace(200, 40)
	s, err := New(Config{Nodes: n, Seed: 1, Peers: DHT{}})
	require.NoError(t, err)
	assert.Equal(t, DefaultDHTWarmup, s.Config().Warmup, "the DHT's warm-up")
	assert.Equal(t, "dht:bootstrap=1,warmup=10s,pool=128,ping=30s", s.Config().Peers.String())
	s.RunUntil(s.Config().Warmup)
	for i := range n {
		tbl := s.Table(i)
		require.NotNil(t, tbl, "node %d", i)
		st := tbl.Stats()
		require.True(t, st.Joined, "node %d", i)
		answering := 0
		for _, b := range tbl.Buckets() {
			answering += b.Answering
		}
		require.GreaterOrEqual(t, answering, 16, "node %d: %+v", i, st)
		require.GreaterOrEqual(t, len(tbl.Peers()), 16, "node %d", i)
		require.Zero(t, st.Timeouts, "node %d: no loss, no crash", i)
	}
	st, ok := s.DHTStats()
	require.True(t, ok)
	t.Logf("%d nodes after %v: %+v", n, s.Config().Warmup, st)
	assert.Equal(t, n, st.Joined)
	assert.Equal(t, NodeAddr(0), s.tables.boot[0])

	_, err = s.Publish(7, "sim.dht", []byte("hello"))
	require.NoError(t, err)
	require.True(t, s.RunUntilDelivered(10*time.Second), "every node delivers")
	assert.Zero(t, s.Redelivered())
}

// TestDHTAgainstFullMembership: rounds to 100% with every node sampling
// its peers from its DHT table stay within 1.5 times those of full
// membership, same seed and fanout, at 1,000 nodes (100 under -race).
// 10,000 nodes take minutes to join: BenchmarkScaleDHT checks the same
// from there up.
func TestDHTAgainstFullMembership(t *testing.T) {
	t.Parallel()
	n := underRace(1_000, 100)
	var full, rep Report
	if !inParallel(t, func(t *testing.T) {
		var err error
		full, err = Broadcast(Config{Nodes: n, Seed: 3})
		require.NoError(t, err)
	}, func(t *testing.T) {
		var err error
		rep, err = Broadcast(Config{Nodes: n, Seed: 3, Peers: lightDHT})
		require.NoError(t, err)
	}) {
		return
	}
	d := rep.Summary().DHT
	t.Logf("N=%d: %d rounds with the DHT (%s), %d with full membership; at the publication %d/%d joined, %.1f answering contacts per node (min %d), %.0f DHT datagrams per node during the warm-up; wall %v",
		n, rep.RoundsToFull, rep.Config.Peers, full.RoundsToFull, d.Joined, d.Tables, d.PeersMean, d.PeersMin, d.WarmupDatagramsPerNode, rep.Wall)
	assert.Equal(t, "delivered", rep.Ended)
	assert.Equal(t, n, d.Joined)
	assert.GreaterOrEqual(t, d.PeersMin, 16)
	require.Positive(t, rep.RoundsToFull)
	assert.LessOrEqual(t, float64(rep.RoundsToFull), 1.5*float64(full.RoundsToFull))
	assert.Zero(t, rep.Redelivered)
}

// TestDHTSurvivesCrashOfAFifth: a fifth of 1,000 nodes (100 under -race)
// crash at the publication, after the warm-up, while every table still
// lists them; the others all get the message, their pulls to the dead
// wasted.
func TestDHTSurvivesCrashOfAFifth(t *testing.T) {
	t.Parallel()
	n := underRace(1000, 100)
	rep, err := Run(Config{Nodes: n, Seed: 4, Peers: lightDHT, Churn: &Churn{Crash: 0.2}})
	require.NoError(t, err)
	t.Logf("%d of %d nodes up: 100%% after %d rounds, %d datagrams to crashed nodes", rep.NodesUp, n, rep.RoundsToFull, rep.Network.Undeliverable)
	assert.Equal(t, "delivered", rep.Ended)
	assert.Equal(t, n-n/5, rep.NodesUp)
	assert.Zero(t, rep.Missing)
	assert.Positive(t, rep.Network.Undeliverable, "pulls to the crashed nodes are lost")
	assert.Equal(t, n, rep.DHT.Published.Tables, "the crash comes after the publication's count")
}

// TestDHTSameSeedSameCSV: with the DHT, loss and jittered latency, the same
// seed gives the same CSV byte for byte, and another seed another. Three
// bootstrap nodes: through one alone, a tenth of the datagrams lost keeps
// a few nodes from joining within the warm-up (a self-lookup through one
// node fails on one lost datagram and is retried 2s, 4s, 8s later).
func TestDHTSameSeedSameCSV(t *testing.T) {
	t.Parallel()
	cfg := func(seed uint64) Config {
		return Config{Nodes: underRace(300, 40), Seed: seed, Peers: DHT{Bootstrap: 3, Table: lightDHT.Table}, Loss: 0.1,
			Latency: UniformLatency{Min: time.Millisecond, Max: 9 * time.Millisecond}}
	}
	var a, b, c Report
	run := func(rep *Report, seed uint64) func(t *testing.T) {
		return func(t *testing.T) {
			var err error
			*rep, err = Run(cfg(seed))
			require.NoError(t, err)
		}
	}
	if !inParallel(t, run(&a, 5), run(&b, 5), run(&c, 6)) {
		return
	}
	assert.Equal(t, "delivered", a.Ended)
	assert.Equal(t, csvOf(t, a), csvOf(t, b), "same seed, same CSV")
	assert.Equal(t, a.DHT, b.DHT, "and the same DHT traffic")
	assert.NotEqual(t, csvOf(t, a), csvOf(t, c), "another seed, another run")
}

// TestDHTRestarts: a fifth of the nodes, crashed at the publication and
// restarted 2s later (as DefaultCrash does), rejoin: stateful ones through
// the contacts they held (their table ID unchanged), stateless ones
// through the bootstrap node with a new ID; either way they all get the
// message from the caches.
func TestDHTRestarts(t *testing.T) {
	t.Parallel()
	n := underRace(300, 60)
	for _, mode := range []RestartMode{RestartStateful, RestartStateless} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			s, err := New(Config{Nodes: n, Seed: 8, Peers: lightDHT})
			require.NoError(t, err)
			s.RunUntil(s.Config().Warmup)
			const victim, publisher = 17, 3
			before := s.Table(victim).Config().Self
			var crashed []int
			for i := victim % 5; i < n; i += 5 {
				require.NoError(t, s.Crash(i))
				crashed = append(crashed, i)
			}
			require.Len(t, crashed, n/5)
			assert.Nil(t, s.Table(victim), "a crashed node's table stops")
			_, err = s.Publish(publisher, "sim.dht", []byte("x"))
			require.NoError(t, err)
			s.RunFor(DefaultCrash.RestartAt)
			for _, i := range crashed {
				require.NoError(t, s.Restart(i, mode))
			}
			s.RunFor(2 * time.Second)
			tbl := s.Table(victim)
			require.NotNil(t, tbl)
			st := tbl.Stats()
			assert.True(t, st.Joined)
			assert.GreaterOrEqual(t, st.Answering, 8)
			if mode == RestartStateful {
				assert.Equal(t, before, tbl.Config().Self, "same ID")
			} else {
				assert.NotEqual(t, before, tbl.Config().Self, "a new ID")
			}
			_, ok := s.DeliveredAt(0, victim)
			assert.True(t, ok, "the restarted node got the message")
			require.True(t, s.RunUntilDelivered(10*time.Second), "every restarted node gets it")
			assert.Equal(t, n, s.NodesUp())
			assert.Zero(t, s.Missing())
		})
	}
}

// TestDHTLateJoinAndPartition: nodes joining 2s after the publication
// bootstrap and get the message from the caches; a partition healed
// before the caches expire heals the DHT's traffic as gossip's.
func TestDHTLateJoinAndPartition(t *testing.T) {
	t.Parallel()
	n := underRace(300, 40)
	inParallel(t, func(t *testing.T) {
		rep, err := LateJoin(Config{Nodes: n, Seed: 9, Peers: lightDHT})
		require.NoError(t, err)
		assert.Equal(t, "delivered", rep.Ended)
		assert.Equal(t, n, rep.NodesUp)
		assert.Zero(t, rep.Missing)
	}, func(t *testing.T) {
		rep, err := PartitionAndHeal(Config{Nodes: n, Seed: 9, Peers: lightDHT})
		require.NoError(t, err)
		assert.Equal(t, "delivered", rep.Ended)
		assert.Equal(t, 0.5, roundAt(t, rep, DefaultPartition.Heal).Delivered, "only the first group has it while partitioned")
		assert.Zero(t, rep.Missing)
	})
}

// TestDHTBootstrapNodes: with bootstrap=3 the first three nodes that are
// up from the start are the bootstrap nodes, late joiners skipped.
func TestDHTBootstrapNodes(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed < 40; seed++ {
		s, err := New(Config{Nodes: 20, Seed: seed, Peers: DHT{Bootstrap: 3}, Churn: &Churn{Join: 0.5, JoinAt: time.Second}})
		require.NoError(t, err)
		late := map[int]bool{}
		for _, i := range s.LateJoiners() {
			late[i] = true
		}
		if !late[0] && !late[1] {
			continue
		}
		var want []int
		for i := 0; len(want) < 3; i++ {
			if !late[i] {
				want = append(want, i)
			}
		}
		require.Len(t, s.tables.boot, 3)
		for k, i := range want {
			assert.Equal(t, NodeAddr(i), s.tables.boot[k])
		}
		s.RunUntil(s.Config().Warmup)
		for i := range 20 {
			if !late[i] {
				assert.True(t, s.Table(i).Stats().Joined, "node %d", i)
			} else {
				assert.Nil(t, s.Table(i), "node %d waits", i)
			}
		}
		return
	}
	t.Fatal("no seed made node 0 or 1 a late joiner")
}

func TestDHTConfigErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"bootstrap above nodes": {Nodes: 10, Peers: DHT{Bootstrap: 11}},
		"bootstrap above 64":    {Nodes: 100, Peers: DHT{Bootstrap: 65}},
		"negative bootstrap":    {Nodes: 10, Peers: DHT{Bootstrap: -1}},
		"table K":               {Nodes: 10, Peers: DHT{Table: dht.Config{K: 33}}},
		"ping interval":         {Nodes: 10, Peers: DHT{Table: dht.Config{PingInterval: time.Millisecond}}},
		"nil model":             {Nodes: 10, Peers: (*DHT)(nil)},
	} {
		_, err := New(cfg)
		assert.Error(t, err, name)
		_, err = Run(cfg)
		assert.Error(t, err, name)
	}
	s, err := New(Config{Nodes: 10, Peers: &DHT{Warmup: time.Second}})
	require.NoError(t, err, "a *DHT works as a DHT")
	assert.Equal(t, time.Second, s.Config().Warmup)
	s, err = New(Config{Nodes: 10, Peers: DHT{Warmup: time.Second}, Warmup: 3 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, 3*time.Second, s.Config().Warmup, "Config.Warmup wins")
	assert.Contains(t, s.Config().Peers.String(), "warmup=3s")
	assert.Empty(t, DHT{}.Sampler(0, 10).SamplePeers(nil, 3, nil), "outside a Simulator, no peers")
	_, ok := s.DHTStats()
	assert.True(t, ok)
	s, err = New(Config{Nodes: 10})
	require.NoError(t, err)
	_, ok = s.DHTStats()
	assert.False(t, ok)
	assert.Nil(t, s.Table(0))
}

// TestDHTStaggeredJoinsSkewPools: when the nodes join one after another
// (Spread), the sample pools filled by the early joiners hold only early
// joiners until they turn over, minutes later; when all join at once, how
// many nodes can pull from a given one is spread evenly. Each node's
// candidates are estimated from 300 draws of SamplePeers. 1,000 nodes, 150
// under -race (at 100, too few nodes are left out of every pool to tell the
// skew from chance).
func TestDHTStaggeredJoinsSkewPools(t *testing.T) {
	t.Parallel()
	n := underRace(1000, 150)
	pullers := func(t *testing.T, m DHT) (sorted []int, unpulled int) {
		s, err := New(Config{Nodes: n, Seed: 4, Peers: m})
		require.NoError(t, err)
		s.RunUntil(s.Config().Warmup)
		rng := rand.New(rand.NewPCG(1, 2))
		in := make([]int, n)
		for i := range n {
			cands := map[netip.AddrPort]bool{}
			for range 300 {
				for _, p := range s.Table(i).SamplePeers(rng, 3, nil) {
					cands[p] = true
				}
			}
			for p := range cands {
				in[NodeIndex(p)]++
			}
		}
		for _, x := range in {
			if x == 0 {
				unpulled++
			}
		}
		slices.Sort(in)
		return in, unpulled
	}
	at := func(xs []int, q float64) int { return xs[int(q*float64(len(xs)-1))] }
	var once, spread []int
	var onceZero, spreadZero int
	staggered := lightDHT
	staggered.Spread = 5 * time.Second
	if !inParallel(t,
		func(t *testing.T) { once, onceZero = pullers(t, lightDHT) },
		func(t *testing.T) { spread, spreadZero = pullers(t, staggered) }) {
		return
	}
	t.Logf("nodes that can pull from a node, min/median/max: %d/%d/%d (%d in no pool) joining at once, %d/%d/%d (%d in no pool) over 5s",
		once[0], at(once, 0.5), once[n-1], onceZero, spread[0], at(spread, 0.5), spread[n-1], spreadZero)
	assert.Greater(t, spreadZero, 5*onceZero+5)
	assert.Greater(t, spread[n-1], 3*once[n-1]/2)
}
