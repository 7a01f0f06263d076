package dht

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/transport"
)

// cluster drives Tables over the in-memory network from one goroutine, the
// way the node runtime drives one over UDP: Handle on every datagram, Tick
// at NextTick, send what Ready says.
type cluster struct {
	tb    testing.TB
	net   *transport.Network
	nodes []*simNode
	rng   *rand.Rand
	// onLookup, if set, sees every completed lookup.
	onLookup func(n *simNode, res LookupResult)
}

type simNode struct {
	c      *cluster
	t      *Table
	ep     *transport.Endpoint
	id     gossip.NodeID
	addr   netip.AddrPort
	tickAt time.Time // the Tick scheduled on the network; zero if none
	spins  int       // Ticks in a row at the same instant
	spinAt time.Time
	down   bool
	// lookups collects the node's LookupUser results.
	lookups []LookupResult
}

func newCluster(tb testing.TB, seed uint64, nc transport.NetworkConfig) *cluster {
	nc.Seed = seed
	return &cluster{tb: tb, net: transport.NewNetwork(nc), rng: rand.New(rand.NewPCG(seed, 77))}
}

// randomID draws a node ID from the cluster's seeded source.
func (c *cluster) randomID() gossip.NodeID { return withPrefix(c.rng, gossip.NodeID{}, 0, false) }

// simAddr is the address of the i-th node.
func simAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 7600)
}

// add starts a node with cfg (Self, SelfAddr and Rand filled in when
// zero). Its first Tick runs now.
func (c *cluster) add(cfg Config) *simNode {
	c.tb.Helper()
	if cfg.Self.IsZero() {
		cfg.Self = c.randomID()
	}
	if !cfg.SelfAddr.IsValid() {
		cfg.SelfAddr = simAddr(len(c.nodes) + 1)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(c.rng.Uint64(), c.rng.Uint64()))
	}
	t, err := New(cfg)
	if err != nil {
		c.tb.Fatal(err)
	}
	n := &simNode{c: c, t: t, id: cfg.Self, addr: cfg.SelfAddr}
	n.ep, err = c.net.Attach(n.addr, func(from netip.AddrPort, d []byte) {
		n.t.Handle(c.net.Now(), from, d)
		n.flush()
	})
	if err != nil {
		c.tb.Fatal(err)
	}
	c.nodes = append(c.nodes, n)
	n.scheduleTick(c.net.Now())
	return n
}

func (n *simNode) scheduleTick(at time.Time) {
	if !n.tickAt.IsZero() && !at.Before(n.tickAt) {
		return
	}
	n.tickAt = at
	n.c.net.At(at, func() {
		if n.down || !n.tickAt.Equal(at) {
			return // superseded by an earlier one
		}
		n.tickAt = time.Time{}
		now := n.c.net.Now()
		if now.Equal(n.spinAt) {
			if n.spins++; n.spins > 1000 {
				n.c.tb.Fatalf("node %s: Tick spins at %v (NextTick %v)", n.addr, now, n.t.NextTick())
			}
		} else {
			n.spinAt, n.spins = now, 0
		}
		n.t.Tick(now)
		n.flush()
	})
}

// flush sends the table's datagrams and reschedules its Tick.
func (n *simNode) flush() {
	rd := n.t.Ready()
	for _, d := range rd.Datagrams {
		if err := n.ep.Send(d.To, d.Data); err != nil {
			n.c.tb.Fatal(err)
		}
	}
	for _, res := range rd.Lookups {
		if res.Purpose == LookupUser {
			n.lookups = append(n.lookups, res)
		}
		if n.c.onLookup != nil {
			n.c.onLookup(n, res)
		}
	}
	next := n.t.NextTick()
	if now := n.c.net.Now(); next.Before(now) {
		next = now
	}
	n.scheduleTick(next)
}

// lookup starts a user lookup on n.
func (n *simNode) lookup(target gossip.NodeID) {
	n.t.Lookup(n.c.net.Now(), target)
	n.flush()
}

// stop takes a node off the network, as a crash: it answers nothing more.
func (n *simNode) stop() {
	n.down = true
	n.c.net.Detach(n.addr)
}

// run advances the virtual clock by d.
func (c *cluster) run(d time.Duration) { c.net.RunUntil(c.net.Now().Add(d)) }

// live returns the nodes that are up.
func (c *cluster) live() []*simNode {
	var out []*simNode
	for _, n := range c.nodes {
		if !n.down {
			out = append(out, n)
		}
	}
	return out
}
