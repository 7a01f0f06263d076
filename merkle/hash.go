package merkle

import "crypto/sha256"

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
		n.sum = summarize(n.ids)
		return
	}
	for i, c := range n.inner.children {
		if c != nil && c.dirty {
			settle(c)
			copy(n.inner.hashIn[1+32*i:], c.hash[:])
		}
	}
	n.hash = sha256.Sum256(n.inner.hashIn)
	n.sum = summarizeChildren(n)
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
	n.sum = summarizeChildren(n)
}
