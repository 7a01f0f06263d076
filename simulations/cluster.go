// Package simulations runs hearsay's real protocol code, for many nodes at
// once, on an in-memory network with a virtual clock. Runs are
// deterministic: the same configuration and seed give the same run, datagram
// for datagram.
package simulations

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/hearsay-io/hearsay/filter"
	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/transport"
)

// ClusterConfig configures a simulated cluster.
type ClusterConfig struct {
	// Nodes is the number of nodes. Required, at most 1<<24.
	Nodes int
	// Seed seeds every node's randomness and the network's.
	Seed uint64
	// Gossip is the template for every node's core; ID, Peers, Rand and
	// Filter are filled in per node. Zero fields take the core's defaults.
	Gossip gossip.Config
	// Network configures latency and loss (its Seed is set from Seed).
	Network transport.NetworkConfig
}

// Node is one simulated node.
type Node struct {
	Index    int
	Core     *gossip.Core
	Addr     netip.AddrPort
	endpoint *transport.Endpoint
	// Deliveries counts deliveries per message ID; FirstDelivery is when
	// each was first delivered.
	Deliveries    map[gossip.MessageID]int
	FirstDelivery map[gossip.MessageID]time.Time
}

// Cluster is a set of simulated nodes on one in-memory network.
type Cluster struct {
	Net   *transport.Network
	Nodes []*Node
	cfg   ClusterConfig
}

// NodeAddr is the virtual address of node i. The simulated network never
// touches a socket; the addresses are in 127.0.0.0/8 all the same, so that
// nothing could mistake them for real hosts.
func NodeAddr(i int) netip.AddrPort {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], uint32(i+1))
	a[0] = 127
	return netip.AddrPortFrom(netip.AddrFrom4(a), 7600)
}

// fullMembership lets node self sample every other node of n, in O(1) memory.
type fullMembership struct {
	n, self int
}

func (m fullMembership) SamplePeers(rng *rand.Rand, k int, dst []netip.AddrPort) []netip.AddrPort {
	if k > m.n-1 {
		k = m.n - 1
	}
	start := len(dst)
	for len(dst)-start < k {
		i := rng.IntN(m.n - 1)
		if i >= m.self {
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

// NewCluster builds a cluster and starts every node's clock.
func NewCluster(cfg ClusterConfig) (*Cluster, error) {
	if cfg.Nodes < 2 || cfg.Nodes > 1<<24 {
		return nil, fmt.Errorf("simulations: %d nodes, want 2 to 2^24", cfg.Nodes)
	}
	netCfg := cfg.Network
	netCfg.Seed = cfg.Seed
	c := &Cluster{Net: transport.NewNetwork(netCfg), cfg: cfg}
	for i := 0; i < cfg.Nodes; i++ {
		n := &Node{Index: i, Addr: NodeAddr(i),
			Deliveries: map[gossip.MessageID]int{}, FirstDelivery: map[gossip.MessageID]time.Time{}}
		gc := cfg.Gossip
		binary.BigEndian.PutUint64(gc.ID[:8], cfg.Seed)
		binary.BigEndian.PutUint64(gc.ID[8:], uint64(i)+1)
		gc.Peers = fullMembership{n: cfg.Nodes, self: i}
		gc.Rand = rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
		gc.Filter = filter.NewMemory(filter.MemoryConfig{MaxEntries: 1 << 16})
		core, err := gossip.New(gc)
		if err != nil {
			return nil, fmt.Errorf("simulations: node %d: %w", i, err)
		}
		n.Core = core
		ep, err := c.Net.Attach(n.Addr, func(from netip.AddrPort, dg []byte) {
			n.Core.Handle(c.Net.Now(), from, dg)
			c.flush(n)
		})
		if err != nil {
			return nil, fmt.Errorf("simulations: node %d: %w", i, err)
		}
		n.endpoint = ep
		c.Nodes = append(c.Nodes, n)
		c.tick(n)
	}
	return c, nil
}

func (c *Cluster) tick(n *Node) {
	n.Core.Tick(c.Net.Now())
	c.flush(n)
	c.Net.At(n.Core.NextTick(), func() { c.tick(n) })
}

func (c *Cluster) flush(n *Node) {
	rd := n.Core.Ready()
	now := c.Net.Now()
	for _, m := range rd.Messages {
		if n.Deliveries[m.ID] == 0 {
			n.FirstDelivery[m.ID] = now
		}
		n.Deliveries[m.ID]++
	}
	for _, d := range rd.Datagrams {
		// Errors here are a datagram over the network's size limit: a bug
		// the sent/delivered counters would show.
		_ = n.endpoint.Send(d.To, d.Data)
	}
}

// Publish pushes a message from node i now.
func (c *Cluster) Publish(i int, topic string, payload []byte) (gossip.Message, error) {
	n := c.Nodes[i]
	m, err := n.Core.Push(c.Net.Now(), topic, payload)
	if err != nil {
		return m, err
	}
	c.flush(n)
	return m, nil
}

// RunFor advances the virtual clock by d.
func (c *Cluster) RunFor(d time.Duration) { c.Net.RunUntil(c.Net.Now().Add(d)) }

// RunUntilDelivered advances the clock in steps of one interval until every
// node has delivered every message in ids, or until limit has passed. It
// reports whether everything was delivered.
func (c *Cluster) RunUntilDelivered(ids []gossip.MessageID, limit time.Duration) bool {
	end := c.Net.Now().Add(limit)
	step := c.Nodes[0].Core.Config().Interval
	for {
		if c.AllDelivered(ids) {
			return true
		}
		if !c.Net.Now().Before(end) {
			return false
		}
		c.RunFor(step)
	}
}

// AllDelivered reports whether every node delivered every message in ids.
func (c *Cluster) AllDelivered(ids []gossip.MessageID) bool {
	for _, n := range c.Nodes {
		for _, id := range ids {
			if n.Deliveries[id] == 0 {
				return false
			}
		}
	}
	return true
}

// Totals sums every node's core counters.
func (c *Cluster) Totals() gossip.Stats {
	var t gossip.Stats
	for _, n := range c.Nodes {
		s := n.Core.Stats()
		t.PullsSent += s.PullsSent
		t.PullBytesOut += s.PullBytesOut
		t.MessagesOut += s.MessagesOut
		t.MessagesIn += s.MessagesIn
		t.DatagramsOut += s.DatagramsOut
		t.BytesOut += s.BytesOut
		t.Delivered += s.Delivered
		t.Duplicates += s.Duplicates
		for r := range s.Dropped {
			t.Dropped[r] += s.Dropped[r]
		}
	}
	return t
}
