package simulations

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
)

// MaxNodes is the largest simulation: node addresses carry the index in 24
// bits.
const MaxNodes = 1<<24 - 1

// Config configures a simulation. Zero values take the defaults written
// beside each field; only Nodes is required.
//
// The first group of fields configures the Simulator (the nodes and the
// network); the second is used by Run and the scenarios (what is published,
// what happens during the run and when the run ends). Times in the second
// group are counted from the publication.
type Config struct {
	// Nodes is the number of nodes, from 2 to MaxNodes. Required.
	Nodes int
	// Seed seeds every random choice: the nodes' cores, the network, the
	// peer graph, churn and skew. The same Config gives the same run.
	Seed uint64
	// Gossip is the template of every node's core; ID, Peers, Rand, Filter
	// and Log are set per node. Zero fields take the core's defaults
	// (gossip.DefaultConfig).
	Gossip gossip.Config
	// Sign gives every node an Ed25519 key derived from its ID's seed (and
	// the ID of that key), with which its core signs its messages and
	// requires signatures of every origin (gossip.Config.SigningKey). Off
	// by default.
	Sign bool
	// AntiEntropy gives every node a message log (in memory, kept across a
	// stateful restart), so that the cores run Merkle anti-entropy every
	// Gossip.AEInterval. Off by default: gossip alone.
	AntiEntropy bool
	// FilterSize bounds each node's in-memory seen filter, in IDs.
	// Default 1<<16.
	FilterSize int
	// Latency is the one-way delay of every datagram. Default DefaultLatency.
	Latency Latency
	// Loss is the probability in [0, 1] that a datagram is lost. Default 0.
	Loss float64
	// Peers decides whom each node pulls from. Default: full membership.
	Peers PeerModel
	// Skew offsets each node's clock. Default: none.
	Skew ClockSkew

	// Messages is how many messages Run publishes, at the same instant, from
	// distinct random nodes. Default 1, or len(Publishers).
	Messages int
	// Publishers, when set, are the nodes that publish the messages, one
	// each, instead of random ones.
	Publishers []int
	// PayloadSize is the payload of each message, in bytes. Default 64.
	PayloadSize int
	// Warmup is how long the nodes run before the publication, so that
	// every core has started its rounds. Default one Interval; with the DHT
	// peer model, DHT.Warmup, so that the tables fill first.
	Warmup time.Duration
	// Partition splits the network for a while. Default: none.
	Partition *Partition
	// Churn crashes, restarts and adds nodes. Default: none.
	Churn *Churn
	// MaxRounds ends a run that has not ended by itself after this many
	// rounds from the publication. Default 1000.
	MaxRounds int
	// Duration, when positive, makes the run last exactly this long after
	// the publication (rounded up to whole rounds) instead of ending when
	// every message is everywhere.
	Duration time.Duration
	// Progress, when set, is called as nodes are built and after every
	// round, on the simulation's goroutine.
	Progress func(Progress)
	// MeasureMemory makes Run fill in Report.Memory. It forces garbage
	// collections, which take seconds at a million nodes.
	MeasureMemory bool
}

// Progress tells how far a simulation has got.
type Progress struct {
	// Phase is "build" while the nodes are created, "warmup" while they
	// run before the publication (reported only when the warm-up lasts
	// longer than one Interval), then "run".
	Phase string
	// Elapsed is the virtual time run so far, of Warmup, in the warmup
	// phase.
	Elapsed, Warmup time.Duration
	// Built nodes, of Nodes, in the build phase.
	Built, Nodes int
	// Round is the last round completed, in the run phase; MaxRounds is
	// the round at which the run will end at the latest.
	Round, MaxRounds int
	// Delivered is the fraction of the (node, message) pairs delivered
	// among the nodes that are up.
	Delivered float64
}

// Defaults.
const (
	DefaultFilterSize  = 1 << 16
	DefaultPayloadSize = 64
	DefaultMaxRounds   = 1000
	defaultTopic       = "sim.message"
)

// DefaultLatency is Config.Latency's default: one millisecond for every
// datagram.
const DefaultLatency = FixedLatency(time.Millisecond)

// withDefaults returns cfg with defaults filled in, and checks it.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Nodes < 2 || cfg.Nodes > MaxNodes {
		return cfg, fmt.Errorf("simulations: %d nodes, want 2 to %d", cfg.Nodes, MaxNodes)
	}
	// The fields the simulator reads itself take the core's defaults here;
	// the core fills in the rest.
	g, def := &cfg.Gossip, gossip.DefaultConfig(gossip.NodeID{}, nil)
	if g.Fanout == 0 {
		g.Fanout = def.Fanout
	}
	if g.Interval == 0 {
		g.Interval = def.Interval
	}
	if g.CacheRounds == 0 {
		g.CacheRounds = def.CacheRounds
	}
	if g.AEInterval == 0 {
		g.AEInterval = def.AEInterval
	}
	if g.Fanout < 1 || g.Fanout > 64 {
		return cfg, fmt.Errorf("simulations: fanout %d, want 1 to 64", g.Fanout)
	}
	// Ticks run on a one-millisecond calendar: a pull slot below that
	// would make pulls bunch up.
	if g.Interval < time.Duration(g.Fanout)*time.Millisecond {
		return cfg, fmt.Errorf("simulations: interval %v is below fanout (%d) milliseconds", g.Interval, g.Fanout)
	}
	if cfg.FilterSize == 0 {
		cfg.FilterSize = DefaultFilterSize
	}
	if g, ok := cfg.Peers.(*RandomGraph); ok && g.nodes != cfg.Nodes {
		return cfg, fmt.Errorf("simulations: a random graph of %d nodes for %d nodes", g.nodes, cfg.Nodes)
	}
	if m, ok := cfg.Peers.(*DHT); ok {
		if m == nil {
			return cfg, errors.New("simulations: nil *DHT peer model")
		}
		cfg.Peers = *m
	}
	if m, ok := cfg.Peers.(DHT); ok {
		if cfg.Warmup > 0 {
			m.Warmup = cfg.Warmup
		}
		m = m.withDefaults()
		if err := m.validate(cfg.Nodes); err != nil {
			return cfg, err
		}
		cfg.Peers = m
		cfg.Warmup = m.Warmup // the tables fill before the publication
	}
	if cfg.Latency == nil {
		cfg.Latency = DefaultLatency
	}
	if math.IsNaN(cfg.Loss) || cfg.Loss < 0 || cfg.Loss > 1 {
		return cfg, fmt.Errorf("simulations: loss %v, want 0 to 1", cfg.Loss)
	}
	if cfg.Messages == 0 {
		cfg.Messages = max(1, len(cfg.Publishers))
	}
	if len(cfg.Publishers) > 0 && len(cfg.Publishers) != cfg.Messages {
		return cfg, fmt.Errorf("simulations: %d publishers for %d messages", len(cfg.Publishers), cfg.Messages)
	}
	for _, p := range cfg.Publishers {
		if p < 0 || p >= cfg.Nodes {
			return cfg, fmt.Errorf("simulations: publisher %d is not a node (0 to %d)", p, cfg.Nodes-1)
		}
	}
	if cfg.Messages < 0 || cfg.Messages > cfg.Nodes {
		return cfg, fmt.Errorf("simulations: %d messages, want 1 to the number of nodes (%d)", cfg.Messages, cfg.Nodes)
	}
	if cfg.PayloadSize == 0 {
		cfg.PayloadSize = DefaultPayloadSize
	}
	if cfg.PayloadSize < 0 {
		return cfg, fmt.Errorf("simulations: negative payload size %d", cfg.PayloadSize)
	}
	if cfg.Warmup == 0 {
		cfg.Warmup = g.Interval
	}
	if cfg.Warmup < 0 {
		return cfg, fmt.Errorf("simulations: negative warm-up %v", cfg.Warmup)
	}
	if cfg.MaxRounds == 0 {
		cfg.MaxRounds = DefaultMaxRounds
	}
	if cfg.MaxRounds < 1 {
		return cfg, fmt.Errorf("simulations: max rounds %d is below 1", cfg.MaxRounds)
	}
	if cfg.Duration < 0 {
		return cfg, fmt.Errorf("simulations: negative duration %v", cfg.Duration)
	}
	if cfg.Partition != nil {
		if err := cfg.Partition.validate(); err != nil {
			return cfg, err
		}
	}
	if cfg.Churn != nil {
		if err := cfg.Churn.validate(); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// Latency is a model of the one-way delay of datagrams.
type Latency interface {
	// Delay draws the delay of one datagram from node from to node to,
	// using rng (the network's seeded source) and no other randomness.
	Delay(from, to int, rng *rand.Rand) time.Duration
	// String returns the model in the syntax ParseLatency reads.
	String() string
}

// FixedLatency delays every datagram by the same duration.
type FixedLatency time.Duration

// Delay implements Latency.
func (l FixedLatency) Delay(int, int, *rand.Rand) time.Duration { return time.Duration(l) }

func (l FixedLatency) String() string { return time.Duration(l).String() }

// UniformLatency draws each delay uniformly from [Min, Max].
type UniformLatency struct{ Min, Max time.Duration }

// Delay implements Latency.
func (l UniformLatency) Delay(_, _ int, rng *rand.Rand) time.Duration {
	return l.Min + time.Duration(rng.Int64N(int64(l.Max-l.Min)+1))
}

func (l UniformLatency) String() string { return fmt.Sprintf("uniform:%v-%v", l.Min, l.Max) }

// NormalLatency draws each delay from a normal distribution, cut off at
// zero.
type NormalLatency struct{ Mean, StdDev time.Duration }

// Delay implements Latency.
func (l NormalLatency) Delay(_, _ int, rng *rand.Rand) time.Duration {
	return max(0, l.Mean+time.Duration(rng.NormFloat64()*float64(l.StdDev)))
}

func (l NormalLatency) String() string { return fmt.Sprintf("normal:%v,%v", l.Mean, l.StdDev) }

// LogNormalLatency draws each delay from a log-normal distribution of the
// given median; Sigma is the standard deviation of the delay's logarithm
// (0.5 makes one delay in twenty above 2.3 times the median). Delays have
// the long right tail real networks show.
type LogNormalLatency struct {
	Median time.Duration
	Sigma  float64
}

// Delay implements Latency.
func (l LogNormalLatency) Delay(_, _ int, rng *rand.Rand) time.Duration {
	d := float64(l.Median) * math.Exp(l.Sigma*rng.NormFloat64())
	return time.Duration(min(d, float64(time.Hour)))
}

func (l LogNormalLatency) String() string {
	return fmt.Sprintf("lognormal:%v,%s", l.Median, formatFloat(l.Sigma))
}

// Partition splits the nodes in two groups that cannot reach each other
// from At until Heal. Datagrams in flight between the groups when it starts
// are dropped too.
type Partition struct {
	// At is when the partition starts, counted from the publication.
	At time.Duration
	// Heal is when it ends, counted from the publication; 0 means never.
	Heal time.Duration
	// Split is the fraction of nodes in the first group: nodes 0 to
	// Split×Nodes−1. The rest form the second group. From 0 to 1 exclusive;
	// default 0.5.
	Split float64
}

func (p *Partition) validate() error {
	switch {
	case p.At < 0:
		return fmt.Errorf("simulations: partition starts at a negative time %v", p.At)
	case p.Heal != 0 && p.Heal <= p.At:
		return fmt.Errorf("simulations: partition heals at %v, not after it starts (%v)", p.Heal, p.At)
	case math.IsNaN(p.Split) || p.Split < 0 || p.Split >= 1:
		return fmt.Errorf("simulations: partition split %v, want above 0 and below 1", p.Split)
	}
	return nil
}

func (p *Partition) split() float64 {
	if p.Split == 0 {
		return 0.5
	}
	return p.Split
}

// RestartMode says what a crashed node keeps when it restarts.
type RestartMode int

// Restart modes.
const (
	// NoRestart: crashed nodes stay down.
	NoRestart RestartMode = iota
	// RestartStateless: a new process with an empty seen filter, as a node
	// with the memory filter and no data directory restarts. It delivers
	// again the messages it finds still in its peers' caches, and takes a
	// new node ID.
	RestartStateless
	// RestartStateful: a new process that keeps its node ID and its seen
	// filter, as a node with the leveldb filter restarts: it delivers only
	// what it had not delivered before. Its propagation cache and digest
	// start empty, as they do on disk-backed nodes.
	RestartStateful
)

func (m RestartMode) String() string {
	switch m {
	case RestartStateless:
		return "stateless"
	case RestartStateful:
		return "stateful"
	}
	return "none"
}

// Churn crashes, restarts and adds nodes during a run. Publishers are never
// chosen to crash or to join late, so that every message starts its spread.
type Churn struct {
	// Crash is the fraction of nodes, from 0 to 1, chosen at random among
	// those up, that crash at CrashAt (counted from the publication).
	Crash   float64
	CrashAt time.Duration
	// Restart says whether and how the crashed nodes restart, at
	// RestartAt (after CrashAt).
	Restart   RestartMode
	RestartAt time.Duration
	// Join is the fraction of nodes, from 0 to 1, chosen at random, that are
	// not running at the start and join at JoinAt. The other nodes list
	// them as peers from the start, as with a static peer list.
	Join   float64
	JoinAt time.Duration
}

func (c *Churn) validate() error {
	switch {
	case math.IsNaN(c.Crash) || c.Crash < 0 || c.Crash > 1:
		return fmt.Errorf("simulations: churn crashes %v of the nodes, want 0 to 1", c.Crash)
	case math.IsNaN(c.Join) || c.Join < 0 || c.Join > 1:
		return fmt.Errorf("simulations: churn joins %v of the nodes, want 0 to 1", c.Join)
	case c.CrashAt < 0 || c.RestartAt < 0 || c.JoinAt < 0:
		return errors.New("simulations: churn times must not be negative")
	case c.Restart != NoRestart && c.Crash == 0:
		return errors.New("simulations: churn restarts nodes but crashes none")
	case c.Restart != NoRestart && c.RestartAt <= c.CrashAt:
		return fmt.Errorf("simulations: churn restarts at %v, not after the crash at %v", c.RestartAt, c.CrashAt)
	case c.Restart < NoRestart || c.Restart > RestartStateful:
		return fmt.Errorf("simulations: unknown restart mode %d", c.Restart)
	}
	return nil
}

// ClockSkew is a model of the nodes' clock offsets.
type ClockSkew interface {
	// Offset is how far node's clock is ahead of the virtual clock
	// (negative: behind). It must be a pure function of node.
	Offset(node int) time.Duration
}

// SkewFunc adapts a function to ClockSkew.
type SkewFunc func(node int) time.Duration

// Offset implements ClockSkew.
func (f SkewFunc) Offset(node int) time.Duration { return f(node) }

// UniformSkew offsets each node's clock by a duration drawn uniformly from
// [-Max, Max], a pure function of Seed and the node's index.
type UniformSkew struct {
	Max  time.Duration
	Seed uint64
}

// Offset implements ClockSkew.
func (s UniformSkew) Offset(node int) time.Duration {
	if s.Max <= 0 {
		return 0
	}
	r := splitmix64(s.Seed ^ splitmix64(uint64(node)+1))
	span := uint64(2*s.Max) + 1
	return time.Duration(r%span) - s.Max
}

func (s UniformSkew) String() string { return s.Max.String() }

// splitmix64 is the finaliser of SplitMix64: a cheap, well-mixed hash.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
