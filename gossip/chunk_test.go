package gossip

import (
	"bytes"
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/msglog"
	"github.com/hearsay-io/hearsay/wire"
)

func randomPayload(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// chunkSet is a hand-made large message, for tests that play a hostile or
// buggy peer.
type chunkSet struct {
	origin  NodeID
	first   uint64
	created int64
	topic   string
	payload []byte
	hdr     chunkHeader
}

func newChunkSet(origin NodeID, first uint64, created int64, topic string, payload []byte, count int) *chunkSet {
	return &chunkSet{origin: origin, first: first, created: created, topic: topic, payload: payload,
		hdr: chunkHeader{whole: ComputeMessageID(origin, first, created, topic, payload), count: count, total: len(payload)}}
}

// enc encodes chunk i, after tweak has had its way with the header.
func (s *chunkSet) enc(i int, tweak func(h *chunkHeader, payload *[]byte)) []byte {
	h := s.hdr
	h.index = i
	p := s.payload[h.offset() : h.offset()+h.length()]
	if tweak != nil {
		tweak(&h, &p)
	}
	return appendChunk(nil, s.origin, s.first+uint64(i), s.created, s.topic, &h, p)
}

func (s *chunkSet) datagram(i int, tweak func(h *chunkHeader, payload *[]byte)) []byte {
	return append(wire.AppendHeader(nil, wire.Messages), s.enc(i, tweak)...)
}

func TestChunkHeaderLayout(t *testing.T) {
	var o NodeID
	for i := range o {
		o[i] = byte(i)
	}
	s := newChunkSet(o, 42, 1_700_000_000_123, "a.b", bytes.Repeat([]byte{0xee}, 130), 2)
	got := s.enc(1, nil)
	want := []byte{0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
		0x2b,                               // seq 43: chunk 1 of a message whose first seq is 42
		0xfb, 0xd0, 0x95, 0xff, 0xbc, 0x31, // created
		0x00, 0x01, // escape, kind chunk
		0x03, 0x61, 0x2e, 0x62} // topic "a.b"
	want = append(want, s.hdr.whole[:]...)
	want = append(want, 0x02, 0x01, 0x82, 0x01, 0x41) // count 2, index 1, total 130, payload length 65
	want = append(want, bytes.Repeat([]byte{0xee}, 65)...)
	require.Equal(t, want, got)
	require.Equal(t, "7e4b628e3bc0a66c44afb3d374f00ee3", s.hdr.whole.String(), "the example in docs/protocol.md")
	require.Equal(t, len(want), chunkEncodedSize(43, 1_700_000_000_123, 3, &chunkHeader{count: 2, index: 1, total: 130}))
	wm, rest, err := decodeMessage(got)
	require.NoError(t, err)
	require.Empty(t, rest)
	require.Equal(t, chunkHeader{whole: s.hdr.whole, count: 2, index: 1, total: 130}, wm.chunk)
	require.Equal(t, "a.b", string(wm.topic))
	// The chunk's ID covers its whole encoding, under its own domain.
	require.Equal(t, hashChunkID(got), wm.id(new(idHasher)))
	require.NotEqual(t, s.hdr.whole, hashChunkID(s.enc(0, nil)))
	_, err = ParseMessage(got)
	require.ErrorIs(t, err, ErrChunk)
}

func TestHostileChunkHeadersAreCounted(t *testing.T) {
	now := t0
	created := now.UnixMilli()
	s := newChunkSet(testOrigin(5), 1000, created, "evil", randomPayload(5, 3000), 3)
	malformed := map[string][]byte{
		"count 0":         s.datagram(0, func(h *chunkHeader, _ *[]byte) { h.count = 0 }),
		"count 1":         s.datagram(0, func(h *chunkHeader, _ *[]byte) { h.count = 1 }),
		"index = count":   s.datagram(0, func(h *chunkHeader, _ *[]byte) { h.index = 3 }),
		"index > seq":     append(wire.AppendHeader(nil, wire.Messages), appendChunk(nil, s.origin, 1, created, "evil", &chunkHeader{count: 3, index: 2, total: 3000}, make([]byte, 1000))...),
		"last seq 2^64-1": append(wire.AppendHeader(nil, wire.Messages), appendChunk(nil, s.origin, math.MaxUint64-1, created, "evil", &chunkHeader{count: 3, index: 1, total: 3000}, make([]byte, 1000))...),
		"absurd total":    s.datagram(0, func(h *chunkHeader, _ *[]byte) { h.total = MaxChunkedSize + 1 }),
		"tiny chunks":     s.datagram(0, func(h *chunkHeader, p *[]byte) { h.count, h.total, *p = 3, 150, (*p)[:50] }),
		"empty last":      s.datagram(0, func(h *chunkHeader, p *[]byte) { h.count, h.total, *p = 3, 200, (*p)[:100] }),
		"more than total": s.datagram(0, func(h *chunkHeader, _ *[]byte) { h.count = 3001 }),
		"short payload":   s.datagram(1, func(_ *chunkHeader, p *[]byte) { *p = (*p)[1:] }),
		"unknown kind":    func() []byte { d := s.datagram(0, nil); d[wire.HeaderSize+16+2+6+1] = 2; return d }(),
		"empty topic":     func() []byte { d := s.datagram(0, nil); d[wire.HeaderSize+16+2+6+2] = 0; return d }(),
		"no kind":         append(wire.AppendHeader(nil, wire.Messages), append(s.origin[:], 1, 1, 0)...),
	}
	c, err := New(Config{ID: testOrigin(1), Peers: fixedPeers{}, MaxMessageSize: 5000, MaxPartialBytes: 14_096})
	require.NoError(t, err)
	for name, d := range malformed {
		before := c.Stats().Dropped[DropMalformed]
		c.Handle(now, addr(1), d)
		require.Equal(t, before+1, c.Stats().Dropped[DropMalformed], name)
	}
	require.Zero(t, c.Stats().PartialMessages)

	// Structurally fine, but disagreeing with the chunks already held.
	c.Handle(now, addr(1), s.datagram(0, nil))
	require.Equal(t, 1, c.Stats().PartialMessages)
	for name, d := range map[string][]byte{
		"other total":          s.datagram(1, func(h *chunkHeader, p *[]byte) { h.total = 2998 }),
		"other count":          s.datagram(1, func(h *chunkHeader, p *[]byte) { h.count, *p = 4, (*p)[:750] }),
		"other created":        append(wire.AppendHeader(nil, wire.Messages), appendChunk(nil, s.origin, s.first+1, created-1, s.topic, &chunkHeader{whole: s.hdr.whole, count: 3, index: 1, total: 3000}, s.payload[1000:2000])...),
		"other topic":          append(wire.AppendHeader(nil, wire.Messages), appendChunk(nil, s.origin, s.first+1, created, "evil2", &chunkHeader{whole: s.hdr.whole, count: 3, index: 1, total: 3000}, s.payload[1000:2000])...),
		"index past its count": append(wire.AppendHeader(nil, wire.Messages), appendChunk(nil, s.origin, s.first+3, created, s.topic, &chunkHeader{whole: s.hdr.whole, count: 4, index: 3, total: 3000}, s.payload[2250:])...),
		"other origin":         append(wire.AppendHeader(nil, wire.Messages), appendChunk(nil, testOrigin(6), s.first+1, created, s.topic, &chunkHeader{whole: s.hdr.whole, count: 3, index: 1, total: 3000}, s.payload[1000:2000])...),
		"slot conflict":        s.datagram(0, func(_ *chunkHeader, p *[]byte) { *p = bytes.Repeat([]byte{1}, len(*p)) }),
	} {
		before := c.Stats().Dropped[DropChunkInconsistent]
		c.Handle(now, addr(1), d)
		require.Equal(t, before+1, c.Stats().Dropped[DropChunkInconsistent], name)
	}
	// The genuine chunks still complete it.
	c.Handle(now, addr(1), s.datagram(2, nil))
	c.Handle(now, addr(1), s.datagram(1, nil))
	rd := c.Ready()
	require.Len(t, rd.Messages, 1)
	require.Equal(t, s.payload, rd.Messages[0].Payload)
	require.Equal(t, s.hdr.whole, rd.Messages[0].ID)
	require.Equal(t, s.first, rd.Messages[0].Seq)
	require.Equal(t, uint64(3), c.Stats().Chunks)

	// Chunks whose claimed ID does not match what they carry: discarded.
	forged := newChunkSet(testOrigin(7), 50, created, "evil", randomPayload(7, 3000), 3)
	forged.hdr.whole[0] ^= 1
	for i := 0; i < 3; i++ {
		c.Handle(now, addr(1), forged.datagram(i, nil))
	}
	require.Empty(t, c.Ready().Messages)
	require.Equal(t, uint64(1), c.Stats().Dropped[DropChunkMismatch])
	require.Zero(t, c.Stats().PartialMessages)

	// Larger than this node's MaxMessageSize: never reassembled, not offered.
	big := newChunkSet(testOrigin(8), 50, created, "big", randomPayload(8, 6000), 5)
	c.Handle(now, addr(1), big.datagram(0, nil))
	require.Equal(t, uint64(1), c.Stats().Dropped[DropTooLarge])
	require.Zero(t, c.Stats().PartialMessages)

	// The memory bound: 14,096 bytes hold four partial 3,000-byte messages
	// (3,000 + 3 × 24 + 256 each), not five; the fifth is refused until room
	// frees, and then gets in.
	var sets []*chunkSet
	for i := 0; i < 5; i++ {
		set := newChunkSet(testOrigin(byte(20+i)), 10, created, "mem", randomPayload(uint64(20+i), 3000), 3)
		sets = append(sets, set)
		c.Handle(now, addr(1), set.datagram(0, nil))
	}
	st := c.Stats()
	require.Equal(t, 4, st.PartialMessages)
	require.Equal(t, 4*(3000+3*24+256), st.PartialBytes)
	require.Equal(t, uint64(1), st.Dropped[DropPartialFull])
	c.Handle(now, addr(1), sets[0].datagram(1, nil))
	c.Handle(now, addr(1), sets[0].datagram(2, nil))
	require.Len(t, c.Ready().Messages, 1)
	c.Handle(now, addr(1), sets[4].datagram(0, nil))
	require.Equal(t, 4, c.Stats().PartialMessages)

	// The timeout: nothing more arrives, and every partial is given up.
	c.Tick(now)
	c.Tick(now.Add(c.Config().ReassemblyTimeout + time.Second))
	st = c.Stats()
	require.Zero(t, st.PartialMessages)
	require.Zero(t, st.PartialBytes)
	require.Equal(t, uint64(4), st.Dropped[DropReassemblyTimeout])
}

func TestLargePushBackpressure(t *testing.T) {
	c, err := New(Config{ID: testOrigin(1), Peers: fixedPeers{}, MaxPacketSize: 512, CacheMessages: 30, CacheRounds: 2})
	require.NoError(t, err)
	for i := 0; i < 20; i++ {
		_, err := c.Push(t0, "a", []byte{byte(i)})
		require.NoError(t, err)
	}
	c.Ready()
	before := c.Stats()
	// 6,000 bytes take 14 chunks of 450 bytes at this packet size, which do
	// not fit beside the 20 messages: none is taken.
	_, err = c.Push(t0, "a", make([]byte, 15*400))
	require.ErrorIs(t, err, ErrBackpressure)
	after := c.Stats()
	require.Equal(t, before.CacheMessages, after.CacheMessages)
	require.Equal(t, before.CacheBytes, after.CacheBytes)
	require.Zero(t, after.Chunks)
	require.Equal(t, uint64(1), after.Backpressure)
	require.Empty(t, c.Ready().Messages)
	// Nor did it use sequence numbers: the next message follows the 20th.
	m, err := c.Push(t0, "a", []byte("next"))
	require.NoError(t, err)
	require.Equal(t, uint64(t0.UnixMicro())+20, m.Seq)
	// More chunks than the cache could ever hold: too large, not backpressure.
	_, err = c.Push(t0, "a", make([]byte, 40*400))
	require.ErrorIs(t, err, ErrMessageTooLarge)
	// Once the cache drains, it fits, and the publisher delivers it to itself.
	for now := t0; now.Before(t0.Add(3 * time.Second)); now = c.NextTick() {
		c.Tick(now)
	}
	c.Ready()
	require.Zero(t, c.Stats().CacheMessages)
	payload := randomPayload(9, 15*400)
	m, err = c.Push(t0.Add(3*time.Second), "a", payload)
	require.NoError(t, err)
	rd := c.Ready()
	require.Len(t, rd.Messages, 1)
	require.Equal(t, m, rd.Messages[0])
	require.Equal(t, payload, m.Payload)
	require.Equal(t, uint64(14), c.Stats().Chunks)
	require.Equal(t, ComputeMessageID(testOrigin(1), m.Seq, m.Created.UnixMilli(), "a", payload), m.ID)
	// The caller's buffer is not kept.
	payload[0] ^= 1
	require.NotEqual(t, payload[0], m.Payload[0])
}

// The Reassembler turns the log, in order, back into whole messages; a large
// one takes the position of its last logged chunk.
func TestReassemblerReplaysTheLog(t *testing.T) {
	log := msglog.NewMemory(0)
	c, err := New(Config{ID: testOrigin(1), Peers: fixedPeers{}, Log: log, MaxPacketSize: 512})
	require.NoError(t, err)
	a := newChunkSet(testOrigin(2), 100, t0.UnixMilli(), "big", randomPayload(10, 1000), 3)
	b := newChunkSet(testOrigin(3), 100, t0.UnixMilli(), "big", randomPayload(11, 700), 2)
	small := appendMessage(wire.AppendHeader(nil, wire.Messages), testOrigin(4), 7, t0.UnixMilli(), "small", []byte("hi"))
	for _, d := range [][]byte{a.datagram(2, nil), b.datagram(0, nil), a.datagram(0, nil), small, b.datagram(1, nil), a.datagram(1, nil)} {
		c.Handle(t0, addr(1), d)
	}
	live := c.Ready().Messages
	require.Len(t, live, 3)
	r := NewReassembler(1 << 20)
	var replayed []Message
	require.NoError(t, log.ForEach(func(e msglog.Entry) bool {
		m, ok, err := r.Add(e.Data)
		require.NoError(t, err)
		if ok {
			replayed = append(replayed, m)
		}
		return true
	}))
	require.Equal(t, live, replayed, "the same messages in the same order as delivered")
	require.Equal(t, []MessageID{ComputeMessageID(testOrigin(4), 7, t0.UnixMilli(), "small", []byte("hi")), b.hdr.whole, a.hdr.whole},
		[]MessageID{replayed[0].ID, replayed[1].ID, replayed[2].ID})
	msgs, bytes := r.Partial()
	require.Zero(t, msgs)
	require.Zero(t, bytes)

	// A chunk again adds nothing; a forged one is refused; a bad ID is an error.
	_, ok, err := r.Add(a.enc(0, nil))
	require.NoError(t, err)
	require.False(t, ok)
	r2 := NewReassembler(1 << 20)
	_, _, err = r2.Add(a.enc(0, nil))
	require.NoError(t, err)
	_, _, err = r2.Add(a.enc(1, func(h *chunkHeader, _ *[]byte) { h.total++ }))
	require.ErrorIs(t, err, ErrChunkInconsistent)
	forged := newChunkSet(testOrigin(2), 1, t0.UnixMilli(), "x", randomPayload(12, 200), 2)
	forged.hdr.whole[3] ^= 0xff
	_, _, err = r2.Add(forged.enc(0, nil))
	require.NoError(t, err)
	_, _, err = r2.Add(forged.enc(1, nil))
	require.ErrorIs(t, err, ErrChunkMismatch)
	// The bound: the oldest partial gives way.
	r3 := NewReassembler(2000)
	_, _, err = r3.Add(a.enc(0, nil))
	require.NoError(t, err)
	_, _, err = r3.Add(b.enc(0, nil))
	require.NoError(t, err)
	require.Equal(t, 1, r3.Dropped())
	msgs, _ = r3.Partial()
	require.Equal(t, 1, msgs)
}

// Pushing a 1 MiB message: cutting, hashing, caching.
func BenchmarkPush1MiB(b *testing.B) {
	payload := randomPayload(1, 1<<20)
	b.ReportAllocs()
	b.SetBytes(1 << 20)
	for b.Loop() {
		c, err := New(Config{ID: testOrigin(1), Peers: fixedPeers{}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Push(t0, "bench.big", payload); err != nil {
			b.Fatal(err)
		}
	}
}

// Reassembling a 1 MiB message from its 779 chunks, one datagram each: the
// receiver's whole path (decode, hash, seen filter, cache, reassembly,
// verification).
func BenchmarkReassemble1MiB(b *testing.B) {
	pub, err := New(Config{ID: testOrigin(1), Peers: fixedPeers{}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pub.Push(t0, "bench.big", randomPayload(1, 1<<20)); err != nil {
		b.Fatal(err)
	}
	var dgs [][]byte
	for _, e := range pub.cache.origins[0].entries {
		dgs = append(dgs, append(wire.AppendHeader(nil, wire.Messages), e.enc...))
	}
	from := netip.MustParseAddrPort("127.0.0.1:7600")
	b.ReportAllocs()
	b.SetBytes(1 << 20)
	for b.Loop() {
		c, err := New(Config{ID: testOrigin(2), Peers: fixedPeers{}})
		if err != nil {
			b.Fatal(err)
		}
		for _, d := range dgs {
			c.Handle(t0, from, d)
		}
		if len(c.Ready().Messages) != 1 {
			b.Fatal("not reassembled")
		}
	}
	b.ReportMetric(float64(len(dgs)), "chunks")
}
