// Package registry answers the question "whom do I gossip with?".
//
// A Registry is a source of peer addresses. hearsay ships several: static (a
// list or a file, package registry/static), a Kademlia DHT (registry/dht),
// the addresses of DNS names (registry/dns)
// and hashicorp/memberlist (registry/memberlist). Users can plug in their own (Consul, Kubernetes
// endpoints, ...) by implementing the two methods below.
package registry

import (
	"math/rand/v2"
	"net/netip"
	"slices"
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

// Sample appends to dst n distinct elements of from chosen uniformly at
// random with rng, for implementations of SamplePeers: a shuffled copy when
// n covers from, rejection sampling (no allocation) for a gossip fanout out
// of many, and a partial Fisher-Yates over a copy otherwise.
func Sample(rng *rand.Rand, from []netip.AddrPort, n int, dst []netip.AddrPort) []netip.AddrPort {
	if n <= 0 || len(from) == 0 {
		return dst
	}
	start := len(dst)
	if n >= len(from) {
		dst = append(dst, from...)
		s := dst[start:]
		for i := len(s) - 1; i > 0; i-- {
			j := rng.IntN(i + 1)
			s[i], s[j] = s[j], s[i]
		}
		return dst
	}
	if n <= 16 && n <= len(from)/2 {
		// Expected draws stay below 2n.
		for len(dst)-start < n {
			p := from[rng.IntN(len(from))]
			if !slices.Contains(dst[start:], p) {
				dst = append(dst, p)
			}
		}
		return dst
	}
	s := slices.Clone(from)
	for i := range n {
		j := i + rng.IntN(len(s)-i)
		s[i], s[j] = s[j], s[i]
	}
	return append(dst, s[:n]...)
}
