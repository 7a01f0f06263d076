package registry_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"

	"github.com/hearsay-io/hearsay/registry"
)

// endpoints is a registry kept up to date by something that watches a
// service catalogue (Consul's health endpoint, a Kubernetes Endpoints
// object, ...): the watcher calls Update with the healthy addresses.
type endpoints struct {
	self  netip.AddrPort
	mu    sync.RWMutex
	peers []netip.AddrPort
}

var _ registry.Registry = (*endpoints)(nil)

// Update replaces the peers; the node picks them up at its next round.
func (e *endpoints) Update(addrs []netip.AddrPort) {
	peers := slices.DeleteFunc(slices.Clone(addrs), func(a netip.AddrPort) bool { return a == e.self })
	e.mu.Lock()
	e.peers = peers
	e.mu.Unlock()
}

func (e *endpoints) Peers() []netip.AddrPort {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return slices.Clone(e.peers)
}

func (e *endpoints) SamplePeers(rng *rand.Rand, n int, dst []netip.AddrPort) []netip.AddrPort {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return registry.Sample(rng, e.peers, n, dst) // uniform, and only rng's randomness
}

// Plugging in a registry of one's own: two methods, safe for concurrent use.
// Give it to the node as node.Config{Registry: reg}; the node skips peers
// that stop answering by itself, so the registry need not be perfectly
// fresh.
func Example() {
	reg := &endpoints{self: netip.MustParseAddrPort("10.0.0.1:7600")}
	reg.Update([]netip.AddrPort{
		netip.MustParseAddrPort("10.0.0.1:7600"),
		netip.MustParseAddrPort("10.0.0.2:7600"),
		netip.MustParseAddrPort("10.0.0.3:7600"),
	})
	fmt.Println(reg.Peers())
	rng := rand.New(rand.NewPCG(1, 2))
	fmt.Println(len(reg.SamplePeers(rng, 3, nil)), "peers sampled of 2")
	// Output:
	// [10.0.0.2:7600 10.0.0.3:7600]
	// 2 peers sampled of 2
}
