package merkle

import "encoding/binary"

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
