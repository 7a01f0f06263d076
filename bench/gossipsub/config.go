package main

import (
	"errors"
	"fmt"
	"time"
)

// Config describes one run. Zero values take the defaults written beside
// each field; the bounds and defaults are hearsay bench's (internal/bench),
// so that both run the same workload.
type Config struct {
	// Nodes is the number of hosts, from 2 to 100. Default 20.
	Nodes int
	// Messages is how many messages are published, from 1 to 1,000,000,
	// with Nodes × Messages at most 4,000,000. Default 1000.
	Messages int
	// Size is each message's payload in bytes, from 16 (its index and send
	// time) to 1200. Default 256.
	Size int
	// Rate is the publishing rate in messages per second, across all
	// origins. Default 1000; RateUnlimited (or any negative value): as fast
	// as Publish returns.
	Rate int
	// Origins is how many hosts publish, from 1 to Nodes; message i comes
	// from origin i mod Origins. Default 1.
	Origins int
	// Peers is how many hosts each host dials: host i dials hosts i+1 …
	// i+Peers (mod Nodes). Default 0: every host connects to every other,
	// as every hearsay node has every other as a static peer.
	Peers int
	// Timeout bounds the run from its first publish to its last delivery;
	// what has not arrived by then counts as not delivered. Default 60s.
	Timeout time.Duration
}

// RateUnlimited as Config.Rate publishes as fast as Publish returns.
const RateUnlimited = -1

// Bounds, as in hearsay bench.
const (
	MinNodes      = 2
	MaxNodes      = 100
	MaxMessages   = 1_000_000
	MaxDeliveries = 4_000_000
	MinSize       = payloadHeader
	MaxSize       = 1200
	MaxRate       = 1_000_000
	MinTimeout    = time.Second
	MaxTimeout    = time.Hour
)

// Defaults.
const (
	DefaultNodes    = 20
	DefaultMessages = 1000
	DefaultSize     = 256
	DefaultRate     = 1000
	DefaultOrigins  = 1
	DefaultTimeout  = 60 * time.Second
)

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
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// ErrConfig is wrapped by every error of Validate.
var ErrConfig = errors.New("gossipsub bench: bad configuration")

// Validate checks a configuration whose defaults have been applied.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	switch {
	case c.Nodes < MinNodes || c.Nodes > MaxNodes:
		return bad("nodes must be between %d and %d, got %d", MinNodes, MaxNodes, c.Nodes)
	case c.Messages < 1 || c.Messages > MaxMessages:
		return bad("messages must be between 1 and %d, got %d", MaxMessages, c.Messages)
	case c.Nodes*c.Messages > MaxDeliveries:
		return bad("nodes × messages must be at most %d, got %d × %d", MaxDeliveries, c.Nodes, c.Messages)
	case c.Size < MinSize || c.Size > MaxSize:
		return bad("size must be between %d and %d bytes, got %d", MinSize, MaxSize, c.Size)
	case c.Rate > MaxRate:
		return bad("rate must be at most %d messages/s, got %d", MaxRate, c.Rate)
	case c.Origins < 1 || c.Origins > c.Nodes:
		return bad("origins must be between 1 and nodes (%d), got %d", c.Nodes, c.Origins)
	case c.Peers < 0 || c.Peers >= c.Nodes:
		return bad("peers must be between 0 (all) and nodes-1 (%d), got %d", c.Nodes-1, c.Peers)
	case c.Timeout < MinTimeout || c.Timeout > MaxTimeout:
		return bad("timeout must be between %s and %s, got %s", MinTimeout, MaxTimeout, c.Timeout)
	}
	if d := c.PublishDuration(); d >= c.Timeout {
		return bad("publishing %d messages at %d/s takes %s, not less than the timeout (%s)", c.Messages, c.Rate, d, c.Timeout)
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

// neighbours returns, for each host, the hosts it dials: host i dials
// i+1 … i+Peers (mod Nodes), or with Peers 0 every host of a higher index,
// so that each pair is connected once.
func (c Config) neighbours() [][]int {
	dials := make([][]int, c.Nodes)
	if c.Peers == 0 {
		for i := range c.Nodes {
			for j := i + 1; j < c.Nodes; j++ {
				dials[i] = append(dials[i], j)
			}
		}
		return dials
	}
	linked := map[[2]int]bool{}
	for i := range c.Nodes {
		for d := 1; d <= c.Peers; d++ {
			j := (i + d) % c.Nodes
			pair := [2]int{min(i, j), max(i, j)}
			if linked[pair] {
				continue // i+d wrapped onto a host that dials i already
			}
			linked[pair] = true
			dials[i] = append(dials[i], j)
		}
	}
	return dials
}
