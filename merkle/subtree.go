package merkle

import "iter"

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
