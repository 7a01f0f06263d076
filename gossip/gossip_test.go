package gossip_test

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/gossip/gossiptest"
	"github.com/hearsay-io/hearsay/msglog"
	"github.com/hearsay-io/hearsay/transport"
)

// The tests of this package that run cores together drive them with
// gossiptest, so they are external; the helpers they share are here.

// t0 is the network's default start, for cores made without a cluster.
var t0 = time.Unix(1_700_000_000, 0)

// noPeers is the registry of a core that pulls from no one.
type noPeers struct{}

func (noPeers) SamplePeers(_ *rand.Rand, _ int, dst []netip.AddrPort) []netip.AddrPort { return dst }

// instant starts a cluster of n cores whose datagrams arrive the instant
// they are sent, configured by tweak.
func instant(t *testing.T, n int, tweak func(i int, c *gossip.Config)) *gossiptest.Cluster {
	return gossiptest.New(t, gossiptest.Config{Nodes: n, Instant: true, Core: tweak})
}

// lossy starts a cluster of n cores on a network with 1 ms latency that
// loses the fraction loss of datagrams, configured by tweak.
func lossy(t *testing.T, n int, loss float64, tweak func(i int, c *gossip.Config)) *gossiptest.Cluster {
	return gossiptest.New(t, gossiptest.Config{Nodes: n, Network: transport.NetworkConfig{Seed: 7, Loss: loss}, Core: tweak})
}

func withLog(aeInterval time.Duration) func(i int, c *gossip.Config) {
	return func(i int, c *gossip.Config) {
		c.Log = msglog.NewMemory(0)
		c.AEInterval = aeInterval
		c.CacheRounds = 3 // gossip gives up quickly: what it misses is anti-entropy's
	}
}

func requireDeliveredOnce(t *testing.T, got []gossip.Message, want gossip.Message) {
	t.Helper()
	require.Len(t, got, 1)
	m := got[0]
	require.Equal(t, want.ID, m.ID)
	require.Equal(t, want.Origin, m.Origin)
	require.Equal(t, want.Seq, m.Seq)
	require.Equal(t, want.Topic, m.Topic)
	require.True(t, want.Created.Equal(m.Created))
	require.True(t, bytes.Equal(want.Payload, m.Payload), "byte-identical payload")
}

// requireOnceEach requires that no message was delivered twice.
func requireOnceEach(t *testing.T, got []gossip.Message) {
	t.Helper()
	seen := map[gossip.MessageID]bool{}
	for _, m := range got {
		require.False(t, seen[m.ID], "delivered twice")
		seen[m.ID] = true
	}
}
