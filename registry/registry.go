// Package registry answers the question "whom do I gossip with?".
//
// A Registry is a source of peer addresses. hearsay ships several: static (a
// list or a file, package registry/static), and later a Kademlia DHT and
// hashicorp/memberlist. Users can plug in their own (Consul, Kubernetes
// endpoints, ...) by implementing the two methods below.
package registry

import (
	"math/rand/v2"
	"net/netip"
)

// Registry is a source of gossip peers. Implementations must be safe for
// concurrent use: the node reads it from its gossip loop while the registry
// updates itself (a reloaded file, a membership event) from elsewhere.
type Registry interface {
	// Peers returns a snapshot of the current peers, not including the node
	// itself. The caller may keep and modify the slice.
	Peers() []netip.AddrPort
	// SamplePeers appends to dst up to n distinct peers chosen uniformly at
	// random with rng and returns the extended slice. It uses no other source
	// of randomness, so that a seeded rng gives a reproducible choice.
	SamplePeers(rng *rand.Rand, n int, dst []netip.AddrPort) []netip.AddrPort
}
