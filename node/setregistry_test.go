package node

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/registry/dht"
)

// SetRegistry swaps a node's peers while it runs (a reloaded
// configuration); a node running its own registry refuses.
func TestSetRegistry(t *testing.T) {
	c := newMemCluster(t, 3, nil)
	nd := c.nodes[0]
	require.Len(t, nd.Peers(), 2)
	require.NoError(t, nd.SetRegistry(c.peersBut(0, 2)))
	require.Equal(t, []string{memAddr(1).String()}, nd.PeersInfo().Peers)
	require.Equal(t, RegistryStatic, nd.PeersInfo().Registry)

	own := c.newNode(3, Config{DHT: &dht.Config{}})
	require.ErrorContains(t, own.SetRegistry(c.peersBut(3, 2)), "runs its own registry")
	require.NoError(t, nd.Close())
	require.ErrorIs(t, nd.SetRegistry(c.peersBut(0, 2)), ErrClosed)
}
