package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/hearsay-io/hearsay/wire"
)

// Wire format v1; docs/protocol.md describes it byte by byte. The header,
// the packet types and the varints are package wire's.

// SeqRange is a half-open range [First, End) of sequence numbers.
type SeqRange struct {
	First, End uint64
}

// OriginTag is the 8-byte digest key of an origin: a hash of its NodeID.
// Digests name origins by tag to halve their size; two origins share a tag
// with odds of about n²/2^65 among n active origins, and the only cost of a
// collision is a message not offered in one answer (the next pull, or
// anti-entropy, brings it).
type OriginTag uint64

// TagOf returns the digest tag of origin.
func TagOf(origin NodeID) OriginTag {
	a := binary.BigEndian.Uint64(origin[:8])
	b := binary.BigEndian.Uint64(origin[8:])
	// Mix both halves (a splitmix64 finaliser), so that IDs that differ in
	// any byte get unrelated tags and uniform partitions.
	x := a ^ (b * 0x9e3779b97f4a7c15)
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return OriginTag(x)
}

// OriginRanges lists the sequence numbers a node holds from one origin:
// sorted, disjoint, non-adjacent ranges.
type OriginRanges struct {
	Origin OriginTag
	Ranges []SeqRange
}

// PullRequest is the body of a wire.Pull datagram: "send me what I lack".
//
// The origin space is split into 1<<PartitionBits partitions by the low
// bits of the origin tag; the request covers partition Partition only. Its
// digest lists, for every origin of that partition the requester knows, the
// sequence numbers it holds. The answer carries the cached messages of that
// partition outside those ranges, including all messages of origins the
// digest does not name.
type PullRequest struct {
	PartitionBits uint8 // 0..8
	Partition     uint8 // < 1<<PartitionBits
	Origins       []OriginRanges
}

// MaxPartitionBits bounds PullRequest.PartitionBits.
const MaxPartitionBits = 8

// covers reports whether the request's partition includes origin.
func (r *PullRequest) covers(origin OriginTag) bool {
	return partitionOf(origin, r.PartitionBits) == r.Partition
}

func partitionOf(origin OriginTag, bits uint8) uint8 {
	return uint8(origin) & byte(1<<bits-1)
}

// AppendPullRequest appends a whole wire.Pull datagram (header included).
func AppendPullRequest(dst []byte, r *PullRequest) []byte {
	dst = wire.AppendHeader(dst, wire.Pull)
	dst = append(dst, r.PartitionBits, r.Partition)
	dst = binary.AppendUvarint(dst, uint64(len(r.Origins)))
	for i := range r.Origins {
		dst = appendOriginRanges(dst, &r.Origins[i])
	}
	return dst
}

func appendOriginRanges(dst []byte, o *OriginRanges) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(o.Origin))
	dst = binary.AppendUvarint(dst, uint64(len(o.Ranges)))
	var prevEnd uint64
	for i, r := range o.Ranges {
		if i == 0 {
			dst = binary.AppendUvarint(dst, r.First)
		} else {
			dst = binary.AppendUvarint(dst, r.First-prevEnd)
		}
		dst = binary.AppendUvarint(dst, r.End-r.First)
		prevEnd = r.End
	}
	return dst
}

// originRangesSize is the encoded size of o.
func originRangesSize(o *OriginRanges) int {
	n := 8 + uvarintLen(uint64(len(o.Ranges)))
	var prevEnd uint64
	for i, r := range o.Ranges {
		if i == 0 {
			n += uvarintLen(r.First)
		} else {
			n += uvarintLen(r.First - prevEnd)
		}
		n += uvarintLen(r.End - r.First)
		prevEnd = r.End
	}
	return n
}

// DecodePullRequest decodes a whole wire.Pull datagram. It allocates at
// most in proportion to len(datagram).
func DecodePullRequest(datagram []byte) (*PullRequest, error) {
	t, body, err := wire.Parse(datagram)
	if err != nil {
		return nil, err
	}
	if t != wire.Pull {
		return nil, fmt.Errorf("%w: packet type %v, want pull", wire.ErrMalformed, t)
	}
	var d pullDecoder
	return d.decode(body)
}

// pullDecoder decodes pull requests reusing its buffers, so that the core
// answers pulls without allocating. The request it returns is valid until
// the next decode.
type pullDecoder struct {
	req    PullRequest
	ranges []SeqRange
	spans  [][2]int
}

func (d *pullDecoder) decode(b []byte) (*PullRequest, error) {
	r := &d.req
	if len(b) < 3 {
		return nil, wire.ErrTruncated
	}
	r.PartitionBits, r.Partition = b[0], b[1]
	if r.PartitionBits > MaxPartitionBits || int(r.Partition) >= 1<<r.PartitionBits {
		return nil, fmt.Errorf("%w: partition %d of 2^%d", wire.ErrMalformed, r.Partition, r.PartitionBits)
	}
	count, b, err := readUvarint(b[2:])
	if err != nil {
		return nil, err
	}
	// An origin takes at least 11 bytes: tag, range count, first, length.
	if count > uint64(len(b)/11) {
		return nil, fmt.Errorf("%w: %d origins in %d bytes", wire.ErrTruncated, count, len(b))
	}
	r.Origins = r.Origins[:0]
	d.ranges = d.ranges[:0]
	d.spans = d.spans[:0]
	for i := uint64(0); i < count; i++ {
		var o OriginRanges
		if len(b) < 8 {
			return nil, wire.ErrTruncated
		}
		o.Origin = OriginTag(binary.BigEndian.Uint64(b))
		var n uint64
		if n, b, err = readUvarint(b[8:]); err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("%w: origin %016x with no ranges", wire.ErrMalformed, uint64(o.Origin))
		}
		if n > uint64(len(b)/2) {
			return nil, fmt.Errorf("%w: %d ranges in %d bytes", wire.ErrTruncated, n, len(b))
		}
		from := len(d.ranges)
		var prevEnd uint64
		for j := uint64(0); j < n; j++ {
			var first, length uint64
			if first, b, err = readUvarint(b); err != nil {
				return nil, err
			}
			if j > 0 {
				if first == 0 {
					return nil, fmt.Errorf("%w: adjacent ranges", wire.ErrMalformed)
				}
				if prevEnd > math.MaxUint64-first {
					return nil, fmt.Errorf("%w: range overflows", wire.ErrMalformed)
				}
				first += prevEnd
			}
			if length, b, err = readUvarint(b); err != nil {
				return nil, err
			}
			if length == 0 || first > math.MaxUint64-length {
				return nil, fmt.Errorf("%w: bad range length", wire.ErrMalformed)
			}
			prevEnd = first + length
			d.ranges = append(d.ranges, SeqRange{First: first, End: prevEnd})
		}
		d.spans = append(d.spans, [2]int{from, len(d.ranges)})
		r.Origins = append(r.Origins, o)
	}
	if len(b) != 0 {
		return nil, wire.ErrTrailingBytes
	}
	// Slice the shared ranges array only now: appends may have moved it.
	for i, sp := range d.spans {
		r.Origins[i].Ranges = d.ranges[sp[0]:sp[1]:sp[1]]
	}
	return r, nil
}

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
}

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
