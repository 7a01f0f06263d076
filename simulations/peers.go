package simulations

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"

	"github.com/hearsay-io/hearsay/gossip"
)

// PeerModel decides whom each simulated node can pull from: it is the
// simulator's stand-in for a registry. Models must not keep per-node state
// that grows with the number of nodes squared; FullMembership costs
// nothing, RandomGraph 4 bytes per edge.
//
// DHT is the registry itself rather than a stand-in: the Simulator gives
// each node a dht.Table, a state machine fed with the registry's own
// datagrams, and its Sampler is not used.
type PeerModel interface {
	// Sampler returns the peer sampler of node, for a simulation of nodes
	// nodes. It is called when the node starts and again when it restarts.
	Sampler(node, nodes int) gossip.PeerSampler
	// String names the model in the syntax ParsePeers reads.
	String() string
}

// NodeAddr is the virtual address of node i. The simulated network never
// touches a socket; the addresses are in 127.0.0.0/8 all the same, so that
// nothing could mistake them for real hosts. The index is in the low 24
// bits, so that NodeIndex needs no table.
func NodeAddr(i int) netip.AddrPort {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], uint32(i+1))
	a[0] = 127
	return netip.AddrPortFrom(netip.AddrFrom4(a), 7600)
}

// NodeIndex is the index of the node at addr, the inverse of NodeAddr, or
// -1 for an address that is not a node's.
func NodeIndex(addr netip.AddrPort) int {
	if !addr.Addr().Is4() || addr.Port() != 7600 {
		return -1
	}
	a := addr.Addr().As4()
	if a[0] != 127 {
		return -1
	}
	return int(binary.BigEndian.Uint32(a[:])&0xffffff) - 1
}

// FullMembership lets every node pull from every other node, as a static
// peer list naming the whole cluster does. It costs no memory per node.
type FullMembership struct{}

// Sampler implements PeerModel.
func (FullMembership) Sampler(node, nodes int) gossip.PeerSampler {
	return fullMembership{n: int32(nodes), self: int32(node)}
}

func (FullMembership) String() string { return "full" }

// fullMembership samples the nodes other than self, uniformly, in O(1)
// memory.
type fullMembership struct {
	n, self int32
}

func (m fullMembership) SamplePeers(rng *rand.Rand, k int, dst []netip.AddrPort) []netip.AddrPort {
	k = min(k, int(m.n)-1)
	start := len(dst)
	for len(dst)-start < k {
		i := rng.IntN(int(m.n) - 1)
		if i >= int(m.self) {
			i++
		}
		a := NodeAddr(i)
		dup := false
		for _, d := range dst[start:] {
			dup = dup || d == a
		}
		if !dup {
			dst = append(dst, a)
		}
	}
	return dst
}

// RandomGraph is a static random graph in which every node has Degree
// neighbours and pulls only from them, as a cluster whose nodes each know
// a few others would. It is the union of Degree/2 random Hamiltonian cycles,
// plus a random perfect matching when Degree is odd: connected, and
// Degree-regular but for the rare edge drawn twice (and one node short of
// an edge when Degree and the number of nodes are both odd). The adjacency
// is one flat []int32, 4 bytes per edge end.
type RandomGraph struct {
	degree int
	nodes  int
	adj    []int32 // node i's neighbours at [i*degree, (i+1)*degree); -1 for none
}

// NewRandomGraph draws a random graph of nodes nodes and the given degree
// from seed.
func NewRandomGraph(nodes, degree int, seed uint64) (*RandomGraph, error) {
	if nodes < 2 || nodes > MaxNodes {
		return nil, fmt.Errorf("simulations: random graph of %d nodes, want 2 to %d", nodes, MaxNodes)
	}
	if degree < 1 || degree > min(nodes-1, 1024) {
		return nil, fmt.Errorf("simulations: random graph of degree %d, want 1 to %d", degree, min(nodes-1, 1024))
	}
	g := &RandomGraph{degree: degree, nodes: nodes, adj: make([]int32, nodes*degree)}
	for i := range g.adj {
		g.adj[i] = -1
	}
	fill := make([]int32, nodes) // edges placed so far per node
	link := func(a, b int32) {
		g.adj[int(a)*degree+int(fill[a])] = b
		fill[a]++
		g.adj[int(b)*degree+int(fill[b])] = a
		fill[b]++
	}
	rng := rand.New(rand.NewPCG(seed, 0x6772617068)) // "graph"
	perm := make([]int32, nodes)
	for i := range perm {
		perm[i] = int32(i)
	}
	for c := 0; c < degree/2; c++ {
		rng.Shuffle(nodes, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		for j := 0; j < nodes; j++ {
			link(perm[j], perm[(j+1)%nodes])
		}
	}
	if degree%2 == 1 {
		rng.Shuffle(nodes, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		for j := 0; j+1 < nodes; j += 2 {
			link(perm[j], perm[j+1])
		}
	}
	return g, nil
}

// Degree is the number of neighbours of every node.
func (g *RandomGraph) Degree() int { return g.degree }

// Neighbours returns node's neighbours; the slice must not be modified.
func (g *RandomGraph) Neighbours(node int) []int32 {
	return g.adj[node*g.degree : (node+1)*g.degree]
}

// Sampler implements PeerModel.
func (g *RandomGraph) Sampler(node, nodes int) gossip.PeerSampler {
	return graphPeers{g: g, self: int32(node)}
}

func (g *RandomGraph) String() string { return fmt.Sprintf("graph:%d", g.degree) }

// graphPeers samples a node's neighbours in a RandomGraph.
type graphPeers struct {
	g    *RandomGraph
	self int32
}

func (p graphPeers) SamplePeers(rng *rand.Rand, k int, dst []netip.AddrPort) []netip.AddrPort {
	nb := p.g.Neighbours(int(p.self))
	start := len(dst)
	has := func(a netip.AddrPort) bool {
		for _, d := range dst[start:] {
			if d == a {
				return true
			}
		}
		return false
	}
	// Draws with replacement, skipping repeats, give a uniform random set.
	// The bound guards against a node whose edges are mostly repeats; past
	// it, the distinct neighbours not yet chosen are taken in order.
	for tries := 0; len(dst)-start < k && tries < 16*len(nb)+16; tries++ {
		if v := nb[rng.IntN(len(nb))]; v >= 0 {
			if a := NodeAddr(int(v)); !has(a) {
				dst = append(dst, a)
			}
		}
	}
	for j := 0; j < len(nb) && len(dst)-start < k; j++ {
		if v := nb[j]; v >= 0 {
			if a := NodeAddr(int(v)); !has(a) {
				dst = append(dst, a)
			}
		}
	}
	return dst
}
