package gossip

import (
	"errors"
	"fmt"

	"github.com/hearsay-io/hearsay/wire"
)

// Wire format v1; docs/protocol.md describes it byte by byte. The header,
// the packet types and the varints are package wire's; the bodies of the
// gossip packets are this package's: wire_pull.go, wire_messages.go,
// wire_fetch.go and chunk.go.

// readUvarint reads a varint of a packet body, with the errors of a
// malformed or truncated body.

func readUvarint(b []byte) (uint64, []byte, error) {
	v, rest, err := wire.ReadUvarint(b)
	switch {
	case errors.Is(err, wire.ErrVarintTruncated):
		return 0, nil, wire.ErrTruncated
	case err != nil:
		return 0, nil, fmt.Errorf("%w: %w", wire.ErrMalformed, err)
	}
	return v, rest, nil
}

func uvarintLen(v uint64) int { return wire.UvarintLen(v) }
