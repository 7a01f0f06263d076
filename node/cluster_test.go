package node

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/registry/static"
	"github.com/hearsay-io/hearsay/transport"
)

// Most tests run their nodes on an in-memory network (memCluster): the
// real node, core, filter, log and sealing, on virtual time, in the test's
// goroutine, so that waiting costs nothing and a run repeats exactly. A few
// run on real sockets (startCluster) to show the UDP path works end to end.

// memCluster is nodes on one transport.Network, on its virtual clock. Their
// methods are called from the test's goroutine, between runs.
type memCluster struct {
	t     *testing.T
	net   *transport.Network
	nodes []*Node
}

// memAddr is the address of node i on the in-memory network.
func memAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 1, byte(i + 1)}), 7600)
}

func newMemNetwork(t *testing.T, cfg transport.NetworkConfig) *memCluster {
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	return &memCluster{t: t, net: transport.NewNetwork(cfg)}
}

// newMemCluster starts n nodes on a new in-memory network, each with every
// other as peer (a static registry) and the default gossip settings.
func newMemCluster(t *testing.T, n int, tweak func(i int, c *Config)) *memCluster {
	c := newMemNetwork(t, transport.NetworkConfig{})
	for i := range n {
		cfg := Config{Name: fmt.Sprintf("n%d", i), Registry: c.peersBut(i, n)}
		if tweak != nil {
			tweak(i, &cfg)
		}
		c.nodes = append(c.nodes, c.newNode(i, cfg))
	}
	for _, nd := range c.nodes {
		require.NoError(t, nd.Start())
	}
	return c
}

// peersBut is a static registry of the first n nodes' addresses but i's.
func (c *memCluster) peersBut(i, n int) *static.Registry {
	var peers []string
	for j := range n {
		peers = append(peers, memAddr(j).String())
	}
	reg, err := static.New(static.Config{Peers: peers, Self: memAddr(i)})
	require.NoError(c.t, err)
	return reg
}

// newNode creates (without starting) a node at memAddr(i) on the network,
// on its clock, with a random source seeded from i unless cfg has one.
func (c *memCluster) newNode(i int, cfg Config) *Node {
	c.t.Helper()
	ep, err := c.net.Listen(memAddr(i))
	require.NoError(c.t, err)
	cfg.Transport, cfg.Clock = ep, c.net
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(uint64(i), 0x5eed))
	}
	nd, err := New(cfg)
	require.NoError(c.t, err)
	c.t.Cleanup(func() { nd.Close() })
	return nd
}

// run advances virtual time by d, running everything due meanwhile.
func (c *memCluster) run(d time.Duration) { c.net.RunUntil(c.net.Now().Add(d)) }

// waitFor runs the network until cond holds, checking it every 10ms of
// virtual time, and fails the test if it does not hold within limit.
func (c *memCluster) waitFor(limit time.Duration, cond func() bool, msgAndArgs ...any) {
	c.t.Helper()
	deadline := c.net.Now().Add(limit)
	for !cond() {
		if !c.net.Now().Before(deadline) {
			require.FailNow(c.t, fmt.Sprintf("not within %v of virtual time", limit), msgAndArgs...)
		}
		c.run(10 * time.Millisecond)
	}
}

// inboxes subscribes to everything on each node.
func (c *memCluster) inboxes() []*inbox {
	var out []*inbox
	for _, nd := range c.nodes {
		out = append(out, subscribe(c.t, nd, ">"))
	}
	return out
}

// inbox is what a subscription delivered so far, read without blocking.
type inbox struct {
	sub *Subscription
	got map[gossip.MessageID]int
	all []gossip.Message
}

func subscribe(t *testing.T, nd *Node, pattern string) *inbox {
	s, err := nd.Subscribe(pattern)
	require.NoError(t, err)
	return &inbox{sub: s, got: map[gossip.MessageID]int{}}
}

// read takes what the subscription's channel holds now.
func (b *inbox) read() *inbox {
	for {
		select {
		case m, ok := <-b.sub.C:
			if !ok {
				return b
			}
			b.got[m.ID]++
			b.all = append(b.all, m)
		default:
			return b
		}
	}
}

// distinct is the number of distinct messages delivered.
func (b *inbox) distinct() int { return len(b.read().got) }

// count is how many times id was delivered.
func (b *inbox) count(id gossip.MessageID) int { return b.read().got[id] }

// requireOnce checks that every message was delivered exactly once, and
// that they are want (if given).
func (b *inbox) requireOnce(t *testing.T, want map[gossip.MessageID]bool, msgAndArgs ...any) {
	t.Helper()
	b.read()
	if want != nil {
		require.Len(t, b.got, len(want), msgAndArgs...)
	}
	for id, k := range b.got {
		if want != nil {
			require.True(t, want[id], "a message nobody published: %v", msgAndArgs)
		}
		require.Equal(t, 1, k, "delivered %d times: %v", k, msgAndArgs)
	}
}

// settablePeers is a registry the test fills once every node is bound: it
// also shows that any type with these two methods plugs in as a registry.
type settablePeers struct {
	mu    sync.RWMutex
	peers []netip.AddrPort
}

func (p *settablePeers) set(peers []netip.AddrPort) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.peers = peers
}

func (p *settablePeers) Peers() []netip.AddrPort {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return append([]netip.AddrPort(nil), p.peers...)
}

func (p *settablePeers) SamplePeers(rng *rand.Rand, n int, dst []netip.AddrPort) []netip.AddrPort {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, i := range rng.Perm(len(p.peers)) {
		if n == 0 {
			break
		}
		dst = append(dst, p.peers[i])
		n--
	}
	return dst
}

func peersOf(addrs ...netip.AddrPort) *settablePeers {
	p := &settablePeers{}
	p.set(addrs)
	return p
}

// fastGossip is for nodes on real sockets, where time is not free.
var fastGossip = gossip.Config{Interval: 30 * time.Millisecond}

// startCluster starts n nodes on real UDP sockets on 127.0.0.1, each with
// every other as peer.
func startCluster(t *testing.T, n int, tweak func(i int, c *Config)) []*Node {
	t.Helper()
	var nodes []*Node
	var regs []*settablePeers
	for i := 0; i < n; i++ {
		reg := &settablePeers{}
		cfg := Config{Bind: "127.0.0.1:0", Registry: reg, Gossip: fastGossip, Name: fmt.Sprintf("n%d", i)}
		if tweak != nil {
			tweak(i, &cfg)
		}
		nd, err := New(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { nd.Close() })
		nodes = append(nodes, nd)
		regs = append(regs, reg)
	}
	for i, reg := range regs {
		var peers []netip.AddrPort
		for j, nd := range nodes {
			if j != i {
				peers = append(peers, nd.Addr())
			}
		}
		reg.set(peers)
	}
	for _, nd := range nodes {
		require.NoError(t, nd.Start())
	}
	return nodes
}
