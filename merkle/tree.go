package merkle

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"slices"
)

// ID is a 16-byte message ID. IDs are the first 16 bytes of a SHA-256, so
// they are uniformly distributed, which keeps the tree balanced without any
// rebalancing. gossip.MessageID converts to it directly.
type ID [16]byte

// String returns the ID as 32 lower-case hex digits.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Compare orders IDs as big-endian 128-bit numbers, which is also the order
// of the tree's leaves.
func (id ID) Compare(other ID) int {
	if c := cmp.Compare(binary.BigEndian.Uint64(id[:8]), binary.BigEndian.Uint64(other[:8])); c != 0 {
		return c
	}
	return cmp.Compare(binary.BigEndian.Uint64(id[8:]), binary.BigEndian.Uint64(other[8:]))
}

// Hash is the SHA-256 hash of a subtree.
type Hash [32]byte

// String returns the hash as 64 lower-case hex digits.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Bytes returns the hash as a byte slice.
func (h Hash) Bytes() []byte { return h[:] }

// Domain-separation prefixes of the hashed inputs (RFC 6962 §2.1, THEX):
// a leaf's input starts with 0x00 and an inner node's with 0x01, so no leaf
// can be passed off as an inner node or the other way round.
const (
	leafPrefix  = 0x00
	innerPrefix = 0x01
)

// EmptyHash is the hash of every empty subtree, the root of an empty tree
// included: the hash of a leaf holding no ID, SHA-256(0x00) =
// 6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d.
// Empty subtrees are never stored; inner nodes hash EmptyHash in their place.
var EmptyHash = Hash(sha256.Sum256([]byte{leafPrefix}))

// Tree shape limits.
const (
	MinFanoutBits = 1
	MaxFanoutBits = 8
	MinLeafSize   = 1
	MaxLeafSize   = 64
)

// Defaults of TreeConfig, chosen by measurement (docs/anti-entropy.md,
// BenchmarkShapeChoice): the fewest bytes to reconcile a million IDs with
// 100 differences within six round trips.
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

// Position names a subtree: the IDs whose first Level×FanoutBits bits equal
// those of Prefix. The root is the zero Position. Bits of Prefix past
// Level×FanoutBits are ignored, and the positions this package produces
// have them zero.
type Position struct {
	Level  int
	Prefix ID
}

// PositionOf returns the position at level of the subtree that holds id.
func (t *Tree) PositionOf(id ID, level int) Position {
	level = min(max(level, 0), t.maxLevel)
	return Position{Level: level, Prefix: maskBits(id, level*t.b)}
}

// Child returns the position of child i of p (0 <= i < 2^FanoutBits), and
// false if there is no such child: p is at the deepest level, or i sets bits
// past the 128th.
func (t *Tree) Child(p Position, i int) (Position, bool) {
	return childPosition(p, i, t.b)
}

func childPosition(p Position, i, b int) (Position, bool) {
	if p.Level < 0 || p.Level >= maxLevel(b) || i < 0 || i >= 1<<b {
		return Position{}, false
	}
	start := p.Level * b
	if over := start + b - 128; over > 0 && i&(1<<over-1) != 0 {
		return Position{}, false
	}
	c := Position{Level: p.Level + 1, Prefix: maskBits(p.Prefix, start)}
	for k := 0; k < b && start+k < 128; k++ {
		if i&(1<<(b-1-k)) != 0 {
			bit := start + k
			c.Prefix[bit/8] |= 0x80 >> (bit % 8)
		}
	}
	return c, true
}

// childIndex returns bits [level·b, level·b+b) of id, read most significant
// first; bits past the 128th read as zero.
func childIndex(id *ID, level, b int) int {
	start := level * b
	end := start + b
	hi := binary.BigEndian.Uint64(id[:8])
	lo := binary.BigEndian.Uint64(id[8:])
	var v uint64
	switch {
	case end <= 64:
		v = hi >> (64 - end)
	case start >= 64 && end <= 128:
		v = lo >> (128 - end)
	case start >= 64:
		v = lo << (end - 128)
	default: // straddles the halves: 64 < end <= 72
		v = hi<<(end-64) | lo>>(128-end)
	}
	return int(v & (1<<b - 1))
}

// maskBits returns id with every bit from the nbits-th on cleared.
func maskBits(id ID, nbits int) ID {
	if nbits >= 128 {
		return id
	}
	if nbits <= 0 {
		return ID{}
	}
	full := nbits / 8
	if r := nbits % 8; r != 0 {
		id[full] &= byte(0xff << (8 - r))
		full++
	}
	clear(id[full:])
	return id
}

// hasPrefix reports whether the first nbits bits of id and prefix agree.
func hasPrefix(id, prefix *ID, nbits int) bool {
	nbits = min(nbits, 128)
	full := nbits / 8
	for i := 0; i < full; i++ {
		if id[i] != prefix[i] {
			return false
		}
	}
	if r := nbits % 8; r != 0 {
		m := byte(0xff << (8 - r))
		return id[full]&m == prefix[full]&m
	}
	return true
}

// node is a subtree. An inner node holds more than LeafSize IDs and has
// 2^b children slots, nil where the child is empty; a leaf holds its IDs,
// sorted. Empty subtrees other than an empty root are never stored, so
// memory is proportional to the number of IDs.
type node struct {
	hash  Hash
	dirty bool // hash (and, inner, hashIn's slots of dirty children) not up to date
	count int
	ids   []ID       // leaf: ascending
	inner *innerNode // nil for a leaf
}

type innerNode struct {
	children []*node // 1<<b slots
	// hashIn is the input of the node's hash, 0x01 and the children's
	// hashes, kept up to date: rehashing a node on the path of an insert
	// reads it in one sweep instead of visiting every sibling, which at a
	// million IDs is a cache miss each.
	hashIn []byte
}

func (n *node) isLeaf() bool { return n.inner == nil }

// Tree is a Merkle tree over a set of IDs with a fixed shape: a radix tree
// in which the subtree at level l holds the IDs sharing their first l·b bits,
// and a subtree with at most LeafSize IDs is a leaf. A subtree's hash is a
// function of the IDs under it alone, whatever the order of insertion, so
// two trees of the same shape can be compared node by node:
//
//	leaf hash  = SHA-256(0x00 || its IDs, ascending, 16 bytes each)
//	inner hash = SHA-256(0x01 || hash of child 0 || ... || hash of child 2^b-1)
//
// with EmptyHash for an empty child. InsertLater and RemoveLater queue a
// change; queued changes are applied in one sorted pass when the tree is
// next read, and a change only marks the path from its leaf to the root
// dirty; the hashes are brought up to date when one is next read (Root,
// HashAt, a Responder's answer), each dirty node once. A node on the path
// of many inserts between two reads is visited and hashed once, not once
// per insert: at a high message rate a node inserts thousands of IDs
// between two anti-entropy sessions. Root on a settled tree is O(1).
//
// A Tree is not safe for concurrent use: reading a hash may settle it.
type Tree struct {
	b, leafSize int
	maxLevel    int
	root        *node
	queued      []change // InsertLater and RemoveLater, not applied yet
	adds        []ID     // scratch of apply
	removes     []ID     // scratch of apply
	sortScratch []change // scratch of apply
}

// NewTree returns an empty tree of the given shape (zero fields take the
// defaults).
func NewTree(cfg TreeConfig) (*Tree, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t := &Tree{b: cfg.FanoutBits, leafSize: cfg.LeafSize, maxLevel: maxLevel(cfg.FanoutBits)}
	t.root = &node{hash: EmptyHash}
	return t, nil
}

// BuildTree returns a tree of the given shape holding ids (duplicates are
// ignored). It sorts a copy of ids and hashes every node once, several times
// faster than inserting the IDs one by one.
func BuildTree(cfg TreeConfig, ids []ID) (*Tree, error) {
	t, err := NewTree(cfg)
	if err != nil {
		return nil, err
	}
	sorted := slices.Clone(ids)
	slices.SortFunc(sorted, ID.Compare)
	sorted = slices.Compact(sorted)
	t.root = t.build(sorted, 0)
	return t, nil
}

// build returns the subtree at level holding sorted (which it may keep).
func (t *Tree) build(sorted []ID, level int) *node {
	n := &node{count: len(sorted)}
	if len(sorted) <= t.leafSize || level >= t.maxLevel {
		n.ids = slices.Clip(sorted)
		n.hash = leafHash(n.ids)
		return n
	}
	n.inner = &innerNode{children: make([]*node, 1<<t.b)}
	for len(sorted) > 0 {
		i := childIndex(&sorted[0], level, t.b)
		// IDs are sorted, so the child's IDs are a run.
		j, _ := slices.BinarySearchFunc(sorted, i+1, func(id ID, c int) int {
			return cmp.Compare(childIndex(&id, level, t.b), c)
		})
		n.inner.children[i] = t.build(sorted[:j:j], level+1)
		sorted = sorted[j:]
	}
	t.rehashInner(n)
	return n
}

// Config returns the tree's shape.
func (t *Tree) Config() TreeConfig { return TreeConfig{FanoutBits: t.b, LeafSize: t.leafSize} }

// Len returns the number of IDs in the tree.
func (t *Tree) Len() int {
	t.apply()
	return t.root.count
}

// Root returns the root hash; EmptyHash for an empty tree.
func (t *Tree) Root() Hash {
	t.settle()
	return t.root.hash
}

// Contains reports whether id is in the tree.
func (t *Tree) Contains(id ID) bool {
	t.apply()
	n, level := t.root, 0
	for !n.isLeaf() {
		n = n.inner.children[childIndex(&id, level, t.b)]
		if n == nil {
			return false
		}
		level++
	}
	_, found := slices.BinarySearchFunc(n.ids, id, ID.Compare)
	return found
}

// Insert adds id and reports whether it was absent. It applies the queued
// changes first; InsertLater is the cheaper way to add many IDs.
func (t *Tree) Insert(id ID) bool {
	if t.Contains(id) {
		return false
	}
	t.InsertLater(id)
	t.apply()
	return true
}

// Remove deletes id and reports whether it was present. It applies the
// queued changes first; RemoveLater is the cheaper way to remove many IDs.
func (t *Tree) Remove(id ID) bool {
	if !t.Contains(id) {
		return false
	}
	t.RemoveLater(id)
	t.apply()
	return true
}

// merge adds the IDs of adds and deletes those of removes (both ascending,
// no ID in both) under n, at level, and returns how many IDs n gained
// (negative: lost) and whether it changed. n keeps the shape rule: a leaf if it then holds at most
// LeafSize IDs, an inner node otherwise. A changed n is marked dirty; a
// subtree built anew is hashed already.
func (t *Tree) merge(n *node, adds, removes []ID, level int) (delta int, changed bool) {
	if len(adds) == 0 && len(removes) == 0 {
		return 0, false
	}
	if n.isLeaf() {
		ids, changed := mergeIDs(n.ids, adds, removes)
		if !changed {
			return 0, false
		}
		delta := len(ids) - n.count
		if len(ids) > t.leafSize && level < t.maxLevel {
			*n = *t.build(ids, level)
		} else {
			n.ids, n.count = ids, len(ids)
		}
		n.dirty = true
		return delta, true
	}
	for len(adds) > 0 || len(removes) > 0 {
		// The next child with a change, and the runs of changes under it.
		i := 1 << t.b
		if len(adds) > 0 {
			i = childIndex(&adds[0], level, t.b)
		}
		if len(removes) > 0 {
			i = min(i, childIndex(&removes[0], level, t.b))
		}
		na, nr := runOf(adds, i, level, t.b), runOf(removes, i, level, t.b)
		c := n.inner.children[i]
		switch {
		case c == nil && na > 0:
			c = t.build(slices.Clone(adds[:na]), level+1)
			n.inner.children[i] = c
			c.dirty = true // copied into n's hash input when settled
			delta, changed = delta+na, true
		case c != nil:
			d, ch := t.merge(c, adds[:na], removes[:nr], level+1)
			delta, changed = delta+d, changed || ch
			if c.count == 0 {
				n.inner.children[i] = nil
				copy(n.inner.hashIn[1+32*i:], EmptyHash[:])
			}
		}
		adds, removes = adds[na:], removes[nr:]
	}
	if !changed {
		return 0, false
	}
	n.count += delta
	n.dirty = true
	if n.count <= t.leafSize {
		t.collapse(n)
	}
	return delta, true
}

// runOf returns how many of the first IDs of sorted fall under child i at
// level.
func runOf(sorted []ID, i, level, b int) int {
	k := 0
	for k < len(sorted) && childIndex(&sorted[k], level, b) == i {
		k++
	}
	return k
}

// mergeIDs returns (ids ∪ adds) ∖ removes, all three ascending, in a new
// slice, and whether it differs from ids.
func mergeIDs(ids, adds, removes []ID) ([]ID, bool) {
	out := make([]ID, 0, len(ids)+len(adds))
	changed := false
	for len(ids) > 0 || len(adds) > 0 {
		var next ID
		switch {
		case len(adds) == 0:
			next, ids = ids[0], ids[1:]
		case len(ids) == 0:
			next, adds = adds[0], adds[1:]
			changed = true
		default:
			switch c := ids[0].Compare(adds[0]); {
			case c < 0:
				next, ids = ids[0], ids[1:]
			case c > 0:
				next, adds = adds[0], adds[1:]
				changed = true
			default:
				next, ids, adds = ids[0], ids[1:], adds[1:]
			}
		}
		for len(removes) > 0 && removes[0].Compare(next) < 0 {
			removes = removes[1:]
		}
		if len(removes) > 0 && removes[0] == next {
			removes = removes[1:]
			changed = true
			continue
		}
		out = append(out, next)
	}
	return slices.Clip(out), changed
}

// collapse turns the inner node n, which now holds at most LeafSize IDs,
// into a leaf. Its children hold fewer IDs than n, so they are leaves.
func (t *Tree) collapse(n *node) {
	ids := make([]ID, 0, n.count)
	for _, c := range n.inner.children {
		if c != nil {
			ids = append(ids, c.ids...)
		}
	}
	n.inner = nil
	n.ids = ids
	n.dirty = true
}

// settle applies the queued changes and brings every dirty hash up to date.
func (t *Tree) settle() {
	t.apply()
	if t.root.dirty {
		settle(t.root)
	}
}

func settle(n *node) {
	n.dirty = false
	if n.isLeaf() {
		n.hash = leafHash(n.ids)
		return
	}
	for i, c := range n.inner.children {
		if c != nil && c.dirty {
			settle(c)
			copy(n.inner.hashIn[1+32*i:], c.hash[:])
		}
	}
	n.hash = sha256.Sum256(n.inner.hashIn)
}

// leafHash hashes a leaf: SHA-256(0x00 || ids).
func leafHash(ids []ID) Hash {
	var buf [1 + MaxLeafSize*16]byte
	in := buf[:0]
	if len(ids) > MaxLeafSize { // a deepest-level leaf never is; be safe
		in = make([]byte, 0, 1+16*len(ids))
	}
	in = append(in, leafPrefix)
	for i := range ids {
		in = append(in, ids[i][:]...)
	}
	return sha256.Sum256(in)
}

// rehashInner fills the inner node n's hash input from its children and
// hashes it: SHA-256(0x01 || hash of child 0 || ... ).
func (t *Tree) rehashInner(n *node) {
	in := make([]byte, 1, 1+32*len(n.inner.children))
	in[0] = innerPrefix
	for _, c := range n.inner.children {
		if c == nil {
			in = append(in, EmptyHash[:]...)
		} else {
			in = append(in, c.hash[:]...)
		}
	}
	n.inner.hashIn = in
	n.hash = sha256.Sum256(in)
}

// locate returns the node at p if the tree has one there (exact), or else
// the leaf above p that would hold p's IDs, with its level; nil if the
// subtree at p is empty.
func (t *Tree) locate(p Position) (n *node, level int) {
	t.apply()
	n = t.root
	for level < p.Level && !n.isLeaf() {
		n = n.inner.children[childIndex(&p.Prefix, level, t.b)]
		if n == nil {
			return nil, 0
		}
		level++
	}
	return n, level
}

// leafIDsAt appends to dst the IDs of leaf n that lie under p.
func (t *Tree) leafIDsAt(dst []ID, n *node, p Position) []ID {
	nbits := p.Level * t.b
	for i := range n.ids {
		if hasPrefix(&n.ids[i], &p.Prefix, nbits) {
			dst = append(dst, n.ids[i])
		}
	}
	return dst
}

func (t *Tree) validPosition(p Position) bool { return p.Level >= 0 && p.Level <= t.maxLevel }

// HashAt returns the hash of the subtree at p (EmptyHash if it is empty).
// Below the leaves it is the hash of a leaf holding p's share of the IDs,
// which is what the tree would store there: a subset of a leaf is a leaf.
func (t *Tree) HashAt(p Position) Hash {
	if !t.validPosition(p) {
		return EmptyHash
	}
	t.settle()
	n, level := t.locate(p)
	switch {
	case n == nil:
		return EmptyHash
	case level == p.Level:
		return n.hash
	}
	var buf [MaxLeafSize]ID
	return leafHash(t.leafIDsAt(buf[:0], n, p))
}

// CountAt returns the number of IDs under p.
func (t *Tree) CountAt(p Position) int {
	if !t.validPosition(p) {
		return 0
	}
	n, level := t.locate(p)
	switch {
	case n == nil:
		return 0
	case level == p.Level:
		return n.count
	}
	c := 0
	for i := range n.ids {
		if hasPrefix(&n.ids[i], &p.Prefix, p.Level*t.b) {
			c++
		}
	}
	return c
}

// IDs iterates, in ascending order, over the IDs under p. The tree must
// not be modified during the iteration.
func (t *Tree) IDs(p Position) iter.Seq[ID] {
	return func(yield func(ID) bool) {
		if !t.validPosition(p) {
			return
		}
		n, level := t.locate(p)
		if n == nil {
			return
		}
		if level < p.Level {
			for i := range n.ids {
				if hasPrefix(&n.ids[i], &p.Prefix, p.Level*t.b) && !yield(n.ids[i]) {
					return
				}
			}
			return
		}
		walk(n, yield)
	}
}

// All iterates over every ID, in ascending order.
func (t *Tree) All() iter.Seq[ID] { return t.IDs(Position{}) }

func walk(n *node, yield func(ID) bool) bool {
	if n.isLeaf() {
		for _, id := range n.ids {
			if !yield(id) {
				return false
			}
		}
		return true
	}
	for _, c := range n.inner.children {
		if c != nil && !walk(c, yield) {
			return false
		}
	}
	return true
}

// childView fills hashes and counts with those of the 2^b children of p
// (EmptyHash and 0 for empty ones). p must be above the deepest level.
func (t *Tree) childView(p Position, hashes []Hash, counts []int) {
	t.settle()
	fan := 1 << t.b
	hashes, counts = hashes[:fan], counts[:fan]
	n, level := t.locate(p)
	switch {
	case n == nil:
		for i := range fan {
			hashes[i], counts[i] = EmptyHash, 0
		}
	case level == p.Level && !n.isLeaf():
		for i, c := range n.inner.children {
			if c == nil {
				hashes[i], counts[i] = EmptyHash, 0
			} else {
				hashes[i], counts[i] = c.hash, c.count
			}
		}
	default:
		// p lies in (or is) a leaf: its children are leaves holding runs of
		// the leaf's IDs.
		var buf [MaxLeafSize]ID
		ids := t.leafIDsAt(buf[:0], n, p)
		for i := range fan {
			counts[i] = 0
		}
		for k := 0; k < len(ids); {
			i := childIndex(&ids[k], p.Level, t.b)
			j := k + 1
			for j < len(ids) && childIndex(&ids[j], p.Level, t.b) == i {
				j++
			}
			hashes[i], counts[i] = leafHash(ids[k:j]), j-k
			k = j
		}
		for i := range fan {
			if counts[i] == 0 {
				hashes[i] = EmptyHash
			}
		}
	}
}
