package simulations

import (
	"encoding/binary"
	"errors"
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

// Errors the Simulator's node operations return.
var (
	ErrNoSuchNode  = errors.New("simulations: no such node")
	ErrNodeDown    = errors.New("simulations: node is not up")
	ErrNodeUp      = errors.New("simulations: node is already up")
	ErrNodeStarted = errors.New("simulations: node has already started")
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

// messageRecord follows one published message.
type messageRecord struct {
	id        gossip.MessageID
	publisher int
	at        int64 // virtual millisecond of the publication
	// first holds, per node, 1 + the virtual millisecond at which the node
	// first delivered the message, 0 if it has not: 4 bytes per node
	// rather than a map entry.
	first       []uint32
	deliveredUp int // nodes up that have delivered it
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

func (s *Simulator) recordDelivery(i int, id gossip.MessageID) {
	s.accepted++
	m, ok := s.msgIndex[id]
	if !ok {
		return // published through a Core directly: not followed
	}
	rec := &s.msgs[m]
	if rec.first[i] != 0 {
		s.redelivered++
		return
	}
	ms := (s.net.Now().Sub(s.start) + time.Millisecond - 1) / time.Millisecond
	rec.first[i] = uint32(ms) + 1
	rec.deliveredUp++
}

// schedule puts node i's next tick in the calendar at millisecond ms.
func (s *Simulator) schedule(i int32, ms int64) {
	s.nodes[i].tickAt = ms
	s.calendar.add(ms, i)
}

// step runs the next virtual millisecond.
func (s *Simulator) step() {
	t := s.nowMs + 1
	s.net.RunUntil(s.clock(t))
	s.nowMs = t
	s.events.run(t)
	if s.tables != nil {
		s.tables.runTicks(s, t)
	}
	s.runTicks(t)
}

func (s *Simulator) clock(ms int64) time.Time {
	return s.start.Add(time.Duration(ms) * time.Millisecond)
}

// runTicks ticks the nodes due at millisecond t, in the order they were
// scheduled.
func (s *Simulator) runTicks(t int64) {
	bucket := s.calendar.bucket(t)
	now := s.clock(t)
	// A node's first tick may ask for the next one at once: it lands in
	// this bucket, which is why the length is read at every turn.
	for k := 0; k < len(*bucket); k++ {
		i := (*bucket)[k]
		n := &s.nodes[i]
		// Entries left by a crashed life, or made stale by a restart, no
		// longer match the node's tickAt.
		if n.tickAt != t || n.core == nil {
			continue
		}
		n.core.Tick(now.Add(n.skew))
		s.flush(i)
		next := n.core.NextTick().Sub(s.start) - n.skew
		ms := int64((next + time.Millisecond - 1) / time.Millisecond)
		s.schedule(i, min(max(ms, t), t+s.calendar.horizon))
	}
	*bucket = (*bucket)[:0]
	s.ticked = t
}

// tickCalendar holds the nodes due to tick, in one bucket per virtual
// millisecond over a ring as long as the longest wait between two ticks.
// A node is an int32 in a bucket: cheaper than one closure and one heap
// entry per tick, at fifteen million ticks per virtual second with a
// million nodes.
type tickCalendar struct {
	buckets [][]int32
	mask    int64
	horizon int64 // the longest wait, in milliseconds
}

func (c *tickCalendar) init(horizon int64) {
	size := int64(1)
	for size <= horizon {
		size <<= 1
	}
	c.buckets = make([][]int32, size)
	c.mask = size - 1
	c.horizon = horizon
}

func (c *tickCalendar) bucket(ms int64) *[]int32 { return &c.buckets[ms&c.mask] }

func (c *tickCalendar) add(ms int64, i int32) {
	b := c.bucket(ms)
	*b = append(*b, i)
}

// event is a callback scheduled with At.
type event struct {
	ms  int64
	seq uint64
	fn  func()
}

// eventList holds the callbacks scheduled with At, in order of time, then
// of scheduling. There are few, so a sorted slice does.
type eventList struct {
	events []event
	seq    uint64
}

func (l *eventList) add(ms int64, fn func()) {
	e := event{ms: ms, seq: l.seq, fn: fn}
	l.seq++
	i := len(l.events)
	l.events = append(l.events, e)
	for i > 0 && l.events[i-1].ms > ms {
		l.events[i] = l.events[i-1]
		i--
	}
	l.events[i] = e
}

// run runs the callbacks due at or before millisecond t, including those
// they schedule for t.
func (l *eventList) run(t int64) {
	for len(l.events) > 0 && l.events[0].ms <= t {
		e := l.events[0]
		l.events = l.events[1:]
		e.fn()
	}
}

// At schedules fn to run at virtual time t (since the simulation started),
// rounded up to a millisecond, before the ticks of that millisecond. A t in
// the past runs at the next millisecond.
func (s *Simulator) At(t time.Duration, fn func()) {
	ms := int64((t + time.Millisecond - 1) / time.Millisecond)
	s.events.add(max(ms, s.nowMs+1), fn)
}

// PendingEvents is the number of callbacks scheduled with At that have not
// run yet.
func (s *Simulator) PendingEvents() int { return len(s.events.events) }

// Now is the virtual time since the simulation started.
func (s *Simulator) Now() time.Duration { return time.Duration(s.nowMs) * time.Millisecond }

// RunUntil runs the simulation until virtual time t, to the millisecond
// below. A t in the past does nothing.
func (s *Simulator) RunUntil(t time.Duration) {
	target := int64(t / time.Millisecond)
	for s.nowMs < target {
		s.step()
	}
}

// RunFor runs the simulation for d of virtual time.
func (s *Simulator) RunFor(d time.Duration) { s.RunUntil(s.Now() + d) }

// RunUntilDelivered runs the simulation an Interval at a time until every
// node up has delivered every published message, or until limit has
// passed. It reports whether everything was delivered.
func (s *Simulator) RunUntilDelivered(limit time.Duration) bool {
	end := s.Now() + limit
	for {
		if s.AllDelivered() {
			return true
		}
		if s.Now() >= end {
			return false
		}
		s.RunFor(s.cfg.Gossip.Interval)
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

// Publish publishes a message from node i now. The simulator follows its
// delivery to every node: see Delivered and DeliveredAt, which take the
// message's index, the number of messages published before it.
func (s *Simulator) Publish(i int, topic string, payload []byte) (gossip.Message, error) {
	if err := s.checkNode(i); err != nil {
		return gossip.Message{}, fmt.Errorf("publish: %w", err)
	}
	n := &s.nodes[i]
	if n.state != nodeUp {
		return gossip.Message{}, fmt.Errorf("publish from node %d: %w", i, ErrNodeDown)
	}
	msg, err := n.core.Push(s.clock(s.nowMs).Add(n.skew), topic, payload)
	if err != nil {
		return msg, fmt.Errorf("publish from node %d: %w", i, err)
	}
	s.msgIndex[msg.ID] = len(s.msgs)
	s.msgs = append(s.msgs, messageRecord{id: msg.ID, publisher: i, at: s.nowMs, first: make([]uint32, len(s.nodes))})
	s.flush(int32(i))
	return msg, nil
}

// Messages is the number of messages published with Publish.
func (s *Simulator) Messages() int { return len(s.msgs) }

// Delivered is the number of nodes up that have delivered message m.
func (s *Simulator) Delivered(m int) int { return s.msgs[m].deliveredUp }

// DeliveredAt returns how long after its publication node i first
// delivered message m (to the millisecond above), and whether it did.
func (s *Simulator) DeliveredAt(m, i int) (time.Duration, bool) {
	rec := &s.msgs[m]
	if rec.first[i] == 0 {
		return 0, false
	}
	return time.Duration(int64(rec.first[i])-1-rec.at) * time.Millisecond, true
}

// AllDelivered reports whether every node up has delivered every message.
func (s *Simulator) AllDelivered() bool {
	for m := range s.msgs {
		if s.msgs[m].deliveredUp < s.nodesUp {
			return false
		}
	}
	return true
}

// Missing counts the nodes up that lack at least one message.
func (s *Simulator) Missing() int {
	missing := 0
	for i := range s.nodes {
		if s.nodes[i].state != nodeUp {
			continue
		}
		for m := range s.msgs {
			if s.msgs[m].first[i] == 0 {
				missing++
				break
			}
		}
	}
	return missing
}

// Redelivered counts deliveries of a message to a node that had delivered
// it before: zero, unless nodes restart without their seen filter.
func (s *Simulator) Redelivered() uint64 { return s.redelivered }

func (s *Simulator) checkNode(i int) error {
	if i < 0 || i >= len(s.nodes) {
		return fmt.Errorf("%w: %d (nodes are 0 to %d)", ErrNoSuchNode, i, len(s.nodes)-1)
	}
	return nil
}

// Start starts node i, a late joiner that has never run.
func (s *Simulator) Start(i int) error {
	if err := s.checkNode(i); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if s.nodes[i].state != nodeWaiting {
		return fmt.Errorf("start node %d: %w", i, ErrNodeStarted)
	}
	return s.startNode(i, nil, nil)
}

// Crash stops node i at once: its core is dropped, datagrams to it are
// lost. Its seen filter is kept for a stateful Restart.
func (s *Simulator) Crash(i int) error {
	if err := s.checkNode(i); err != nil {
		return fmt.Errorf("crash: %w", err)
	}
	n := &s.nodes[i]
	if n.state != nodeUp {
		return fmt.Errorf("crash node %d: %w", i, ErrNodeDown)
	}
	s.retire(n.core.Stats())
	if s.keptFilters == nil {
		s.keptFilters = make(map[int]filter.SeenFilter)
	}
	s.keptFilters[i] = n.core.Config().Filter
	if l := n.core.Config().Log; l != nil {
		if s.keptLogs == nil {
			s.keptLogs = make(map[int]msglog.Log)
		}
		s.keptLogs[i] = l
	}
	if s.tables != nil {
		s.tables.stop(i)
	}
	s.net.Detach(NodeAddr(i))
	n.core, n.ep, n.state = nil, nil, nodeDown
	s.nodesUp--
	for m := range s.msgs {
		if s.msgs[m].first[i] != 0 {
			s.msgs[m].deliveredUp--
		}
	}
	return nil
}

// Restart restarts crashed node i: RestartStateful keeps its ID and seen
// filter, RestartStateless starts afresh. Either way its propagation cache
// and digest start empty.
func (s *Simulator) Restart(i int, mode RestartMode) error {
	if err := s.checkNode(i); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	n := &s.nodes[i]
	if n.state != nodeDown {
		return fmt.Errorf("restart node %d: %w", i, ErrNodeUp)
	}
	var f filter.SeenFilter
	switch mode {
	case RestartStateful:
		f = s.keptFilters[i]
	case RestartStateless:
	default:
		return fmt.Errorf("restart node %d: mode %v is not a restart", i, mode)
	}
	var log msglog.Log
	if mode == RestartStateful {
		log = s.keptLogs[i]
	}
	delete(s.keptFilters, i)
	delete(s.keptLogs, i)
	n.incarnation++
	return s.startNode(i, f, log)
}

// Partition splits the network from now on: nodes below split×Nodes in one
// group, the others in the second. Datagrams between the groups are
// dropped, those in flight included.
func (s *Simulator) Partition(split float64) {
	bound := int(split * float64(len(s.nodes)))
	s.net.Partition(func(a netip.AddrPort) int {
		if NodeIndex(a) < bound {
			return 0
		}
		return 1
	})
}

// Heal ends a partition.
func (s *Simulator) Heal() {
	s.net.Heal()
}

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
