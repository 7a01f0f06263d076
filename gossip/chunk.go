package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/hearsay-io/hearsay/wire"
)

// Large messages travel as chunks. A chunk is an ordinary message on the
// wire as far as pulling, digests, the cache, the seen filter, the log and
// anti-entropy are concerned: it has its own origin sequence number (the
// chunks of one message take consecutive numbers, so a digest stays one
// range) and its own ID. What it adds is a chunk header that says which
// whole message it belongs to, so that a receiver can reassemble it.
// docs/protocol.md describes the bytes.

// kindChunk follows the 0x00 escape that replaces the topic length byte of a
// chunk. Other kinds are malformed in wire version 1.
const kindChunk = 0x01

// Protocol limits on chunks, checked by the decoder.
const (
	// MinChunkSize is the smallest payload a chunk other than the last may
	// carry. It bounds a message's chunk count (and so a receiver's
	// bookkeeping) to its length / 64 + 1; a publisher's chunks are always
	// larger (at least about 180 bytes at wire.MinPacketSize with a 255-byte topic).
	MinChunkSize = 64
	// MaxChunkedSize is the largest whole message the wire format allows:
	// Config.MaxMessageSize may not exceed it.
	MaxChunkedSize = 1 << 30
)

// Errors about chunks that callers may branch on.
var (
	// ErrChunk: ParseMessage was given a chunk of a large message, which is
	// not a message by itself; a Reassembler turns chunks into messages.
	ErrChunk = errors.New("gossip: a chunk of a large message")
	// ErrStatement: ParseMessage was given a statement (sign.go), which
	// signs other messages and is never delivered.
	ErrStatement = errors.New("gossip: a statement, not an application message")
	// ErrChunkInconsistent: a chunk disagrees with the other chunks of its
	// message (origin, first sequence number, creation time, topic, count,
	// total length, or another chunk with the same index).
	ErrChunkInconsistent = errors.New("gossip: chunk inconsistent with its message")
	// ErrChunkMismatch: a message's chunks reassemble to a payload whose ID
	// is not the one they claim; the message is discarded.
	ErrChunkMismatch = errors.New("gossip: reassembled message does not match its ID")
)

// chunkHeader is what a chunk carries besides an ordinary message's fields.
// count == 0 means the message is not a chunk.
type chunkHeader struct {
	whole MessageID // the whole message's ID, as the chunk claims it; verified on reassembly
	count int       // chunks in the message, >= 2
	index int       // this chunk's position, < count; its seq is the first seq + index
	total int       // the whole payload's length
}

// size is the payload length of every chunk but the last.
func (h *chunkHeader) size() int { return (h.total + h.count - 1) / h.count }

// offset is where the chunk's payload goes in the whole payload.
func (h *chunkHeader) offset() int { return h.index * h.size() }

// length is the chunk's payload length: the whole payload is cut into count
// pieces of size() bytes, the last taking the rest.
func (h *chunkHeader) length() int {
	if h.index < h.count-1 {
		return h.size()
	}
	return h.total - (h.count-1)*h.size()
}

// decodeChunkHeader decodes the header that follows a chunk's topic, and
// checks it against the chunk's sequence number seq.
func decodeChunkHeader(b []byte, seq uint64) (chunkHeader, []byte, error) {
	var h chunkHeader
	if len(b) < 16 {
		return h, nil, wire.ErrTruncated
	}
	copy(h.whole[:], b[:16])
	b = b[16:]
	var count, index, total uint64
	var err error
	if count, b, err = readUvarint(b); err != nil {
		return h, nil, err
	}
	if index, b, err = readUvarint(b); err != nil {
		return h, nil, err
	}
	if total, b, err = readUvarint(b); err != nil {
		return h, nil, err
	}
	switch {
	case count < 2 || index >= count:
		return h, nil, fmt.Errorf("%w: chunk %d of %d", wire.ErrMalformed, index, count)
	case total > MaxChunkedSize || count > total:
		return h, nil, fmt.Errorf("%w: %d chunks of a %d-byte message", wire.ErrMalformed, count, total)
	case seq == math.MaxUint64 || index > seq || count-1-index > math.MaxUint64-1-seq:
		// The first chunk's seq would be negative, or the last one's 2^64-1.
		return h, nil, fmt.Errorf("%w: chunk %d of %d at sequence number %d", wire.ErrMalformed, index, count, seq)
	}
	size := (total + count - 1) / count
	if size < MinChunkSize || (count-1)*size >= total {
		// Chunks too small to be a publisher's, or an empty last chunk.
		return h, nil, fmt.Errorf("%w: %d chunks of a %d-byte message", wire.ErrMalformed, count, total)
	}
	h.count, h.index, h.total = int(count), int(index), int(total)
	return h, b, nil
}

// appendChunk appends the encoding of one chunk (no datagram header).
func appendChunk(dst []byte, origin NodeID, seq uint64, createdMillis int64, topic string, h *chunkHeader, payload []byte) []byte {
	dst = append(dst, origin[:]...)
	dst = binary.AppendUvarint(dst, seq)
	dst = binary.AppendUvarint(dst, uint64(createdMillis))
	dst = append(dst, 0, kindChunk, byte(len(topic)))
	dst = append(dst, topic...)
	dst = append(dst, h.whole[:]...)
	dst = binary.AppendUvarint(dst, uint64(h.count))
	dst = binary.AppendUvarint(dst, uint64(h.index))
	dst = binary.AppendUvarint(dst, uint64(h.total))
	dst = binary.AppendUvarint(dst, uint64(len(payload)))
	return append(dst, payload...)
}

// chunkEncodedSize is the size of a chunk's encoding.
func chunkEncodedSize(seq uint64, createdMillis int64, topicLen int, h *chunkHeader) int {
	n := h.length()
	return 16 + uvarintLen(seq) + uvarintLen(uint64(createdMillis)) + 3 + topicLen + 16 +
		uvarintLen(uint64(h.count)) + uvarintLen(uint64(h.index)) + uvarintLen(uint64(h.total)) +
		uvarintLen(uint64(n)) + n
}

// chunkCapacity is the payload a chunk can carry in a datagram of
// packetSize bytes, for a message of total bytes starting at seq: every
// chunk's fields are counted at the largest size they can take, so that one
// capacity serves all the message's chunks.
func chunkCapacity(packetSize int, seq uint64, createdMillis int64, topicLen, total int) int {
	t := uint64(total)
	overhead := 16 + uvarintLen(seq+t) + uvarintLen(uint64(createdMillis)) + 3 + topicLen + 16 +
		3*uvarintLen(t) + uvarintLen(uint64(packetSize))
	return packetSize - wire.HeaderSize - overhead
}

// chunkDomain separates chunk IDs from whole-message IDs.
const chunkDomain = "hearsay/chunk/v1"

// sumChunk computes a chunk's ID: over its whole encoding, which holds
// every field once (varints are minimal, so the encoding is unique).
func (x *idHasher) sumChunk(raw []byte) MessageID { return x.sumEncoding(chunkDomain, raw) }

// sumEncoding computes the ID of an encoding under domain: the first 16
// bytes of SHA-256(domain || raw).
func (x *idHasher) sumEncoding(domain string, raw []byte) MessageID {
	if x.h == nil {
		x.init()
	}
	x.h.Reset()
	x.h.Write([]byte(domain))
	x.h.Write(raw)
	var id MessageID
	copy(id[:], x.h.Sum(x.out[:0]))
	return id
}

// hashChunkID is sumChunk with a pooled hasher.
func hashChunkID(raw []byte) MessageID {
	x := hashers.Get().(*idHasher)
	id := x.sumChunk(raw)
	hashers.Put(x)
	return id
}

// id computes the ID of a decoded message or chunk, with x.
func (wm *wireMessage) id(x *idHasher) MessageID {
	if wm.isStatement() {
		return x.sumStatementID(wm.raw)
	}
	if wm.chunk.count != 0 {
		return x.sumChunk(wm.raw)
	}
	return x.sum(wm.origin, wm.seq, wm.created, wm.topic, wm.payload)
}
