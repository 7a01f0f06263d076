package gossip

import (
	"encoding/binary"
	"fmt"

	"github.com/hearsay-io/hearsay/wire"
)

// The fetch: anti-entropy's request for messages by ID (docs/protocol.md,
// "FETCH").

// AppendFetch appends a whole wire.Fetch datagram asking for ids.
func AppendFetch(dst []byte, ids []MessageID) []byte {
	dst = wire.AppendHeader(dst, wire.Fetch)
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	for _, id := range ids {
		dst = append(dst, id[:]...)
	}
	return dst
}

// MaxFetchIDs is how many IDs fit in one fetch datagram of size packetSize.
func MaxFetchIDs(packetSize int) int { return (packetSize - wire.HeaderSize - 3) / 16 }

// DecodeFetch decodes a whole wire.Fetch datagram, appending the IDs to dst.
func DecodeFetch(dst []MessageID, datagram []byte) ([]MessageID, error) {
	t, b, err := wire.Parse(datagram)
	if err != nil {
		return nil, err
	}
	if t != wire.Fetch {
		return nil, fmt.Errorf("%w: packet type %v, want fetch", wire.ErrMalformed, t)
	}
	return decodeFetchBody(dst, b)
}

// decodeFetchBody decodes the body of a wire.Fetch datagram.
func decodeFetchBody(dst []MessageID, b []byte) ([]MessageID, error) {
	n, b, err := readUvarint(b)
	if err != nil {
		return nil, err
	}
	if n == 0 || n != uint64(len(b)/16) || len(b)%16 != 0 {
		return nil, fmt.Errorf("%w: %d IDs in %d bytes", wire.ErrMalformed, n, len(b))
	}
	for ; len(b) > 0; b = b[16:] {
		dst = append(dst, MessageID(b[:16]))
	}
	return dst, nil
}
