package wire

import (
	"encoding/binary"
	"errors"
)

// Errors of ReadUvarint; decoders wrap them in their own malformed error.
var (
	ErrVarintTruncated  = errors.New("truncated varint")
	ErrVarintOverflow   = errors.New("varint overflows 64 bits")
	ErrVarintNonMinimal = errors.New("non-minimal varint")
)

// ReadUvarint decodes the unsigned varint (encoding/binary's LEB128) at the
// start of b and returns the rest. It is strict: one value has one encoding,
// the shortest, so that every datagram re-encodes to the same bytes.
func ReadUvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	switch {
	case n == 0:
		return 0, nil, ErrVarintTruncated
	case n < 0:
		return 0, nil, ErrVarintOverflow
	case n > 1 && b[n-1] == 0:
		// A last byte of zero means a shorter encoding existed.
		return 0, nil, ErrVarintNonMinimal
	}
	return v, b[n:], nil
}

// UvarintLen is the encoded size of v.
func UvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
