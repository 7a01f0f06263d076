// Package gossiptest drives gossip cores for tests: a Cluster of cores on
// the in-memory network (transport.Network), under its virtual clock.
//
// A Cluster does for every core what a runtime does: it hands each datagram
// the network delivers to the core's Handle, calls Tick when NextTick is
// due, and after every input acts on Ready at once, sending its datagrams
// through the network and recording its messages as delivered. Nothing
// happens between calls: Run and RunUntil advance the clock, and a run is
// a pure function of the Config and the calls made, so tests are exact and
// repeatable. Loss, latency and jitter are the network's (Config.Network,
// Net); partitions, restarts and a hook on every datagram sent
// (Cluster.Intercept) are the Cluster's.
//
// Core i listens at Addr(i), has the ID ID(i), and by default pulls from
// all the other cores.
package gossiptest

import (
	"crypto/ed25519"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/registry/static"
	"github.com/hearsay-io/hearsay/transport"
	"github.com/hearsay-io/hearsay/wire"
)

// Fataler reports a failure and does not return: *testing.T, *testing.B
// and *log.Logger all are one.
type Fataler interface {
	Fatalf(format string, args ...any)
}

// Config configures a Cluster.
type Config struct {
	// Nodes is the number of cores. Required, at least 1.
	Nodes int
	// Network configures the in-memory network: its start time, seed,
	// latency (default 1 ms), jitter and loss; see transport.NetworkConfig.
	Network transport.NetworkConfig
	// Instant delivers every datagram at the instant it is sent, in the
	// order sent, instead of after Network's latency and jitter: a pull and
	// everything it sets off happen at one instant. Default false.
	Instant bool
	// Sign makes every core sign its messages and require signatures: core
	// i gets Key(i) as its SigningKey and the ID of that key. Default false.
	Sign bool
	// Validate, when set, makes every core wait for verdicts
	// (gossip.Config.Validate) and gives them: it is called, as the core
	// hands each message out, with the core's index and the message, and
	// its verdict goes to the core at once. A zero verdict leaves the
	// message waiting, for a later Cluster.Verdict. Default nil.
	Validate func(i int, m gossip.Message) gossip.Verdict
	// Core adjusts the configuration of core i before gossip.New. It gets
	// ID(i) as the ID and a static registry of every other core as Peers,
	// and may change anything. Restart calls it again, so that it can reopen
	// a core's stores. Default: nil, those two fields only.
	Core func(i int, c *gossip.Config)
}

// Packet is a datagram a core sends, as Intercept sees it.
type Packet struct {
	At   time.Time      // when it is sent
	From int            // the sending core
	To   int            // the core at Addr, or -1 if none has that address
	Addr netip.AddrPort // where it is sent
	Data []byte         // valid only during the call of Intercept
}

// Type returns the packet type of the datagram, or 0 if its header is not
// valid.
func (p Packet) Type() wire.PacketType {
	t, _ := wire.TypeOf(p.Data)
	return t
}

// Cluster is a set of cores on one in-memory network. It is not safe for
// concurrent use: drive it from the test's goroutine.
type Cluster struct {
	// Intercept, when set, sees every datagram a core sends before the
	// network does, and drops it by returning true. It may be set and
	// changed at any time.
	Intercept func(p Packet) (drop bool)

	f     Fataler
	cfg   Config
	net   *transport.Network
	nodes []*node
	index map[netip.AddrPort]int
}

type node struct {
	core      *gossip.Core
	maxPacket int // core's MaxPacketSize
	ep        *transport.Endpoint
	delivered []gossip.Message
	times     []time.Time // when each of delivered was
	gen       int         // bumped by Stop and Restart: older scheduled ticks are void
	tickAt    time.Time   // the earliest tick scheduled for this generation; zero if none
	spins     int         // ticks in a row at the same instant
	spinAt    time.Time
}

// maxSpins bounds the ticks of one core at one instant: a core whose
// NextTick does not move forward would otherwise stall the clock.
const maxSpins = 1000

// Addr is the address of core i: 127.0.0.1 + i, port 7600.
func Addr(i int) netip.AddrPort {
	a := binary.BigEndian.Uint32([]byte{127, 0, 0, 1}) + uint32(i)
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], a)
	return netip.AddrPortFrom(netip.AddrFrom4(b), 7600)
}

// ID is the node ID core i gets by default: fixed, so that its randomness
// (seeded from the ID) is too.
func ID(i int) gossip.NodeID {
	id := gossip.NodeID{'g', 'o', 's', 's', 'i', 'p', 't', 't'}
	binary.BigEndian.PutUint64(id[8:], uint64(i)+1)
	return id
}

// Key is the Ed25519 key core i signs with under Config.Sign: derived
// from i, so that runs repeat.
func Key(i int) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, "gossiptest key")
	binary.BigEndian.PutUint64(seed[24:], uint64(i)+1)
	return ed25519.NewKeyFromSeed(seed)
}

// New starts a cluster of cfg.Nodes cores, each ticked once at the start
// time. It reports any error to f.
func New(f Fataler, cfg Config) *Cluster {
	if cfg.Nodes < 1 {
		f.Fatalf("gossiptest: %d nodes, want at least 1", cfg.Nodes)
	}
	c := &Cluster{f: f, cfg: cfg, net: transport.NewNetwork(cfg.Network), index: make(map[netip.AddrPort]int, cfg.Nodes)}
	if cfg.Instant {
		c.net.SetLatencyFunc(func(netip.AddrPort, netip.AddrPort, *rand.Rand) time.Duration { return 0 })
	}
	for i := range cfg.Nodes {
		c.index[Addr(i)] = i
		c.nodes = append(c.nodes, &node{})
	}
	for i := range cfg.Nodes {
		c.start(i)
	}
	return c
}

// start makes core i anew, attaches it if it is not, and ticks it.
func (c *Cluster) start(i int) {
	n := c.nodes[i]
	gc := gossip.Config{ID: ID(i), Peers: c.peersOf(i)}
	if c.cfg.Sign {
		gc.SigningKey = Key(i)
		gc.ID = gossip.NodeIDOf(gc.SigningKey.Public().(ed25519.PublicKey))
	}
	gc.Validate = c.cfg.Validate != nil
	if c.cfg.Core != nil {
		c.cfg.Core(i, &gc)
	}
	core, err := gossip.New(gc)
	if err != nil {
		c.f.Fatalf("gossiptest: core %d: %v", i, err)
	}
	n.core, n.maxPacket = core, core.Config().MaxPacketSize
	n.gen++
	n.tickAt = time.Time{}
	if n.ep == nil {
		n.ep, err = c.net.Attach(Addr(i), func(from netip.AddrPort, d []byte) {
			c.nodes[i].core.Handle(c.net.Now(), from, d)
			c.Flush(i)
		})
		if err != nil {
			c.f.Fatalf("gossiptest: core %d: %v", i, err)
		}
	}
	core.Tick(c.net.Now())
	c.Flush(i)
}

func (c *Cluster) peersOf(i int) gossip.PeerSampler {
	var peers []string
	for j := range c.nodes {
		if j != i {
			peers = append(peers, Addr(j).String())
		}
	}
	r, err := static.New(static.Config{Peers: peers, Resolve: netip.ParseAddrPort})
	if err != nil {
		c.f.Fatalf("gossiptest: peers of core %d: %v", i, err)
	}
	return r
}

// Net is the network, for its statistics and for changing its loss or
// latency during a run.
func (c *Cluster) Net() *transport.Network { return c.net }

// Now is the virtual time.
func (c *Cluster) Now() time.Time { return c.net.Now() }

// Len is the number of cores.
func (c *Cluster) Len() int { return len(c.nodes) }

// Core returns core i. After calling one of its inputs directly, call
// Flush(i).
func (c *Cluster) Core(i int) *gossip.Core { return c.nodes[i].core }

// Index returns the core at addr, or -1.
func (c *Cluster) Index(addr netip.AddrPort) int {
	if i, ok := c.index[addr]; ok {
		return i
	}
	return -1
}

// Delivered returns the messages core i delivered, in order, across its
// restarts. The slice is the cluster's: do not modify it.
func (c *Cluster) Delivered(i int) []gossip.Message { return c.nodes[i].delivered }

// DeliveryTimes returns when core i delivered each message of
// Delivered(i). The slice is the cluster's: do not modify it.
func (c *Cluster) DeliveryTimes(i int) []time.Time { return c.nodes[i].times }

// AllDelivered returns a condition for RunUntil: every core has delivered
// at least n messages.
func (c *Cluster) AllDelivered(n int) func() bool {
	return func() bool {
		for _, nd := range c.nodes {
			if len(nd.delivered) < n {
				return false
			}
		}
		return true
	}
}

// Quiet reports whether no datagram is in flight: a condition for
// RunUntil, to let what an input set off play out.
func (c *Cluster) Quiet() bool {
	s := c.net.Stats()
	return s.Sent == s.Delivered+s.Lost+s.Partitioned+s.Undeliverable
}

// Push publishes a message on core i now, and acts on what follows.
func (c *Cluster) Push(i int, topic string, payload []byte) gossip.Message {
	m, err := c.nodes[i].core.Push(c.net.Now(), topic, payload)
	if err != nil {
		c.f.Fatalf("gossiptest: push on core %d: %v", i, err)
	}
	c.Flush(i)
	return m
}

// Handle hands core i a datagram from from now, as if the network had
// delivered it, and acts on what follows: for feeding a core by hand.
func (c *Cluster) Handle(i int, from netip.AddrPort, datagram []byte) {
	c.nodes[i].core.Handle(c.net.Now(), from, datagram)
	c.Flush(i)
}

// Flush acts on core i's Ready: its datagrams go to the network (through
// Intercept), its messages to Delivered, and its next tick is scheduled.
// The cluster calls it after every input it makes.
func (c *Cluster) Flush(i int) {
	n := c.nodes[i]
	if n.ep == nil {
		c.f.Fatalf("gossiptest: core %d is stopped", i)
	}
	now := c.net.Now()
	rd := n.core.Ready()
	n.delivered = append(n.delivered, rd.Messages...)
	for range rd.Messages {
		n.times = append(n.times, now)
	}
	var verdicts []verdict
	if c.cfg.Validate != nil {
		for _, m := range rd.Validate {
			if v := c.cfg.Validate(i, m); v != 0 {
				verdicts = append(verdicts, verdict{m.ID, v})
			}
		}
	}
	for _, d := range rd.Datagrams {
		to := c.Index(d.To)
		if to >= 0 && len(d.Data) > c.nodes[to].maxPacket {
			c.f.Fatalf("gossiptest: core %d sent %d bytes to core %d, whose MaxPacketSize is %d", i, len(d.Data), to, c.nodes[to].maxPacket)
		}
		if c.Intercept != nil && c.Intercept(Packet{At: now, From: i, To: to, Addr: d.To, Data: d.Data}) {
			continue
		}
		if err := n.ep.Send(d.To, d.Data); err != nil {
			c.f.Fatalf("gossiptest: core %d: %v", i, err)
		}
	}
	c.schedule(i)
	for _, v := range verdicts {
		c.Verdict(i, v.id, v.v)
	}
}

type verdict struct {
	id gossip.MessageID
	v  gossip.Verdict
}

// Verdict gives core i the verdict v on message id now, and acts on what
// follows.
func (c *Cluster) Verdict(i int, id gossip.MessageID, v gossip.Verdict) {
	c.nodes[i].core.Verdict(c.net.Now(), id, v)
	c.Flush(i)
}

// schedule arranges core i's next tick, unless an earlier one is arranged.
func (c *Cluster) schedule(i int) {
	n := c.nodes[i]
	if n.ep == nil {
		return // stopped
	}
	next, gen := n.core.NextTick(), n.gen
	if !n.tickAt.IsZero() && !next.Before(n.tickAt) {
		return
	}
	n.tickAt = next
	c.net.At(next, func() {
		if n.gen != gen {
			return
		}
		if n.tickAt.Equal(next) {
			n.tickAt = time.Time{}
		}
		now := c.net.Now()
		if now.Before(n.core.NextTick()) {
			c.schedule(i) // superseded by a later NextTick
			return
		}
		if now.Equal(n.spinAt) {
			if n.spins++; n.spins > maxSpins {
				c.f.Fatalf("gossiptest: core %d ticked %d times at %v: its NextTick does not advance", i, n.spins, now)
			}
		} else {
			n.spinAt, n.spins = now, 0
		}
		n.core.Tick(now)
		c.Flush(i)
	})
}

// Run advances the clock by d, running everything due meanwhile.
func (c *Cluster) Run(d time.Duration) { c.net.RunUntil(c.net.Now().Add(d)) }

// RunUntil runs until done reports true, checked before the first event
// and after each, or until limit has passed. It reports whether done
// became true; the clock stops at the event that made it so.
func (c *Cluster) RunUntil(limit time.Duration, done func() bool) bool {
	if done() {
		return true
	}
	// A sentinel event at the limit: the network cannot say when its next
	// event is due, only run it. The queue is never empty before it runs.
	stop := false
	c.net.At(c.net.Now().Add(limit), func() { stop = true })
	for !stop && c.net.Step() {
		if done() {
			return true
		}
	}
	return done()
}

// Stop takes core i down, as a crash would: it gets no more datagrams or
// ticks, and what is sent to it is lost, until Restart.
func (c *Cluster) Stop(i int) {
	n := c.nodes[i]
	c.net.Detach(Addr(i))
	n.ep = nil
	n.gen++
}

// Restart replaces core i by a new one made from Config.Core, as a
// restarted process would be, and ticks it now. A stopped core comes back
// up. What it delivered before stays in Delivered.
func (c *Cluster) Restart(i int) { c.start(i) }

// Partition splits the network into groups of cores, by group(i): from now
// on, datagrams between cores of different groups are dropped, and so are
// those in flight when they arrive. Addresses of no core form group -1.
func (c *Cluster) Partition(group func(i int) int) {
	c.net.Partition(func(a netip.AddrPort) int {
		if i := c.Index(a); i >= 0 {
			return group(i)
		}
		return -1
	})
}

// Heal ends a partition.
func (c *Cluster) Heal() { c.net.Heal() }
