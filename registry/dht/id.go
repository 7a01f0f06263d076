package dht

import (
	"encoding/binary"
	"math"
	"math/bits"
	"math/rand/v2"

	"github.com/hearsay-io/hearsay/gossip"
)

// IDBits is the size of the ID space: node IDs are 128-bit gossip.NodeIDs.
const IDBits = 128

// distance is the XOR distance of two IDs as a 128-bit number.
type distance struct{ hi, lo uint64 }

func xor(a, b gossip.NodeID) distance {
	return distance{
		hi: binary.BigEndian.Uint64(a[:8]) ^ binary.BigEndian.Uint64(b[:8]),
		lo: binary.BigEndian.Uint64(a[8:]) ^ binary.BigEndian.Uint64(b[8:]),
	}
}

func (d distance) less(e distance) bool { return d.hi < e.hi || (d.hi == e.hi && d.lo < e.lo) }

// leadingZeros is the number of leading zero bits: 128 for distance zero.
func (d distance) leadingZeros() int {
	if d.hi != 0 {
		return bits.LeadingZeros64(d.hi)
	}
	return 64 + bits.LeadingZeros64(d.lo)
}

// log2 is log2(d), -Inf for zero.
func (d distance) log2() float64 {
	if d.hi == 0 && d.lo == 0 {
		return math.Inf(-1)
	}
	return math.Log2(float64(d.hi)*0x1p64 + float64(d.lo))
}

// commonPrefix is the number of leading bits a and b share: 128 when equal.
// It is the index of the bucket that holds b in a's table.
func commonPrefix(a, b gossip.NodeID) int { return xor(a, b).leadingZeros() }

// withPrefix returns a random ID that shares its first prefixBits bits with
// base. If flip, bit prefixBits is the opposite of base's (the ID then lies
// in bucket prefixBits of base's table); otherwise it is random too.
func withPrefix(rng *rand.Rand, base gossip.NodeID, prefixBits int, flip bool) gossip.NodeID {
	var id gossip.NodeID
	binary.BigEndian.PutUint64(id[:8], rng.Uint64())
	binary.BigEndian.PutUint64(id[8:], rng.Uint64())
	for i := range prefixBits {
		setBit(&id, i, bit(base, i))
	}
	if flip && prefixBits < IDBits {
		setBit(&id, prefixBits, !bit(base, prefixBits))
	}
	return id
}

func bit(id gossip.NodeID, i int) bool { return id[i/8]&(0x80>>(i%8)) != 0 }

func setBit(id *gossip.NodeID, i int, v bool) {
	if v {
		id[i/8] |= 0x80 >> (i % 8)
	} else {
		id[i/8] &^= 0x80 >> (i % 8)
	}
}
