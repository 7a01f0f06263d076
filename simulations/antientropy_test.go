package simulations

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
)

// lossRun publishes 20 messages into 200 nodes with 30% datagram loss and
// caches too short (2 rounds) for gossip alone to finish, and returns the
// deliveries missing once all are delivered or limit has passed.
func lossRun(t *testing.T, antiEntropy bool, limit time.Duration) (*Simulator, int) {
	s, err := New(Config{
		Nodes: 200, Seed: 21, Loss: 0.3, AntiEntropy: antiEntropy,
		Gossip: gossip.Config{CacheRounds: 2, AEInterval: 2 * time.Second},
	})
	require.NoError(t, err)
	s.RunFor(time.Second)
	for m := 0; m < 20; m++ {
		_, err := s.Publish(m*10, "sim.loss", []byte(fmt.Sprint(m)))
		require.NoError(t, err)
	}
	s.RunUntilDelivered(limit)
	return s, s.Missing()
}

// With 30% loss and anti-entropy on, every node delivers every message
// within a virtual minute, each once; gossip alone, with the same short
// caches, does not. It is given 10s, well past the 2 rounds after which
// its caches hold nothing more to spread.
func TestAntiEntropyCompletesUnderLoss(t *testing.T) {
	t.Parallel()
	var s *Simulator
	var missingWithout, missing int
	if !inParallel(t,
		func(t *testing.T) { _, missingWithout = lossRun(t, false, 10*time.Second) },
		func(t *testing.T) { s, missing = lossRun(t, true, time.Minute) }) {
		return
	}
	t.Logf("30%% loss, caches of 2 rounds: %d deliveries missing with gossip alone, %d with anti-entropy", missingWithout, missing)
	require.Positive(t, missingWithout, "the test is meaningful: gossip alone leaves gaps")
	require.Zero(t, missing, "anti-entropy fills every gap")
	require.True(t, s.AllDelivered())
	require.Zero(t, s.Redelivered(), "nothing delivered twice")
}

// A two-way partition for 60 virtual seconds, messages published on both
// sides; once healed, every node's Merkle root is the same within three
// anti-entropy intervals, and every node has every message.
func TestAntiEntropyHealsPartitionWithinThreeIntervals(t *testing.T) {
	t.Parallel()
	const interval = 10 * time.Second
	nodes := underRace(100, 50)
	s, err := New(Config{Nodes: nodes, Seed: 5, AntiEntropy: true, Gossip: gossip.Config{AEInterval: interval}})
	require.NoError(t, err)
	s.RunFor(time.Second)
	s.Partition(0.5)
	for m := 0; m < 10; m++ {
		for _, side := range []int{0, nodes / 2} {
			_, err := s.Publish(side+m, "sim.split", []byte(fmt.Sprint(side, m)))
			require.NoError(t, err)
		}
		s.RunFor(6 * time.Second)
	}
	require.Positive(t, s.Missing(), "the partition kept each side's messages from the other")
	s.Heal()
	healed := s.Now()
	rootsEqual := func() bool {
		r0, _ := s.Core(0).MerkleRoot()
		for i := 1; i < nodes; i++ {
			if r, _ := s.Core(i).MerkleRoot(); r != r0 {
				return false
			}
		}
		return true
	}
	for !rootsEqual() {
		require.Less(t, s.Now()-healed, 3*interval, "roots still differ three anti-entropy intervals after the heal")
		s.RunFor(100 * time.Millisecond)
	}
	t.Logf("all %d roots equal %v after the heal (anti-entropy interval %v)", nodes, s.Now()-healed, interval)
	require.True(t, s.AllDelivered())
	_, logged := s.Core(0).MerkleRoot()
	require.Equal(t, 20, logged)
	require.Zero(t, s.Redelivered())
}
