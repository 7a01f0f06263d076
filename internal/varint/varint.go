// Package varint reads and sizes the unsigned varints of hearsay's wire
// formats (encoding/binary's LEB128), strictly: one value has one encoding,
// the shortest, so that every datagram re-encodes to the same bytes.
package varint

import (
	"encoding/binary"
	"errors"
)

// Errors of Read; wire decoders wrap them in their own malformed error.
var (
	ErrTruncated  = errors.New("truncated varint")
	ErrOverflow   = errors.New("varint overflows 64 bits")
	ErrNonMinimal = errors.New("non-minimal varint")
)

// Read decodes the varint at the start of b and returns the rest.
func Read(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	switch {
	case n == 0:
		return 0, nil, ErrTruncated
	case n < 0:
		return 0, nil, ErrOverflow
	case n > 1 && b[n-1] == 0:
		// A last byte of zero means a shorter encoding existed.
		return 0, nil, ErrNonMinimal
	}
	return v, b[n:], nil
}

// Len is the encoded size of v.
func Len(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
