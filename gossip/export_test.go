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
