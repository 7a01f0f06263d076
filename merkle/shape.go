package merkle

import (
	"errors"
	"fmt"
)

// Tree shape limits.
const (
	MinFanoutBits = 1
	MaxFanoutBits = 8
	MinLeafSize   = 1
	MaxLeafSize   = 64
)

// Defaults of TreeConfig, chosen by measurement (docs/anti-entropy.md,
// BenchmarkShapeChoice, BenchmarkShapeMemory): the fewest bytes to
// reconcile a million IDs with 100 differences, with a small tree.
const (
	DefaultFanoutBits = 3
	DefaultLeafSize   = 16
)

// ErrInvalidConfig: a configuration value is out of range.
var ErrInvalidConfig = errors.New("merkle: invalid configuration")

// TreeConfig is the shape of a tree. Two trees can be compared node by node
// only if they have the same shape, so every node of a cluster must use the
// same one; a session between trees of different shapes fails with
// ErrShapeMismatch.
type TreeConfig struct {
	// FanoutBits is b: an inner node at level l has 2^b children, one per
	// value of bits [l·b, (l+1)·b) of the ID (the most significant bit is
	// bit 0). From 1 to 8. Default 3 (fanout 8).
	FanoutBits int
	// LeafSize: a subtree holding at most LeafSize IDs is a leaf, one that
	// holds more is an inner node. From 1 to 64. Default 16.
	LeafSize int
}

// DefaultTreeConfig returns the shape every hearsay node uses.
func DefaultTreeConfig() TreeConfig {
	return TreeConfig{FanoutBits: DefaultFanoutBits, LeafSize: DefaultLeafSize}
}

func (c *TreeConfig) setDefaults() {
	if c.FanoutBits == 0 {
		c.FanoutBits = DefaultFanoutBits
	}
	if c.LeafSize == 0 {
		c.LeafSize = DefaultLeafSize
	}
}

func (c *TreeConfig) validate() error {
	if c.FanoutBits < MinFanoutBits || c.FanoutBits > MaxFanoutBits {
		return fmt.Errorf("%w: FanoutBits %d out of range %d..%d", ErrInvalidConfig, c.FanoutBits, MinFanoutBits, MaxFanoutBits)
	}
	if c.LeafSize < MinLeafSize || c.LeafSize > MaxLeafSize {
		return fmt.Errorf("%w: LeafSize %d out of range %d..%d", ErrInvalidConfig, c.LeafSize, MinLeafSize, MaxLeafSize)
	}
	return nil
}

// maxLevel is the deepest level: the one whose prefixes cover all 128 bits
// of an ID, where a subtree holds at most one ID.
func maxLevel(fanoutBits int) int { return (128 + fanoutBits - 1) / fanoutBits }
