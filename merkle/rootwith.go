package merkle

import "crypto/sha256"

// RootWith returns the root the tree would have with adds inserted and
// removes deleted, without changing it: a session's final check that what
// it found is the whole difference (the peer's root must be the local one
// with Missing added and Extra removed). It hashes only the paths of the
// changes, O(len(adds)+len(removes)) nodes.
func (t *Tree) RootWith(adds, removes []ID) Hash {
	v := newView(t, adds, removes)
	return v.root()
}

// hashWith is the hash the subtree n at level would have with adds (none
// of them under n) inserted and removes (all under n) deleted, both
// ascending. n may be nil, an empty subtree.
func (t *Tree) hashWith(n *node, level int, adds, removes []ID) Hash {
	if len(adds) == 0 && len(removes) == 0 {
		if n == nil {
			return EmptyHash
		}
		return n.hash
	}
	count := len(adds) - len(removes)
	if n != nil {
		count += n.count
	}
	if n == nil || n.isLeaf() || count <= t.leafSize || level >= t.maxLevel {
		// The shape depends on the count alone: rebuild this subtree's
		// IDs as it would be.
		var ids []ID
		if n != nil {
			ids = make([]ID, 0, n.count)
			walk(n, func(id ID) bool { ids = append(ids, id); return true })
		}
		merged, _ := mergeIDs(ids, adds, removes)
		if len(merged) <= t.leafSize || level >= t.maxLevel {
			return leafHash(merged)
		}
		return t.build(merged, level).hash
	}
	fan := 1 << t.b
	in := make([]byte, 1, 1+32*fan)
	in[0] = innerPrefix
	for i := range fan {
		na, nr := runOf(adds, i, level, t.b), runOf(removes, i, level, t.b)
		h := t.hashWith(n.inner.children[i], level+1, adds[:na], removes[:nr])
		in = append(in, h[:]...)
		adds, removes = adds[na:], removes[nr:]
	}
	return sha256.Sum256(in)
}
