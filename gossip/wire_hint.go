package gossip

import (
	"encoding/binary"
	"fmt"

	"github.com/hearsay-io/hearsay/wire"
)

// The hint: "I now have these messages", sent to a parked pull whose eager
// time is over, by origin tag and sequence ranges in the digest's form
// (docs/protocol.md, "HINT"). It carries no payload: the puller pulls if it
// lacks what it names.

// AppendHint appends a whole wire.Hint datagram naming origins, which must
// not be empty and whose ranges must be sorted, disjoint and non-adjacent.
func AppendHint(dst []byte, origins []OriginRanges) []byte {
	dst = wire.AppendHeader(dst, wire.Hint)
	dst = binary.AppendUvarint(dst, uint64(len(origins)))
	for i := range origins {
		dst = appendOriginRanges(dst, &origins[i])
	}
	return dst
}

// DecodeHint decodes a whole wire.Hint datagram. It allocates at most in
// proportion to len(datagram).
func DecodeHint(datagram []byte) ([]OriginRanges, error) {
	t, body, err := wire.Parse(datagram)
	if err != nil {
		return nil, err
	}
	if t != wire.Hint {
		return nil, fmt.Errorf("%w: packet type %v, want hint", wire.ErrMalformed, t)
	}
	var d pullDecoder
	return d.decodeHint(body)
}

// decodeHint decodes a hint's body. The origins it returns share d's
// buffers: valid until the next decode.
func (d *pullDecoder) decodeHint(b []byte) ([]OriginRanges, error) {
	count, b, err := readUvarint(b)
	if err != nil {
		return nil, err
	}
	if count == 0 {
		return nil, fmt.Errorf("%w: hint of no origin", wire.ErrMalformed)
	}
	if count > uint64(len(b)/11) {
		return nil, fmt.Errorf("%w: %d origins in %d bytes", wire.ErrTruncated, count, len(b))
	}
	d.req.Origins = d.req.Origins[:0]
	d.ranges = d.ranges[:0]
	d.spans = d.spans[:0]
	if b, err = d.decodeOrigins(b, count, nil); err != nil {
		return nil, err
	}
	if len(b) != 0 {
		return nil, wire.ErrTrailingBytes
	}
	d.slice()
	return d.req.Origins, nil
}
