package simulations

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/registry/dht"
)

// DHT is the peer model of the DHT registry: every node runs its own
// dht.Table, the registry's real code, and gossip samples its peers from
// it. The tables' datagrams travel through the simulated network beside
// gossip's, so latency, loss, partitions and crashes apply to them too,
// and each table ticks at its NextTick on the virtual clock.
//
// Every node joins through the bootstrap nodes, as agents started with
// --join naming them do. A table needs time to fill before gossip can
// spread anything, so with this model Run lets the nodes run for Warmup
// before the publication (Config.Warmup, when set, wins).
//
// A crashed node's table stops. A stateful restart keeps the table as a
// node with a data directory does: the contacts it held at the crash
// (Table.Snapshot) are restored into a new table with the same ID, which
// pings them and rejoins through those that answer. A stateless restart
// starts an empty table with a new ID that joins through the bootstrap
// nodes again.
type DHT struct {
	// Bootstrap is the number of bootstrap nodes: the first Bootstrap nodes
	// that are up from the start (node 0 first, unless Churn makes it join
	// late). Every node pings all of them to join. 1 to 64. Default 1.
	Bootstrap int
	// Warmup is how long the nodes run before the publication. Default
	// DefaultDHTWarmup; Config.Warmup, when set, replaces it.
	Warmup time.Duration
	// Spread staggers the joins: node i starts its table i×Spread/Nodes
	// after the simulation starts, as in a cluster whose nodes come up
	// over a while, instead of every node at once. Late joiners and
	// restarted nodes start theirs when they start. Staggered joins cost
	// about a quarter fewer datagrams, but leave the sample pools skewed
	// toward the early joiners until the pools turn over (one region per
	// SampleInterval, minutes), which slows gossip's first rounds. Default
	// 0: every node at once, for the steady state of a formed cluster.
	Spread time.Duration
	// Table is the template of every node's dht.Config. Self, SelfAddr,
	// Rand and Bootstrap are set per node; zero fields take dht's defaults
	// (dht.DefaultConfig).
	Table dht.Config
}

// DefaultDHTWarmup is the warm-up of the DHT model. A node's join (a
// lookup of its own ID, one per bucket, then the sample pool's regions)
// takes well under a second at 1ms of latency and a few seconds at 50ms.
const DefaultDHTWarmup = 10 * time.Second

// maxBootstrap bounds DHT.Bootstrap: every node pings every bootstrap node.
const maxBootstrap = 64

func (m DHT) withDefaults() DHT {
	if m.Bootstrap == 0 {
		m.Bootstrap = 1
	}
	if m.Warmup == 0 {
		m.Warmup = DefaultDHTWarmup
	}
	c := dhtDefaults()
	t := &m.Table
	if t.K == 0 {
		t.K = c.K
	}
	if t.Alpha == 0 {
		t.Alpha = c.Alpha
	}
	if t.PingInterval == 0 {
		t.PingInterval = c.PingInterval
	}
	if t.SamplePoolSize == 0 {
		t.SamplePoolSize = c.SamplePoolSize
	}
	return m
}

// dhtDefaults is the DHT registry's default table configuration.
func dhtDefaults() dht.Config { return dht.DefaultConfig(gossip.NodeID{1}, netip.AddrPort{}, nil) }

// validate checks the model for a simulation of nodes nodes.
func (m DHT) validate(nodes int) error {
	switch {
	case m.Bootstrap < 1 || m.Bootstrap > min(nodes, maxBootstrap):
		return fmt.Errorf("simulations: dht bootstrap %d, want 1 to %d", m.Bootstrap, min(nodes, maxBootstrap))
	case m.Warmup < 0:
		return fmt.Errorf("simulations: negative dht warm-up %v", m.Warmup)
	case m.Spread < 0:
		return fmt.Errorf("simulations: negative dht spread %v", m.Spread)
	}
	// dht.New checks the table settings; one throwaway table costs little.
	c := m.Table
	c.Self, c.SelfAddr, c.Bootstrap = gossip.NodeID{1}, NodeAddr(0), nil
	if _, err := dht.New(c); err != nil {
		return fmt.Errorf("simulations: %w", err)
	}
	return nil
}

// Sampler implements PeerModel. Only a Simulator gives a node its table:
// outside one, the sampler knows no peers.
func (DHT) Sampler(node, nodes int) gossip.PeerSampler { return noPeers{} }

// String returns the model, defaults filled in, in the syntax ParsePeers
// reads.
func (m DHT) String() string {
	m = m.withDefaults()
	parts := []string{
		fmt.Sprintf("bootstrap=%d", m.Bootstrap),
		fmt.Sprintf("warmup=%v", m.Warmup),
	}
	if m.Spread > 0 {
		parts = append(parts, fmt.Sprintf("spread=%v", m.Spread))
	}
	pool := fmt.Sprint(m.Table.SamplePoolSize)
	if m.Table.SamplePoolSize < 0 {
		pool = "off"
	}
	parts = append(parts, "pool="+pool, fmt.Sprintf("ping=%v", m.Table.PingInterval))
	if m.Table.K != dhtDefaults().K {
		parts = append(parts, fmt.Sprintf("k=%d", m.Table.K))
	}
	return "dht:" + strings.Join(parts, ",")
}

func (m DHT) newTables(s *Simulator) *peerTables { return newPeerTables(m.withDefaults(), s) }

// peerProtocol is a PeerModel whose samplers are state machines of their
// own, exchanging datagrams over the simulated network: the Simulator
// builds one peerTables per run from it.
type peerProtocol interface {
	PeerModel
	newTables(s *Simulator) *peerTables
}

var (
	_ peerProtocol = DHT{}
	_ peerProtocol = (*DHT)(nil)
)

// noPeers is a sampler that knows nobody.
type noPeers struct{}

func (noPeers) SamplePeers(_ *rand.Rand, _ int, dst []netip.AddrPort) []netip.AddrPort { return dst }

// peerTables is one run's DHT: a table per node, driven like the cores.
// Per node it costs a pointer and a tick time beside the table itself.
type peerTables struct {
	model  DHT
	boot   []netip.AddrPort
	tables []*dht.Table // nil while the node is down or waiting
	tickAt []int64      // virtual millisecond of the next Tick; -1 for none
	timers timerHeap
	saved  map[int][]byte // snapshots of crashed nodes, for stateful restarts

	// Datagrams and bytes the tables sent, since the start.
	datagrams, bytes uint64
}

func newPeerTables(m DHT, s *Simulator) *peerTables {
	n := len(s.nodes)
	p := &peerTables{model: m, tables: make([]*dht.Table, n), tickAt: make([]int64, n)}
	for i := range p.tickAt {
		p.tickAt[i] = -1
	}
	late := make(map[int]bool, len(s.late))
	for _, i := range s.late {
		late[i] = true
	}
	for i := 0; i < n && len(p.boot) < m.Bootstrap; i++ {
		if !late[i] {
			p.boot = append(p.boot, NodeAddr(i))
		}
	}
	return p
}

// dhtID is the table ID of a node whose gossip ID is id. The simulator's
// gossip IDs are nearly sequential, and Kademlia needs IDs spread over
// the whole space (its sample pool draws regions of it at random), so the
// table takes a hash of it: the same ID across a stateful restart, a new
// one after a stateless restart.
func dhtID(id gossip.NodeID) gossip.NodeID {
	hi, lo := binary.BigEndian.Uint64(id[:8]), binary.BigEndian.Uint64(id[8:])
	a := splitmix64(hi ^ splitmix64(lo))
	b := splitmix64(a ^ lo ^ 0x646874) // "dht"
	var out gossip.NodeID
	binary.BigEndian.PutUint64(out[:8], a)
	binary.BigEndian.PutUint64(out[8:], b|1) // never the zero ID
	return out
}

// start creates node i's table, from the snapshot kept at its crash when
// stateful, and schedules its first Tick at millisecond ms.
func (p *peerTables) start(s *Simulator, i int, id gossip.NodeID, stateful bool, ms int64) (*dht.Table, error) {
	n := &s.nodes[i]
	cfg := p.model.Table
	cfg.Self = dhtID(id)
	cfg.SelfAddr = NodeAddr(i)
	cfg.Bootstrap = p.boot
	cfg.Rand = rand.New(rand.NewPCG(s.cfg.Seed^0x646874<<40, uint64(i)<<32|uint64(n.incarnation)))
	t, err := dht.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("simulations: node %d: %w", i, err)
	}
	if snap := p.saved[i]; stateful && snap != nil {
		// Our own snapshot: it cannot be corrupt.
		_ = t.Restore(snap)
	}
	delete(p.saved, i)
	p.tables[i] = t
	p.schedule(int32(i), ms)
	return t, nil
}

// stop drops node i's table at its crash, keeping its contacts for a
// stateful restart.
func (p *peerTables) stop(i int) {
	if t := p.tables[i]; t != nil {
		if p.saved == nil {
			p.saved = make(map[int][]byte)
		}
		p.saved[i] = t.Snapshot()
	}
	p.tables[i] = nil
	p.tickAt[i] = -1
}

// handle gives node i's table a DHT datagram.
func (p *peerTables) handle(s *Simulator, i int32, from netip.AddrPort, dg []byte) {
	t := p.tables[i]
	if t == nil {
		return // a node up whose table has not started (Spread): as a closed port
	}
	t.Handle(s.net.Now().Add(s.nodes[i].skew), from, dg)
	p.flush(s, i, s.nowMs+1)
}

// runTicks ticks the tables due at millisecond t.
func (p *peerTables) runTicks(s *Simulator, t int64) {
	now := s.clock(t)
	for len(p.timers) > 0 && p.timers[0].ms <= t {
		e := p.timers.pop()
		tbl := p.tables[e.node]
		// Entries superseded by an earlier tick, or left by a crashed
		// life, no longer match tickAt.
		if tbl == nil || p.tickAt[e.node] != e.ms {
			continue
		}
		p.tickAt[e.node] = -1
		tbl.Tick(now.Add(s.nodes[e.node].skew))
		p.flush(s, e.node, t+1)
	}
}

// flush sends node i's datagrams and schedules its next Tick, no earlier
// than millisecond earliest.
func (p *peerTables) flush(s *Simulator, i int32, earliest int64) {
	t := p.tables[i]
	if t.HasReady() {
		ep := s.nodes[i].ep
		for _, d := range t.Ready().Datagrams {
			p.datagrams++
			p.bytes += uint64(len(d.Data))
			// As the core's: K contacts always fit the network's limit.
			_ = ep.Send(d.To, d.Data)
		}
	}
	next := t.NextTick().Sub(s.start) - s.nodes[i].skew
	ms := max(int64((next+time.Millisecond-1)/time.Millisecond), earliest)
	p.schedule(i, ms)
}

// schedule moves node i's next Tick to millisecond ms, unless one is due
// earlier: an early Tick is harmless, and is followed by the next.
func (p *peerTables) schedule(i int32, ms int64) {
	if at := p.tickAt[i]; at >= 0 && at <= ms {
		return
	}
	p.tickAt[i] = ms
	p.timers.push(timer{ms: ms, node: i})
}

// stats sums the counters and gauges of the tables up.
func (p *peerTables) stats() DHTStats {
	st := DHTStats{PeersMin: -1}
	for _, t := range p.tables {
		if t == nil {
			continue
		}
		ts := t.Stats()
		st.Tables++
		if ts.Joined {
			st.Joined++
		}
		st.PeersMean += float64(ts.Answering)
		st.TableMean += float64(ts.TableSize)
		st.PoolMean += float64(ts.PoolSize)
		if st.PeersMin < 0 || ts.Answering < st.PeersMin {
			st.PeersMin = ts.Answering
		}
		st.Lookups += ts.Lookups
	}
	if st.Tables > 0 {
		st.PeersMean /= float64(st.Tables)
		st.TableMean /= float64(st.Tables)
		st.PoolMean /= float64(st.Tables)
	}
	st.PeersMin = max(st.PeersMin, 0)
	st.Datagrams, st.Bytes = p.datagrams, p.bytes
	return st
}

// DHTStats describes the nodes' DHT tables with the DHT peer model.
type DHTStats struct {
	// Tables is the number of tables running (nodes up whose table has
	// started); Joined of them had found others with a lookup of their
	// own ID.
	Tables, Joined int
	// PeersMean and PeersMin are the mean and the least number of
	// answering contacts per table (table and sample pool): what gossip
	// samples from.
	PeersMean float64
	PeersMin  int
	// TableMean and PoolMean are the mean number of contacts in the
	// k-buckets and in the sample pool.
	TableMean, PoolMean float64
	// Lookups completed by the tables running.
	Lookups uint64
	// Datagrams and Bytes the tables sent since the simulation started.
	Datagrams, Bytes uint64
}

// timer is a table's Tick due at a virtual millisecond.
type timer struct {
	ms   int64
	node int32
}

// timerHeap orders the tables' Ticks by time, then by node, so that the
// order never depends on anything but the run. Tables tick seconds apart,
// beyond the gossip calendar's ring, and far fewer times than cores.
type timerHeap []timer

func (h timerHeap) less(i, j int) bool {
	return h[i].ms < h[j].ms || (h[i].ms == h[j].ms && h[i].node < h[j].node)
}

func (h *timerHeap) push(e timer) {
	*h = append(*h, e)
	q := *h
	for i := len(q) - 1; i > 0; {
		parent := (i - 1) / 2
		if !q.less(i, parent) {
			break
		}
		q[i], q[parent] = q[parent], q[i]
		i = parent
	}
}

func (h *timerHeap) pop() timer {
	q := *h
	top := q[0]
	last := len(q) - 1
	q[0] = q[last]
	q = q[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(q) && q.less(l, m) {
			m = l
		}
		if r < len(q) && q.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
	*h = q
	return top
}

// DHTReport describes the nodes' DHT tables in a Run with the DHT peer
// model.
type DHTReport struct {
	// Published describes the tables at the publication, after the
	// warm-up; its Datagrams and Bytes are those of the warm-up.
	Published DHTStats
	// Datagrams and Bytes the tables sent from the publication to the end.
	Datagrams, Bytes uint64
}
