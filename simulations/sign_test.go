package simulations

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
)

// With Sign, every node signs what it publishes and verifies what it
// receives: everything is delivered, once, through loss, and nothing
// fails its signature; each node keeps its own key.
func TestSignedSimulation(t *testing.T) {
	t.Parallel()
	n := underRace(300, 100)
	s, err := New(Config{Nodes: n, Seed: 3, Loss: 0.05, Sign: true})
	require.NoError(t, err)
	s.RunFor(time.Second)
	for i := range 20 {
		_, err := s.Publish(i*7%n, fmt.Sprintf("sim.%d", i), []byte("signed"))
		require.NoError(t, err)
	}
	require.True(t, s.RunUntilDelivered(time.Minute))
	s.RunFor(2 * time.Second)
	require.Zero(t, s.Redelivered())
	tot := s.Totals()
	require.Zero(t, tot.Dropped[gossip.DropBadSignature])
	require.Zero(t, tot.Dropped[gossip.DropUnsigned])
	var statements, verified uint64
	for i := range n {
		ts := s.Core(i).TrustStats()
		statements += ts.StatementsOut
		verified += ts.Verified
	}
	require.Equal(t, uint64(20), statements, "one statement per message at this rate")
	require.Equal(t, uint64(20*(n-1)), verified, "every node verified every message of the others")
	require.NotEqual(t, s.Core(0).ID(), s.Core(1).ID())
}
