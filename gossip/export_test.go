package gossip

import "github.com/hearsay-io/hearsay/wire"

// Internals that the external tests (package gossip_test, which drive cores
// with gossiptest) need to play a peer by hand. They exist in test builds
// only.

// AppendMessage appends the encoding of one message to a messages datagram.
var AppendMessage = appendMessage

// RandomPayload returns n bytes drawn from a PCG seeded with seed.
var RandomPayload = randomPayload

// ChunkSeqs returns the sequence numbers of the chunks in a messages
// datagram (nil for any other datagram).
func ChunkSeqs(d []byte) []uint64 {
	typ, b, err := wire.Parse(d)
	if err != nil || typ != wire.Messages {
		return nil
	}
	var seqs []uint64
	for len(b) > 0 {
		wm, rest, err := decodeMessage(b)
		if err != nil {
			return nil
		}
		if wm.chunk.count != 0 {
			seqs = append(seqs, wm.seq)
		}
		b = rest
	}
	return seqs
}

// AppendStatement appends the encoding of a statement signed with key.
var AppendStatement = appendStatement

// RangeHash is the hash a statement signs over the IDs of its range.
func RangeHash(ids []MessageID) []byte {
	var h rangeHasher
	h.reset()
	for i := range ids {
		h.add(&ids[i])
	}
	var sum [32]byte
	h.sum(&sum)
	return sum[:]
}

// Statements counts the statements in a messages datagram.
func Statements(d []byte) int {
	typ, b, err := wire.Parse(d)
	if err != nil || typ != wire.Messages {
		return 0
	}
	n := 0
	for len(b) > 0 {
		wm, rest, err := decodeMessage(b)
		if err != nil {
			return 0
		}
		if wm.isStatement() {
			n++
		}
		b = rest
	}
	return n
}

// PredatesStatements makes a core play a node built before statements: it
// drops a MESSAGES datagram holding one as malformed, as such a node does.
func PredatesStatements(c *Config) { c.predatesStatements = true }
