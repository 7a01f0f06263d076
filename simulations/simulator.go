package simulations

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/hearsay-io/hearsay/filter"
	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/msglog"
	"github.com/hearsay-io/hearsay/registry/dht"
	"github.com/hearsay-io/hearsay/transport"
)

// nodeState is where a node is in its life.
type nodeState uint8

const (
	nodeWaiting nodeState = iota // not started yet: a late joiner
	nodeUp
	nodeDown // crashed
)

// simNode is one simulated node. It is kept small: a million of them live
// side by side, and the core is most of a node's memory.
type simNode struct {
	core        *gossip.Core // nil unless up
	ep          *transport.Endpoint
	tickAt      int64         // virtual millisecond of the next tick in the calendar
	skew        time.Duration // added to the virtual time given to the core
	incarnation uint32        // restarts so far
	idLife      uint32        // the incarnation whose node ID it uses
	state       nodeState
}

// Simulator runs one gossip.Core per node on an in-memory network with a
// virtual clock, from one goroutine. It is deterministic: the same Config
// and the same calls give the same run. A Simulator is not safe for
// concurrent use.
//
// Time advances only in RunFor and RunUntil, one virtual millisecond at a
// time: first the datagrams due by then are delivered, then the callbacks
// scheduled with At run, then the nodes whose tick is due tick.
type Simulator struct {
	cfg      Config
	start    time.Time
	net      *transport.Network
	nodes    []simNode
	calendar tickCalendar
	nowMs    int64 // the last virtual millisecond run
	ticked   int64 // the last virtual millisecond whose ticks have run
	events   eventList
	rng      *rand.Rand // churn and publication choices

	nodesUp  int
	late     []int // nodes chosen to join late, in order
	msgs     []messageRecord
	msgIndex map[gossip.MessageID]int

	tables *peerTables // the nodes' DHT tables, with the DHT peer model; nil otherwise

	keptFilters map[int]filter.SeenFilter // seen filters of crashed nodes, for stateful restarts
	keptLogs    map[int]msglog.Log        // their message logs, with AntiEntropy
	retired     gossip.Stats              // counters of cores that have stopped

	accepted    uint64 // messages accepted by cores, redeliveries included
	redelivered uint64 // deliveries to a node that had delivered the message before
}

// New builds the simulator's nodes and starts them, except for the late
// joiners that cfg.Churn.Join asks for (see LateJoiners). The fields of cfg
// that only Run uses are ignored.
func New(cfg Config) (*Simulator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.Peers == nil {
		cfg.Peers = FullMembership{}
	}
	s := &Simulator{
		cfg:      cfg,
		nodes:    make([]simNode, cfg.Nodes),
		rng:      rand.New(rand.NewPCG(cfg.Seed, 0x73696d)), // "sim"
		msgIndex: make(map[gossip.MessageID]int),
		nowMs:    -1,
		ticked:   -1,
	}
	netCfg := transport.NetworkConfig{Seed: cfg.Seed, Loss: cfg.Loss}
	fixed, isFixed := cfg.Latency.(FixedLatency)
	if isFixed && fixed > 0 {
		netCfg.Latency = time.Duration(fixed) // the network's own, cheapest path
	}
	s.net = transport.NewNetwork(netCfg)
	if !isFixed || fixed <= 0 {
		lat := cfg.Latency
		s.net.SetLatencyFunc(func(from, to netip.AddrPort, rng *rand.Rand) time.Duration {
			return lat.Delay(NodeIndex(from), NodeIndex(to), rng)
		})
	}
	s.start = s.net.Now()
	slot := cfg.Gossip.Interval / time.Duration(cfg.Gossip.Fanout)
	s.calendar.init(int64((slot+time.Millisecond-1)/time.Millisecond) + 1)

	waiting := make([]bool, cfg.Nodes)
	if c := cfg.Churn; c != nil && c.Join > 0 {
		publisher := make(map[int]bool, len(cfg.Publishers))
		for _, p := range cfg.Publishers {
			publisher[p] = true
		}
		s.late = s.sample(int(c.Join*float64(cfg.Nodes)+0.5), func(i int) bool { return !publisher[i] })
		for _, i := range s.late {
			waiting[i] = true
		}
	}
	if pp, ok := cfg.Peers.(peerProtocol); ok {
		s.tables = pp.newTables(s)
	}
	for i := range s.nodes {
		n := &s.nodes[i]
		n.tickAt = -1
		if cfg.Skew != nil {
			n.skew = cfg.Skew.Offset(i)
		}
		if !waiting[i] {
			if err := s.startNode(i, nil, nil); err != nil {
				return nil, err
			}
		}
		if cfg.Progress != nil && (i+1)%(1<<16) == 0 {
			cfg.Progress(Progress{Phase: "build", Built: i + 1, Nodes: cfg.Nodes})
		}
	}
	if cfg.Progress != nil {
		cfg.Progress(Progress{Phase: "build", Built: cfg.Nodes, Nodes: cfg.Nodes})
	}
	s.step() // millisecond 0: every node's first tick
	return s, nil
}

// nodeID is node i's ID in its incarnation-th life. A stateless restart
// takes a new ID, as a node without a data directory does.
func nodeID(seed uint64, i int, incarnation uint32) gossip.NodeID {
	var id gossip.NodeID
	binary.BigEndian.PutUint64(id[:8], seed+uint64(incarnation)*0x9e3779b97f4a7c15)
	binary.BigEndian.PutUint64(id[8:], uint64(i)+1)
	return id
}

// startNode creates node i's core, with seen filter f and message log log
// (nil: new ones), attaches it to the network and schedules its first tick
// now.
func (s *Simulator) startNode(i int, f filter.SeenFilter, log msglog.Log) error {
	n := &s.nodes[i]
	gc := s.cfg.Gossip
	stateful := f != nil
	if !stateful {
		n.idLife = n.incarnation // a new ID, unless the node keeps its state
	}
	gc.ID = nodeID(s.cfg.Seed, i, n.idLife)
	if s.cfg.Sign {
		// The key is derived from the ID the node would have had, so that
		// runs repeat; its public key is the core's, one per node.
		var seed [ed25519.SeedSize]byte
		copy(seed[:], gc.ID[:])
		gc.SigningKey = ed25519.NewKeyFromSeed(seed[:])
		gc.ID = gossip.NodeIDOf(gc.SigningKey.Public().(ed25519.PublicKey))
	}
	if s.tables != nil {
		ms := s.ticked + 1
		if spread := s.tables.model.Spread; s.nowMs < 0 && spread > 0 { // building: stagger the joins
			ms = int64(float64(spread/time.Millisecond) * float64(i) / float64(len(s.nodes)))
		}
		t, err := s.tables.start(s, i, gc.ID, stateful, ms)
		if err != nil {
			return err
		}
		gc.Peers = t
	} else {
		gc.Peers = s.cfg.Peers.Sampler(i, s.cfg.Nodes)
	}
	gc.Rand = rand.New(rand.NewPCG(s.cfg.Seed^uint64(n.incarnation)<<40, uint64(i)))
	if f == nil {
		f = filter.NewMemory(filter.MemoryConfig{MaxEntries: s.cfg.FilterSize})
	}
	gc.Filter = f
	gc.Log = nil
	if s.cfg.AntiEntropy {
		if log == nil {
			log = msglog.NewMemory(0)
		}
		gc.Log = log
	}
	core, err := gossip.New(gc)
	if err != nil {
		return fmt.Errorf("simulations: node %d: %w", i, err)
	}
	idx := int32(i)
	ep, err := s.net.Attach(NodeAddr(i), func(from netip.AddrPort, dg []byte) { s.handle(idx, from, dg) })
	if err != nil {
		return fmt.Errorf("simulations: node %d: %w", i, err)
	}
	n.core, n.ep, n.state = core, ep, nodeUp
	s.nodesUp++
	for m := range s.msgs {
		if s.msgs[m].first[i] != 0 {
			s.msgs[m].deliveredUp++
		}
	}
	// Tick at once: in this millisecond if its ticks are still to run (a
	// callback of At), else in the next.
	s.schedule(idx, s.ticked+1)
	return nil
}

func (s *Simulator) handle(i int32, from netip.AddrPort, dg []byte) {
	if s.tables != nil && dht.IsPacket(dg) {
		// As the node runtime routes them: the DHT's packet types to the
		// table, the rest to the core.
		s.tables.handle(s, i, from, dg)
		return
	}
	n := &s.nodes[i]
	n.core.Handle(s.net.Now().Add(n.skew), from, dg)
	s.flush(i)
}

// flush acts on node i's Ready: records deliveries, sends datagrams.
func (s *Simulator) flush(i int32) {
	n := &s.nodes[i]
	if !n.core.HasReady() {
		return
	}
	rd := n.core.Ready()
	for k := range rd.Messages {
		s.recordDelivery(int(i), rd.Messages[k].ID)
	}
	for _, d := range rd.Datagrams {
		// The only error is a datagram over the network's size limit, which
		// the core's MaxPacketSize rules out.
		_ = n.ep.Send(d.To, d.Data)
	}
}

// Config returns the configuration in force, defaults filled in.
func (s *Simulator) Config() Config { return s.cfg }

// Nodes is the number of nodes, up or not.
func (s *Simulator) Nodes() int { return len(s.nodes) }

// NodesUp is the number of nodes up.
func (s *Simulator) NodesUp() int { return s.nodesUp }

// Up reports whether node i is up.
func (s *Simulator) Up(i int) bool { return s.nodes[i].state == nodeUp }

// Core is node i's core, nil unless the node is up. Drive it only through
// the Simulator: outputs taken from it directly are not sent.
func (s *Simulator) Core(i int) *gossip.Core { return s.nodes[i].core }

// Table is node i's DHT table, nil unless the peer model is DHT and the
// node is up (with DHT.Spread, it may not have ticked yet). Drive it only
// through the Simulator: outputs taken from it directly are not sent.
func (s *Simulator) Table(i int) *dht.Table {
	if s.tables == nil {
		return nil
	}
	return s.tables.tables[i]
}

// DHTStats describes the DHT tables of the nodes up, and reports false
// unless the peer model is DHT.
func (s *Simulator) DHTStats() (DHTStats, bool) {
	if s.tables == nil {
		return DHTStats{}, false
	}
	return s.tables.stats(), true
}

// Skew is node i's clock offset.
func (s *Simulator) Skew(i int) time.Duration { return s.nodes[i].skew }

// LateJoiners lists the nodes New did not start, as cfg.Churn.Join asked.
// Start them with Start.
func (s *Simulator) LateJoiners() []int { return s.late }

// Totals sums the counters of every core that has run, the stopped ones
// included, and the gauges of the cores up.
func (s *Simulator) Totals() gossip.Stats {
	t := s.retired
	for i := range s.nodes {
		if c := s.nodes[i].core; c != nil {
			t.Add(c.Stats())
		}
	}
	return t
}

// retire adds the counters of a core that stops to the retired ones. Its
// gauges, which describe a core now gone, are left out: Sub subtracts
// counters alone, so subtracting minus st adds st's counters.
func (s *Simulator) retire(st gossip.Stats) {
	var minus gossip.Stats
	minus.Sub(st)
	s.retired.Sub(minus)
}

// NetworkStats returns the network's counters.
func (s *Simulator) NetworkStats() transport.NetworkStats { return s.net.Stats() }

// sample returns k distinct nodes chosen at random among those ok accepts,
// in increasing order.
func (s *Simulator) sample(k int, ok func(int) bool) []int {
	var cand []int
	for i := range s.nodes {
		if ok(i) {
			cand = append(cand, i)
		}
	}
	k = min(k, len(cand))
	// A partial Fisher-Yates shuffle: the first k are a uniform sample.
	for j := 0; j < k; j++ {
		r := j + s.rng.IntN(len(cand)-j)
		cand[j], cand[r] = cand[r], cand[j]
	}
	chosen := cand[:k]
	slices.Sort(chosen)
	return chosen
}
