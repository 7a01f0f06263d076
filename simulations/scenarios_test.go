package simulations

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
)

// csvOf returns a report's CSV.
func csvOf(t *testing.T, r Report) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, r.WriteCSV(&b))
	return b.Bytes()
}

// roundAt returns the row of the round ending at time d after the
// publication.
func roundAt(t *testing.T, r Report, d time.Duration) Round {
	t.Helper()
	i := int(d / r.Config.Gossip.Interval)
	require.Less(t, i, len(r.Rounds), "the run lasted past %v", d)
	return r.Rounds[i]
}

// TestBroadcast: at N = 10,000 (500 under -race) with fanout 3, every
// node has the message within log4(N) + log4(ln N) + 3 rounds without
// loss; with 20% loss every node has it too; and the same seed gives the
// same CSV, byte for byte.
func TestBroadcast(t *testing.T) {
	t.Parallel()
	n := underRace(10_000, 500)
	clean, err := Broadcast(Config{Nodes: n, Seed: 11})
	require.NoError(t, err)
	t.Logf("N=%d, no loss: 100%% in %d rounds (bound %.2f, theory %+v), %.3f duplicates and %.0f bytes per node",
		n, clean.RoundsToFull, PullBound(n)+3, clean.Summary().TheoryRounds, clean.DuplicatesPerNode(), clean.BytesPerNode())
	assert.Equal(t, "delivered", clean.Ended)
	assert.Equal(t, 1.0, clean.Delivered)
	assert.Positive(t, clean.RoundsToFull)
	assert.LessOrEqual(t, float64(clean.RoundsToFull), PullBound(n)+3)
	assert.Zero(t, clean.Redelivered)

	lossy, err := Broadcast(Config{Nodes: n, Seed: 11, Loss: 0.2})
	require.NoError(t, err)
	t.Logf("N=%d, 20%% loss: 100%% in %d rounds, %d datagrams lost", n, lossy.RoundsToFull, lossy.Network.Lost)
	assert.Equal(t, "delivered", lossy.Ended)
	assert.Equal(t, 1.0, lossy.Delivered)
	assert.Zero(t, lossy.Missing)
	assert.Positive(t, lossy.Network.Lost)

	again, err := Broadcast(Config{Nodes: n, Seed: 11, Loss: 0.2})
	require.NoError(t, err)
	assert.Equal(t, csvOf(t, lossy), csvOf(t, again), "same seed, same CSV")
	other, err := Broadcast(Config{Nodes: n, Seed: 12, Loss: 0.2})
	require.NoError(t, err)
	assert.NotEqual(t, csvOf(t, lossy), csvOf(t, other), "another seed, another run")
}

// TestPartitionShorterThanCacheHeals: half the nodes are cut off from the
// publication for 2s (10 rounds); they receive nothing meanwhile, and
// everything within a few rounds of the heal, from the caches.
func TestPartitionShorterThanCacheHeals(t *testing.T) {
	t.Parallel()
	n := underRace(2000, 400)
	rep, err := PartitionAndHeal(Config{Nodes: n, Seed: 3})
	require.NoError(t, err)
	assert.Less(t, rep.Publishers[0], n/2, "published in the first group")
	before := roundAt(t, rep, DefaultPartition.Heal)
	assert.Equal(t, 0.5, before.Delivered, "only the first group has it while partitioned")
	assert.Equal(t, "delivered", rep.Ended)
	assert.Zero(t, rep.Missing)
	assert.Positive(t, rep.Network.Partitioned)
	healRound := int(DefaultPartition.Heal / rep.Config.Gossip.Interval)
	t.Logf("healed at round %d, everything delivered at round %d", healRound, rep.RoundsToFull)
	assert.Greater(t, rep.RoundsToFull, healRound)
	assert.LessOrEqual(t, rep.RoundsToFull, healRound+6, "the second group catches up in a few rounds")
}

// TestPartitionLongerThanCacheLosesMessages: a partition that outlasts the
// propagation caches (30 rounds of 200ms from when each node received the
// message) leaves the second group without it when anti-entropy is off:
// repairing that is anti-entropy's job (antientropy_test.go).
func TestPartitionLongerThanCacheLosesMessages(t *testing.T) {
	t.Parallel()
	n := underRace(2000, 400)
	rep, err := PartitionAndHeal(Config{Nodes: n, Seed: 3, Partition: &Partition{Heal: 10 * time.Second}})
	require.NoError(t, err)
	assert.Equal(t, "idle", rep.Ended, "the run ends once every cache has let the message go")
	assert.Equal(t, 0.5, rep.Delivered)
	assert.Equal(t, n/2, rep.Missing)
	assert.Equal(t, -1, rep.RoundsToFull)
}

// TestCrashAndRestart: nodes crashed at the publication and restarted while
// the message is cached receive it, stateless or stateful; nodes crashed
// after receiving it deliver it again only if they restart stateless; nodes
// restarted after the caches let it go never receive it.
func TestCrashAndRestart(t *testing.T) {
	t.Parallel()
	n := underRace(2000, 300)
	crashed := n / 5 // DefaultCrash crashes 20%
	t.Run("missed-then-restarted", func(t *testing.T) {
		t.Parallel()
		for _, mode := range []RestartMode{RestartStateless, RestartStateful} {
			c := DefaultCrash
			c.Restart = mode
			rep, err := CrashAndRestart(Config{Nodes: n, Seed: 5, Churn: &c})
			require.NoError(t, err)
			assert.Equal(t, "delivered", rep.Ended, "%v", mode)
			assert.Equal(t, n, rep.NodesUp, "%v", mode)
			assert.Zero(t, rep.Missing, "%v: every restarted node received it from the caches", mode)
			assert.Zero(t, rep.Redelivered, "%v: they had not delivered it before", mode)
			assert.Greater(t, rep.RoundsToFull, int(c.RestartAt/rep.Config.Gossip.Interval), "%v", mode)
			assert.Positive(t, rep.Network.Undeliverable, "%v: pulls to crashed nodes are lost", mode)
		}
	})
	t.Run("received-then-restarted", func(t *testing.T) {
		t.Parallel()
		// Every node holds the message before the crash, so the run would
		// end at the restart: run on to see what the restarted nodes do.
		c := Churn{Crash: 0.2, CrashAt: 2 * time.Second, Restart: RestartStateless, RestartAt: 3 * time.Second}
		rep, err := CrashAndRestart(Config{Nodes: n, Seed: 5, Churn: &c, Duration: 5 * time.Second})
		require.NoError(t, err)
		assert.Zero(t, rep.Missing)
		assert.Equal(t, uint64(crashed), rep.Redelivered, "a stateless restart delivers again")

		c.Restart = RestartStateful
		rep, err = CrashAndRestart(Config{Nodes: n, Seed: 5, Churn: &c, Duration: 5 * time.Second})
		require.NoError(t, err)
		assert.Zero(t, rep.Missing)
		assert.Zero(t, rep.Redelivered, "a stateful restart remembers what it delivered")
		assert.Positive(t, rep.Totals.Duplicates, "and refuses the copies its peers offer")
	})
	t.Run("restarted-too-late", func(t *testing.T) {
		t.Parallel()
		c := Churn{Crash: 0.2, Restart: RestartStateless, RestartAt: 10 * time.Second}
		rep, err := CrashAndRestart(Config{Nodes: n, Seed: 5, Churn: &c})
		require.NoError(t, err)
		assert.Equal(t, "idle", rep.Ended)
		assert.Equal(t, n, rep.NodesUp)
		assert.Equal(t, crashed, rep.Missing, "without anti-entropy, nothing brings it back")
	})
	t.Run("never-restarted", func(t *testing.T) {
		t.Parallel()
		c := Churn{Crash: 0.2}
		rep, err := CrashAndRestart(Config{Nodes: n, Seed: 5, Churn: &c})
		require.NoError(t, err)
		assert.Equal(t, "delivered", rep.Ended)
		assert.Equal(t, n-crashed, rep.NodesUp)
		assert.Zero(t, rep.Missing, "the nodes up all have it")
	})
}

// TestLateJoin: nodes joining while the message is cached receive it;
// nodes joining after the caches let it go do not.
func TestLateJoin(t *testing.T) {
	t.Parallel()
	n := underRace(2000, 300)
	rep, err := LateJoin(Config{Nodes: n, Seed: 9})
	require.NoError(t, err)
	assert.Equal(t, "delivered", rep.Ended)
	assert.Equal(t, n, rep.NodesUp)
	assert.Zero(t, rep.Missing)
	joinRound := int(DefaultJoin.JoinAt / rep.Config.Gossip.Interval)
	assert.Less(t, roundAt(t, rep, DefaultJoin.JoinAt).Delivered, 1.0, "the joiners arrive without it")
	assert.Greater(t, rep.RoundsToFull, joinRound)

	late := Churn{Join: 0.1, JoinAt: 10 * time.Second}
	rep, err = LateJoin(Config{Nodes: n, Seed: 9, Churn: &late})
	require.NoError(t, err)
	assert.Equal(t, n/10, rep.Missing)

	atOnce := Churn{Join: 0.1, JoinAt: 0}
	rep, err = LateJoin(Config{Nodes: n, Seed: 9, Churn: &atOnce})
	require.NoError(t, err)
	assert.Equal(t, "delivered", rep.Ended, "nodes joining at the publication start pulling at once")
}

// TestSkewWithinToleranceChangesNothing: clocks off by up to 10s either
// way deliver exactly as synchronised clocks do.
func TestSkewWithinToleranceChangesNothing(t *testing.T) {
	t.Parallel()
	base := Config{Nodes: underRace(2000, 500), Seed: 4}
	plain, err := Broadcast(base)
	require.NoError(t, err)
	skewed, err := SkewedClocks(base)
	require.NoError(t, err)
	assert.Equal(t, "10s", skewed.Summary().Skew)
	assert.Equal(t, plain.RoundsToFull, skewed.RoundsToFull)
	require.Equal(t, len(plain.Rounds), len(skewed.Rounds))
	for i := range plain.Rounds {
		assert.Equal(t, plain.Rounds[i].Delivered, skewed.Rounds[i].Delivered, "round %d", i)
	}
	assert.Empty(t, skewed.Dropped())
}

// TestSkewBeyondToleranceDropsMessages: a node whose clock is more than
// ClockSkew (30s) behind the publisher's refuses the message as
// from_future, one more than MaxAge (10m) ahead as too_old; both are
// counted and never deliver it, and every other node does.
func TestSkewBeyondToleranceDropsMessages(t *testing.T) {
	t.Parallel()
	n := underRace(2000, 400) // a multiple of 8
	offset := func(i int) time.Duration {
		switch i % 8 {
		case 0:
			return -40 * time.Second // behind by more than ClockSkew
		case 1:
			return 11 * time.Minute // ahead by more than MaxAge
		case 2:
			return -20 * time.Second // behind, within ClockSkew
		}
		return 0
	}
	rep, err := SkewedClocks(Config{Nodes: n, Seed: 6, Skew: SkewFunc(offset), Publishers: []int{3}})
	require.NoError(t, err)
	assert.Equal(t, "idle", rep.Ended)
	assert.Equal(t, n/4, rep.Missing, "the nodes 40s behind and 11m ahead")
	assert.Positive(t, rep.Totals.Dropped[gossip.DropFromFuture])
	assert.Positive(t, rep.Totals.Dropped[gossip.DropTooOld])
	t.Logf("dropped: %v", rep.Dropped())
}
