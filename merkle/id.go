package merkle

import (
	"cmp"
	"encoding/binary"
	"encoding/hex"
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
