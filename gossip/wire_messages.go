package gossip

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/hearsay-io/hearsay/wire"
)

// The messages datagram and the encoding of one message, as it is sent,
// cached and logged (docs/protocol.md, "MESSAGES"; chunks are
// chunk.go's).

// wireMessage is a message as it sits in a datagram: its byte fields alias
// the datagram.
type wireMessage struct {
	origin  NodeID
	seq     uint64
	created int64 // unix milliseconds
	topic   []byte
	payload []byte
	raw     []byte // the whole encoded message
	topicAt int    // offset of topic in raw
	chunk   chunkHeader
	kind    byte      // kindStatement for a statement (sign.go); 0 otherwise
	stmt    statement // when kind is kindStatement

	// Set for a message held back for its signature (pending.go): its ID,
	// computed then, and raw is a private copy the cache may keep.
	knownID MessageID
	private bool
	// validated: the application accepted it (validate.go).
	validated bool
}

// privateRaw returns raw as the cache may keep it: a copy, unless it is one.
func (wm *wireMessage) privateRaw() []byte {
	if wm.private {
		return wm.raw
	}
	return append([]byte(nil), wm.raw...)
}

// isStatement reports whether wm is a statement, which has no topic or
// payload and is never delivered.
func (wm *wireMessage) isStatement() bool { return wm.kind == kindStatement }

// appendMessage appends the encoding of one message (no header).
func appendMessage(dst []byte, origin NodeID, seq uint64, createdMillis int64, topic string, payload []byte) []byte {
	dst = append(dst, origin[:]...)
	dst = binary.AppendUvarint(dst, seq)
	dst = binary.AppendUvarint(dst, uint64(createdMillis))
	dst = append(dst, byte(len(topic)))
	dst = append(dst, topic...)
	dst = binary.AppendUvarint(dst, uint64(len(payload)))
	return append(dst, payload...)
}

// EncodedMessageSize is the size of a message's encoding in a messages datagram.
func EncodedMessageSize(seq uint64, createdMillis int64, topicLen, payloadLen int) int {
	return 16 + uvarintLen(seq) + uvarintLen(uint64(createdMillis)) + 1 + topicLen +
		uvarintLen(uint64(payloadLen)) + payloadLen
}

// decodeMessage decodes the message at the start of b and returns the rest.
func decodeMessage(b []byte) (wireMessage, []byte, error) {
	var m wireMessage
	start := b
	if len(b) < 16 {
		return m, nil, wire.ErrTruncated
	}
	copy(m.origin[:], b[:16])
	b = b[16:]
	var err error
	if m.seq, b, err = readUvarint(b); err != nil {
		return m, nil, err
	}
	var created uint64
	if created, b, err = readUvarint(b); err != nil {
		return m, nil, err
	}
	if created == 0 || created > math.MaxInt64 {
		return m, nil, fmt.Errorf("%w: creation time %d", wire.ErrMalformed, created)
	}
	m.created = int64(created)
	if len(b) < 1 {
		return m, nil, wire.ErrTruncated
	}
	tl := int(b[0])
	b = b[1:]
	chunked := tl == 0
	if chunked {
		// A topic length of 0 escapes to an extension: a chunk of a large
		// message (chunk.go). Unchunked messages never take this branch.
		if len(b) < 2 {
			return m, nil, wire.ErrTruncated
		}
		if b[0] == kindStatement || b[0] == kindKeylessStatement {
			m.kind = kindStatement
			if m.stmt, b, err = decodeStatement(b[1:], m.seq, b[0] == kindStatement); err != nil {
				return m, nil, err
			}
			m.raw = start[:len(start)-len(b)]
			return m, b, nil
		}
		if b[0] != kindChunk {
			return m, nil, fmt.Errorf("%w: message kind 0x%02x", wire.ErrMalformed, b[0])
		}
		tl = int(b[1])
		b = b[2:]
	}
	if tl == 0 || len(b) < tl {
		return m, nil, fmt.Errorf("%w: topic", wire.ErrTruncated)
	}
	m.topicAt = len(start) - len(b)
	m.topic, b = b[:tl], b[tl:]
	if chunked {
		if m.chunk, b, err = decodeChunkHeader(b, m.seq); err != nil {
			return m, nil, err
		}
	}
	var pl uint64
	if pl, b, err = readUvarint(b); err != nil {
		return m, nil, err
	}
	if pl > uint64(len(b)) {
		return m, nil, fmt.Errorf("%w: payload of %d bytes, %d left", wire.ErrTruncated, pl, len(b))
	}
	if chunked && pl != uint64(m.chunk.length()) {
		return m, nil, fmt.Errorf("%w: chunk %d of %d carries %d bytes, want %d", wire.ErrMalformed, m.chunk.index, m.chunk.count, pl, m.chunk.length())
	}
	m.payload, b = b[:pl], b[pl:]
	m.raw = start[:len(start)-len(b)]
	return m, b, nil
}

// DecodeMessages decodes a whole wire.Messages datagram into messages whose
// IDs are recomputed from their contents. Topics are validated. Payloads
// alias datagram. A chunk of a large message comes back as a Message of
// its own: the chunk's ID, sequence number and slice of the payload.
func DecodeMessages(datagram []byte) ([]Message, error) {
	t, b, err := wire.Parse(datagram)
	if err != nil {
		return nil, err
	}
	if t != wire.Messages {
		return nil, fmt.Errorf("%w: packet type %v, want messages", wire.ErrMalformed, t)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: no messages", wire.ErrMalformed)
	}
	var out []Message
	var h idHasher
	for len(b) > 0 {
		var m wireMessage
		if m, b, err = decodeMessage(b); err != nil {
			return nil, err
		}
		if m.seq == math.MaxUint64 {
			return nil, fmt.Errorf("%w: sequence number 2^64-1", wire.ErrMalformed)
		}
		if m.isStatement() {
			continue // not an application message
		}
		topic := string(m.topic)
		if err := ValidateTopic(topic); err != nil {
			return nil, fmt.Errorf("%w: %w", wire.ErrMalformed, err)
		}
		out = append(out, Message{
			ID:      m.id(&h),
			Origin:  m.origin,
			Seq:     m.seq,
			Created: timeFromMillis(m.created),
			Topic:   topic,
			Payload: m.payload,
		})
	}
	return out, nil
}

// ParseMessage decodes one message encoding, as kept in the message log.
// A chunk of a large message is not a message by itself: for one, it
// returns an error wrapping ErrChunk (a Reassembler turns chunks into
// messages).
func ParseMessage(enc []byte) (Message, error) {
	wm, rest, err := decodeMessage(enc)
	if err != nil {
		return Message{}, err
	}
	if len(rest) != 0 {
		return Message{}, wire.ErrTrailingBytes
	}
	if wm.chunk.count != 0 {
		return Message{}, fmt.Errorf("%w: %d of %d of message %v", ErrChunk, wm.chunk.index, wm.chunk.count, wm.chunk.whole)
	}
	if wm.isStatement() {
		return Message{}, fmt.Errorf("%w: covering %d messages of %v below %d", ErrStatement, wm.stmt.n, wm.origin, wm.seq)
	}
	var h idHasher
	return Message{
		ID:      h.sum(wm.origin, wm.seq, wm.created, wm.topic, wm.payload),
		Origin:  wm.origin,
		Seq:     wm.seq,
		Created: timeFromMillis(wm.created),
		Topic:   string(wm.topic),
		Payload: wm.payload,
	}, nil
}
