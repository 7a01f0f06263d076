// Package bench runs the same gossip workload on a hearsay cluster and on a
// hashicorp/memberlist cluster side by side, on 127.0.0.1, and measures what
// each costs: delivery, latency, bytes on the wire, duplicates and CPU. The
// nodes run in one process, or each in its own (Config.Processes; ServeNode
// is a node process's side). A third system, GossipSub, runs the same
// workload in a program of its own (bench/gossipsub) whose report is read
// back. `hearsay bench` is its command line; docs/bench.md describes the
// workload and every figure.
package bench

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/security"
)

// System names a gossip implementation the benchmark can drive.
type System string

// The systems compared.
const (
	// Hearsay is N hearsay nodes (package node) with static peers.
	Hearsay System = "hearsay"
	// Memberlist is N memberlist instances spreading user messages through
	// a TransmitLimitedQueue, each node re-queueing what it first receives,
	// as serf does.
	Memberlist System = "memberlist"
	// GossipSub is N go-libp2p-pubsub hosts with GossipSub's default
	// parameters, run by Config.GossipSubCommand (bench/gossipsub).
	GossipSub System = "gossipsub"
)

// Systems lists the systems run by default, in the order they run and are
// printed.
var Systems = []System{Hearsay, Memberlist}

// KnownSystems lists every system Config.Systems may name: Systems and
// GossipSub, which needs its program built.
var KnownSystems = []System{Hearsay, Memberlist, GossipSub}

// Bounds of the workload. MaxSize keeps a message, with either system's
// headers and sealing, inside one 1400-byte datagram.
const (
	MinNodes    = 2
	MaxNodes    = 100
	MaxMessages = 1_000_000
	// MaxDeliveries bounds Nodes × Messages: the run keeps an arrival time
	// per (message, node) pair.
	MaxDeliveries = 4_000_000
	MinSize       = payloadHeader
	MaxSize       = 1200
	MaxRate       = 1_000_000
	MaxFanout     = 64
	MinInterval   = 10 * time.Millisecond
	MaxInterval   = 10 * time.Second
	MinTimeout    = time.Second
	MaxTimeout    = time.Hour
)

// Config describes one benchmark run. Zero values take the defaults written
// beside each field.
type Config struct {
	// Nodes is the cluster size of each system, from 2 to 100. Default 20.
	Nodes int
	// Messages is how many messages are published, from 1 to 1,000,000.
	// Default 1000.
	Messages int
	// Size is each message's payload in bytes, from 16 (its ID and send
	// time) to 1200. Default 256.
	Size int
	// Rate is the publishing rate in messages per second, across all
	// origins. Default 1000; RateUnlimited (or any negative value): as fast
	// as backpressure allows.
	Rate int
	// Origins is how many nodes publish, from 1 to Nodes; message i comes
	// from origin i mod Origins. Default 1.
	Origins int
	// Interval is the gossip round of both systems (hearsay's Interval,
	// memberlist's GossipInterval). Default 200ms.
	Interval time.Duration
	// Fanout is how many peers a node contacts per round in both systems
	// (hearsay's Fanout, memberlist's GossipNodes), from 1 to 64. Default 3.
	Fanout int
	// LongPoll is hearsay's long-poll (gossip.Config.MaxPark): how long a
	// peer may keep a node's pull open, sending it new messages as they
	// arrive. Default: the protocol's default, as an agent runs; negative:
	// off, round-paced pulls only. Memberlist has no such thing.
	LongPoll time.Duration
	// API sends hearsay's messages through each node's HTTP API, as
	// applications see them: published with an HTTP POST (client.Publish)
	// and received from an SSE stream (client.Subscribe) on every node, so
	// latency runs from the publish request to the event. Default false:
	// node.Publish and node.Subscribe in the node's process. Memberlist and
	// GossipSub have no such API and ignore it.
	API bool
	// Cipher is hearsay's cipher suite (the agent's --cipher). Default
	// security.DefaultSuite.
	Cipher security.Suite
	// Plaintext turns encryption off. Default false: hearsay seals every
	// datagram (XChaCha20-Poly1305) and memberlist encrypts with the same
	// 256-bit key (AES-256-GCM).
	Plaintext bool
	// Sign has every hearsay node sign its messages and require
	// signatures (node.Config.Sign). Default false.
	Sign bool
	// Timeout bounds each system's run, from its first publish to its last
	// delivery; what has not arrived by then counts as not delivered.
	// Default 60s.
	Timeout time.Duration
	// Systems are the systems to run, in this order. Default: Systems.
	Systems []System
	// Progress, if set, receives a line as each phase of the run begins.
	Progress io.Writer
	// Processes runs every node as its own operating system process,
	// started with NodeCommand, instead of all in this one: no node then
	// shares a Go scheduler or garbage collector with another, CPU is
	// the sum over the node processes, and times come from the machine's
	// wall clock. Default false: one process.
	Processes bool
	// NodeCommand is the program and arguments that start one node process
	// (with Processes): it must serve ServeNode on its standard input and
	// output, as `hearsay bench-node` does. Required with Processes.
	NodeCommand []string
	// GossipSubCommand is the program and arguments that run the GossipSub
	// system: bench/gossipsub's program (FindGossipSub), to which the
	// workload's flags are added. It runs every host in its one process,
	// with or without Processes, and ignores Interval, Fanout and
	// Plaintext: GossipSub keeps its defaults and libp2p always encrypts.
	// Required with GossipSub in Systems.
	GossipSubCommand []string

	// originSendsOnce makes a memberlist origin drop its broadcasts once it
	// has handed them out a first time, so that every other delivery needs
	// forwarding. For tests.
	originSendsOnce bool
}

// Defaults.
const (
	DefaultNodes    = 20
	DefaultMessages = 1000
	DefaultSize     = 256
	DefaultRate     = 1000
	DefaultOrigins  = 1
	DefaultTimeout  = 60 * time.Second
)

// The gossip round and fanout of both systems default to hearsay's own
// protocol defaults (gossip.DefaultConfig), so a run measures what a node
// does out of the box.
var (
	DefaultInterval = protocolDefaults.Interval
	DefaultFanout   = protocolDefaults.Fanout
	DefaultLongPoll = protocolDefaults.MaxPark
)

var protocolDefaults = gossip.DefaultConfig(gossip.NodeID{}, nil)

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Nodes == 0 {
		c.Nodes = DefaultNodes
	}
	if c.Messages == 0 {
		c.Messages = DefaultMessages
	}
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Origins == 0 {
		c.Origins = DefaultOrigins
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Fanout == 0 {
		c.Fanout = DefaultFanout
	}
	if c.LongPoll == 0 {
		c.LongPoll = DefaultLongPoll
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if len(c.Systems) == 0 {
		c.Systems = Systems
	}
	return c
}

// ErrConfig is wrapped by every error of Validate.
var ErrConfig = errors.New("bench: bad configuration")

// Validate checks a configuration whose defaults have been applied.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	switch {
	case c.Nodes < MinNodes || c.Nodes > MaxNodes:
		return bad("Nodes must be between %d and %d, got %d", MinNodes, MaxNodes, c.Nodes)
	case c.Messages < 1 || c.Messages > MaxMessages:
		return bad("Messages must be between 1 and %d, got %d", MaxMessages, c.Messages)
	case c.Nodes*c.Messages > MaxDeliveries:
		return bad("Nodes × Messages must be at most %d, got %d × %d", MaxDeliveries, c.Nodes, c.Messages)
	case c.Size < MinSize || c.Size > MaxSize:
		return bad("Size must be between %d and %d bytes, got %d", MinSize, MaxSize, c.Size)
	case c.Rate > MaxRate:
		return bad("Rate must be at most %d messages/s, got %d", MaxRate, c.Rate)
	case c.Origins < 1 || c.Origins > c.Nodes:
		return bad("Origins must be between 1 and Nodes (%d), got %d", c.Nodes, c.Origins)
	case c.Interval < MinInterval || c.Interval > MaxInterval:
		return bad("Interval must be between %s and %s, got %s", MinInterval, MaxInterval, c.Interval)
	case c.Fanout < 1 || c.Fanout > MaxFanout:
		return bad("Fanout must be between 1 and %d, got %d", MaxFanout, c.Fanout)
	case c.LongPoll > 0 && c.LongPoll < time.Millisecond || c.LongPoll > gossip.MaxLongPoll:
		return bad("LongPoll must be negative (off) or between 1ms and %s, got %s", gossip.MaxLongPoll, c.LongPoll)
	case c.Timeout < MinTimeout || c.Timeout > MaxTimeout:
		return bad("Timeout must be between %s and %s, got %s", MinTimeout, MaxTimeout, c.Timeout)
	}
	if _, err := security.ParseSuite(c.Cipher.String()); err != nil {
		return bad("Cipher: %v", err)
	}
	if d := c.PublishDuration(); d >= c.Timeout {
		return bad("publishing %d messages at %d/s takes %s, not less than Timeout (%s)", c.Messages, c.Rate, d, c.Timeout)
	}
	if c.Processes && len(c.NodeCommand) == 0 {
		return bad("Processes needs a NodeCommand")
	}
	seen := map[System]bool{}
	for _, s := range c.Systems {
		if !slices.Contains(KnownSystems, s) {
			return bad("unknown system %q (want %s, %s or %s)", s, Hearsay, Memberlist, GossipSub)
		}
		if seen[s] {
			return bad("system %q listed twice", s)
		}
		seen[s] = true
	}
	if seen[GossipSub] && len(c.GossipSubCommand) == 0 {
		return bad("system %s needs a GossipSubCommand: build %s with `%s`", GossipSub, GossipSubProgram, GossipSubBuild)
	}
	return nil
}

// PublishDuration is how long publishing takes at c.Rate: zero when the rate
// is unlimited.
func (c Config) PublishDuration() time.Duration {
	if c.Rate <= 0 {
		return 0
	}
	return time.Duration(float64(c.Messages-1) / float64(c.Rate) * float64(time.Second))
}
