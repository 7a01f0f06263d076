package merkle

import (
	"cmp"
	"slices"
)

// node is a subtree. An inner node holds more than LeafSize IDs and has
// 2^b children slots, nil where the child is empty; a leaf holds its IDs,
// sorted. Empty subtrees other than an empty root are never stored, so
// memory is proportional to the number of IDs.
type node struct {
	hash  Hash
	dirty bool // hash, sum (and, inner, hashIn's slots of dirty children) not up to date
	count int
	sum   summary
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
		n.sum = summarize(n.ids)
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
