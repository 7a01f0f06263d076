package static

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDeferredHasNoPeersUntilSet(t *testing.T) {
	var d Deferred
	rng := rand.New(rand.NewPCG(1, 2))
	require.Empty(t, d.Peers())
	dst := []netip.AddrPort{ap("10.0.0.9:1")}
	require.Equal(t, dst, d.SamplePeers(rng, 3, dst))

	r, err := New(Config{Peers: []string{"10.0.0.1:7946", "10.0.0.2:7946", "10.0.0.3:7946"}, Self: ap("10.0.0.3:7946")})
	require.NoError(t, err)
	d.Set(r)
	require.Equal(t, []netip.AddrPort{ap("10.0.0.1:7946"), ap("10.0.0.2:7946")}, d.Peers())
	require.ElementsMatch(t, d.Peers(), d.SamplePeers(rng, 5, nil))
}
