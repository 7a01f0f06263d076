package dht

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"

	"github.com/hearsay-io/hearsay/registry"
)

// rebuild recomputes the peer lists after a change.
func (t *Table) rebuild() {
	if !t.dirty {
		return
	}
	t.dirty = false
	t.peers = t.peers[:0]
	seen := make(map[netip.AddrPort]struct{}, len(t.contacts))
	add := func(list []netip.AddrPort, c *contact) []netip.AddrPort {
		if !c.answering() {
			return list
		}
		if _, dup := seen[c.addr]; dup {
			return list
		}
		seen[c.addr] = struct{}{}
		return append(list, c.addr)
	}
	t.poolPeers = t.poolPeers[:0]
	for _, r := range t.pool.regions {
		for _, c := range r.members {
			t.poolPeers = add(t.poolPeers, c)
		}
	}
	t.peers = append(t.peers, t.poolPeers...)
	for i := range t.buckets {
		for _, c := range t.buckets[i].entries {
			t.peers = add(t.peers, c)
		}
	}
}

// Peers returns the addresses of every contact that answered its last
// request, in the table and in the sample pool, without this node.
func (t *Table) Peers() []netip.AddrPort {
	t.rebuild()
	return slices.Clone(t.peers)
}

// SamplePeers appends up to n distinct peers chosen uniformly at random
// with rng from the sample pool, which is spread uniformly over the whole
// network, and returns the extended slice. While the pool holds fewer than
// n answering contacts (when joining, or with the pool off), it draws from
// every answering contact instead.
func (t *Table) SamplePeers(rng *rand.Rand, n int, dst []netip.AddrPort) []netip.AddrPort {
	t.rebuild()
	from := t.poolPeers
	if len(from) < n || t.cfg.SamplePoolSize < 0 {
		from = t.peers
	}
	return registry.Sample(rng, from, n, dst)
}

// estimatedSize is the estimate of the network's size, 0 if none yet.
func (t *Table) estimatedSize() float64 {
	log2N, ok := t.pool.sizeLog2()
	if !ok {
		return 0
	}
	return math.Exp2(log2N)
}
