package merkle

import "encoding/binary"

// summary is the linear part of a subtree's digest: the XOR of its IDs and
// the XOR of a mix of each. Unlike the Merkle hash it can be subtracted:
// the XOR of two subtrees' summaries is the summary of their symmetric
// difference, so a subtree that differs from the peer's by one ID names
// that ID outright (the IBLT cell of Eppstein et al. 2011, with the tree's
// prefixes as the one hash function). Counts live in node.count.
type summary struct {
	xor ID
	chk uint64
}

// idCheck is the mix of an ID that a summary XORs: the splitmix64
// finalizer over both halves, so that a set of several IDs whose XOR
// happens to look like one ID is told apart from that one ID.
func idCheck(id *ID) uint64 {
	return mix64(binary.BigEndian.Uint64(id[:8]) ^ mix64(binary.BigEndian.Uint64(id[8:])^0x9e3779b97f4a7c15))
}

func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func (s *summary) add(id *ID) {
	for i := range s.xor {
		s.xor[i] ^= id[i]
	}
	s.chk ^= idCheck(id)
}

func (s *summary) merge(o *summary) {
	for i := range s.xor {
		s.xor[i] ^= o.xor[i]
	}
	s.chk ^= o.chk
}

func summarize(ids []ID) summary {
	var s summary
	for i := range ids {
		s.add(&ids[i])
	}
	return s
}

// summarizeChildren is an inner node's summary, from its children's.
func summarizeChildren(n *node) summary {
	var s summary
	for _, c := range n.inner.children {
		if c != nil {
			s.merge(&c.sum)
		}
	}
	return s
}

// cell is what a session compares of a subtree: its hash, count and
// summary.
type cell struct {
	hash  Hash
	count int
	sum   summary
}

// maxCellBits bounds b·depth of an expansion: at most 4,096 cells, whose
// bitmap (512 bytes) fits the smallest datagram.
const maxCellBits = 12

// expandLimit is the deepest level an expansion may reach: the one whose
// prefixes still fit in 128 bits, so that every cell exists.
func expandLimit(fanoutBits int) int { return 128 / fanoutBits }

// cellsAt fills cells with the 2^(b·depth) subtrees depth levels below p,
// in prefix order. p.Level+depth must not pass expandLimit and depth·b
// maxCellBits; cells must have room for them all.
func (t *Tree) cellsAt(p Position, depth int, cells []cell) []cell {
	t.settle()
	n := 1 << (t.b * depth)
	cells = cells[:n]
	for i := range cells {
		cells[i] = cell{hash: EmptyHash}
	}
	node, level := t.locate(p)
	if node == nil || node.count == 0 {
		return cells
	}
	if level < p.Level {
		t.fillFromLeaf(node, p, depth, cells)
		return cells
	}
	t.fillCells(node, p.Level, p.Level+depth, 0, cells)
	return cells
}

// fillCells fills the cells under n, at level, whose index so far is idx.
func (t *Tree) fillCells(n *node, level, target, idx int, cells []cell) {
	if level == target {
		cells[idx] = cell{hash: n.hash, count: n.count, sum: n.sum}
		return
	}
	if n.isLeaf() {
		t.fillFromLeaf(n, Position{Level: level, Prefix: maskBits(n.ids[0], level*t.b)}, target-level, cells[idx<<(t.b*(target-level)):])
		return
	}
	for i, c := range n.inner.children {
		if c != nil {
			t.fillCells(c, level+1, target, idx<<t.b|i, cells)
		}
	}
}

// fillFromLeaf fills cells with the subsets of leaf n's IDs under p that
// lie depth levels below it: leaves themselves, hashed as such.
func (t *Tree) fillFromLeaf(n *node, p Position, depth int, cells []cell) {
	var buf [MaxLeafSize]ID
	ids := t.leafIDsAt(buf[:0], n, p)
	for k := 0; k < len(ids); {
		i := cellIndex(&ids[k], p.Level, depth, t.b)
		j := k + 1
		for j < len(ids) && cellIndex(&ids[j], p.Level, depth, t.b) == i {
			j++
		}
		cells[i] = cell{hash: leafHash(ids[k:j]), count: j - k, sum: summarize(ids[k:j])}
		k = j
	}
}

// cellIndex is the index, among the cells depth levels below level, of the
// one holding id.
func cellIndex(id *ID, level, depth, b int) int {
	i := 0
	for l := level; l < level+depth; l++ {
		i = i<<b | childIndex(id, l, b)
	}
	return i
}

// cellPosition is the position of cell i depth levels below p.
func cellPosition(p Position, depth, i, b int) Position {
	for d := 0; d < depth; d++ {
		p, _ = childPosition(p, i>>(b*(depth-1-d))&(1<<b-1), b)
	}
	return p
}

// cellAt returns the subtree at p.
func (t *Tree) cellAt(p Position) cell {
	var one [1]cell
	return t.cellsAt(p, 0, one[:])[0]
}
