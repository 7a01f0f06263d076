package gossip

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/wire"
)

// fixedPeers samples from a fixed list.
type fixedPeers []netip.AddrPort

func (p fixedPeers) SamplePeers(rng *rand.Rand, n int, dst []netip.AddrPort) []netip.AddrPort {
	perm := rng.Perm(len(p))
	for i := 0; i < n && i < len(perm); i++ {
		dst = append(dst, p[perm[i]])
	}
	return dst
}

var t0 = time.Unix(1_700_000_000, 0)

func addr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(i + 1)}), 7600)
}

// newTestCore makes core i of n, whose peers are all the others.
func newTestCore(t *testing.T, i, n int) *Core {
	t.Helper()
	var peers fixedPeers
	for j := 0; j < n; j++ {
		if j != i {
			peers = append(peers, addr(j))
		}
	}
	c, err := New(Config{ID: testOrigin(byte(16 * (i + 1))), Peers: peers})
	require.NoError(t, err)
	return c
}

func TestDigestPartitionsManyOrigins(t *testing.T) {
	// 300 origins do not fit in one 512-byte pull: the digest is split.
	const origins = 300
	var peers fixedPeers = []netip.AddrPort{addr(1)}
	a, err := New(Config{ID: testOrigin(1), Peers: peers, MaxPacketSize: 512, CacheRounds: 100})
	require.NoError(t, err)
	b, err := New(Config{ID: testOrigin(2), Peers: fixedPeers{addr(0)}, MaxPacketSize: 512, CacheRounds: 100})
	require.NoError(t, err)
	now := t0
	// Feed both the same 300 messages, one per origin.
	for i := 0; i < origins; i++ {
		var o NodeID
		o[0], o[1], o[15] = byte(i), byte(i>>8), byte(i*7)
		dg := appendMessage(wire.AppendHeader(nil, wire.Messages), o, 1, now.UnixMilli(), "x", []byte("p"))
		a.Handle(now, addr(9), dg)
		b.Handle(now, addr(9), dg)
	}
	a.Ready()
	b.Ready()
	require.Equal(t, uint64(origins), a.Stats().Delivered)
	a.Tick(now)
	now = a.NextTick()
	a.Tick(now)
	rd := a.Ready()
	require.Greater(t, len(rd.Datagrams), 1, "the digest was split")
	total := 0
	for _, d := range rd.Datagrams {
		require.LessOrEqual(t, len(d.Data), 512)
		req, err := DecodePullRequest(d.Data)
		require.NoError(t, err)
		total += len(req.Origins)
		b.Handle(now, addr(0), d.Data)
	}
	require.Equal(t, origins, total, "every origin is listed in some partition")
	require.Empty(t, b.Ready().Datagrams, "b sends nothing: a holds all it has")
}

// A MORE from a peer this node did not pull, or beyond the pulls again
// allowed per round, is ignored; a MORE with a body is malformed.
func TestMoreFromAPeerNotPulledIsIgnored(t *testing.T) {
	c := newTestCore(t, 0, 3)
	more := wire.AppendHeader(nil, wire.More)
	c.Handle(t0, addr(7), more)
	require.Empty(t, c.Ready().Datagrams)
	require.Equal(t, uint64(1), c.Stats().MoresIgnored)
	c.Handle(t0, addr(1), append(more, 0))
	require.Equal(t, uint64(1), c.Stats().Dropped[DropMalformed])

	c.Tick(t0)
	c.Tick(c.NextTick()) // the first round: its peers are pulled
	c.Ready()
	peer := c.roundPeers[0]
	for i := 0; i < maxRepullsPerRound+3; i++ {
		c.Handle(t0, peer, more)
	}
	pulls := 0
	for _, d := range c.Ready().Datagrams {
		if typ, _, _ := wire.Parse(d.Data); typ == wire.Pull && d.To == peer {
			pulls++
		}
	}
	require.Equal(t, maxRepullsPerRound, pulls)
	require.Equal(t, uint64(4), c.Stats().MoresIgnored)
}

func TestMessageTooLarge(t *testing.T) {
	c, err := New(Config{ID: testOrigin(1), Peers: fixedPeers{}, MaxPacketSize: 512, MaxMessageSize: 4000})
	require.NoError(t, err)
	_, err = c.Push(t0, "a", make([]byte, 4001))
	require.ErrorIs(t, err, ErrMessageTooLarge)
	// The largest payload that fits in one datagram travels as one message,
	// byte for byte as before chunking existed.
	seq := uint64(t0.UnixMicro())
	fit := 512 - wire.HeaderSize - EncodedMessageSize(seq, t0.UnixMilli(), 1, 0) - 1
	for EncodedMessageSize(seq, t0.UnixMilli(), 1, fit+1)+wire.HeaderSize <= 512 {
		fit++
	}
	payload := bytes.Repeat([]byte{7}, fit)
	m, err := c.Push(t0, "a", payload)
	require.NoError(t, err)
	require.Equal(t, ComputeMessageID(testOrigin(1), seq, t0.UnixMilli(), "a", payload), m.ID)
	require.Equal(t, appendMessage(nil, testOrigin(1), seq, t0.UnixMilli(), "a", payload), c.cache.origins[0].entries[0].enc)
	require.Zero(t, c.Stats().Chunks)
	// One byte more is cut in two chunks.
	_, err = c.Push(t0, "a", make([]byte, fit+1))
	require.NoError(t, err)
	require.Equal(t, uint64(2), c.Stats().Chunks)
	require.Equal(t, 3, c.Stats().CacheMessages)
	_, err = c.Push(t0, "bad topic", nil)
	require.ErrorIs(t, err, ErrInvalidTopic)
}

func TestAgeLimits(t *testing.T) {
	c, err := New(Config{ID: testOrigin(1), Peers: fixedPeers{}})
	require.NoError(t, err)
	old := appendMessage(wire.AppendHeader(nil, wire.Messages), testOrigin(2), 1, t0.Add(-11*time.Minute).UnixMilli(), "a", nil)
	future := appendMessage(wire.AppendHeader(nil, wire.Messages), testOrigin(2), 2, t0.Add(time.Minute).UnixMilli(), "a", nil)
	fresh := appendMessage(wire.AppendHeader(nil, wire.Messages), testOrigin(2), 3, t0.Add(-9*time.Minute).UnixMilli(), "a", nil)
	c.Handle(t0, addr(1), old)
	c.Handle(t0, addr(1), future)
	c.Handle(t0, addr(1), fresh)
	s := c.Stats()
	require.Equal(t, uint64(1), s.Dropped[DropTooOld])
	require.Equal(t, uint64(1), s.Dropped[DropFromFuture])
	require.Equal(t, uint64(1), s.Delivered)
	require.Len(t, c.Ready().Messages, 1)
	// The future message is accepted once the clocks agree.
	c.Handle(t0.Add(time.Minute), addr(1), future)
	require.Equal(t, uint64(2), c.Stats().Delivered)
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no id":         {Peers: fixedPeers{}},
		"no peers":      {ID: testOrigin(1)},
		"packet small":  {ID: testOrigin(1), Peers: fixedPeers{}, MaxPacketSize: 100},
		"packet large":  {ID: testOrigin(1), Peers: fixedPeers{}, MaxPacketSize: 70000},
		"fanout":        {ID: testOrigin(1), Peers: fixedPeers{}, Fanout: -1},
		"answer budget": {ID: testOrigin(1), Peers: fixedPeers{}, MaxAnswerBytes: 10},
		"message size":  {ID: testOrigin(1), Peers: fixedPeers{}, MaxMessageSize: MaxChunkedSize + 1},
		"partial bytes": {ID: testOrigin(1), Peers: fixedPeers{}, MaxMessageSize: 1 << 20, MaxPartialBytes: 2 << 20},
		"reassembly":    {ID: testOrigin(1), Peers: fixedPeers{}, ReassemblyTimeout: 11 * time.Minute},
	} {
		_, err := New(cfg)
		require.Error(t, err, name)
	}
	d := DefaultConfig(testOrigin(1), fixedPeers{})
	require.Equal(t, 3, d.Fanout)
	require.Equal(t, 200*time.Millisecond, d.Interval)
	require.Equal(t, 1400, d.MaxPacketSize)
	require.Equal(t, 10*time.Minute, d.MaxAge)
	require.Equal(t, 1<<20, d.MaxMessageSize)
	require.Equal(t, 32<<20, d.MaxPartialBytes)
	require.Equal(t, 2*time.Minute, d.ReassemblyTimeout)
	short := Config{ID: testOrigin(1), Peers: fixedPeers{}, MaxAge: time.Minute, MaxMessageSize: 64 << 20}
	short.setDefaults()
	require.Equal(t, time.Minute, short.ReassemblyTimeout, "never past MaxAge")
	require.Equal(t, 128<<20+4096, short.MaxPartialBytes, "room for two of the largest messages")
}

func TestHoldingsRanges(t *testing.T) {
	h := holdings{maxRanges: 3}
	o := testOrigin(1)
	for _, s := range []uint64{5, 7, 6, 1, 2, 10} {
		h.add(o, s, 1)
	}
	require.Equal(t, []SeqRange{{1, 3}, {5, 8}, {10, 11}}, h.find(o).ranges)
	require.True(t, h.contains(o, 6))
	require.False(t, h.contains(o, 4))
	h.add(o, 20, 2) // a fourth range: the oldest gap (3..4) is given up
	require.Equal(t, []SeqRange{{1, 8}, {10, 11}, {20, 21}}, h.find(o).ranges)
	h.add(o, 3, 3)
	require.Equal(t, []SeqRange{{1, 8}, {10, 11}, {20, 21}}, h.find(o).ranges)
	h.add(testOrigin(2), 1, 9)
	h.expire(5)
	require.Nil(t, h.find(o))
	require.NotNil(t, h.find(testOrigin(2)))
	require.True(t, h.contains(testOrigin(2), 1))
}

func FuzzCoreHandle(f *testing.F) {
	f.Add(appendMessage(wire.AppendHeader(nil, wire.Messages), testOrigin(1), 1, t0.UnixMilli(), "a", []byte("x")))
	f.Add(AppendPullRequest(nil, &PullRequest{Origins: []OriginRanges{{Origin: TagOf(testOrigin(1)), Ranges: []SeqRange{{0, 1}}}}}))
	f.Add([]byte{'H', 'S', 1, 1, 0, 0, 0})
	// The core starts with chunk 0 of this message: the others complete it.
	large := newChunkSet(testOrigin(2), 100, t0.UnixMilli(), "large", bytes.Repeat([]byte{3}, 400), 3)
	f.Add(append(large.datagram(1, nil), large.enc(2, nil)...))
	f.Add(large.datagram(1, func(h *chunkHeader, _ *[]byte) { h.total++ }))
	f.Add(large.datagram(2, func(h *chunkHeader, _ *[]byte) { h.whole[0]++ }))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := New(Config{ID: testOrigin(9), Peers: fixedPeers{addr(1)}, MaxPacketSize: 512, MaxMessageSize: 1 << 16})
		require.NoError(t, err)
		_, err = c.Push(t0, "seed", []byte("cached"))
		require.NoError(t, err)
		c.Handle(t0, addr(1), large.datagram(0, nil))
		c.Ready()
		c.Handle(t0, addr(1), b)
		rd := c.Ready()
		for _, d := range rd.Datagrams {
			require.LessOrEqual(t, len(d.Data), 512)
		}
		for _, m := range rd.Messages {
			// Whatever is delivered, whole or not, is what its ID says.
			require.Equal(t, ComputeMessageID(m.Origin, m.Seq, m.Created.UnixMilli(), m.Topic, m.Payload), m.ID)
		}
		require.LessOrEqual(t, c.Stats().PartialBytes, c.Config().MaxPartialBytes)
	})
}

// FuzzReassembler: entries (each a 2-byte length and its bytes) fed to a
// Reassembler never panic, never exceed its bound, and only give out
// messages whose payload matches their ID.
func FuzzReassembler(f *testing.F) {
	entries := func(encs ...[]byte) []byte {
		var b []byte
		for _, e := range encs {
			b = binary.BigEndian.AppendUint16(b, uint16(len(e)))
			b = append(b, e...)
		}
		return b
	}
	s := newChunkSet(testOrigin(2), 100, t0.UnixMilli(), "large", bytes.Repeat([]byte{3}, 400), 3)
	f.Add(entries(s.enc(2, nil), appendMessage(nil, testOrigin(1), 1, 1, "a", nil), s.enc(0, nil), s.enc(1, nil)))
	f.Add(entries(s.enc(0, nil), s.enc(1, func(h *chunkHeader, _ *[]byte) { h.total++ })))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReassembler(4096)
		for len(b) >= 2 {
			n := min(int(binary.BigEndian.Uint16(b)), len(b)-2)
			enc := b[2 : 2+n]
			b = b[2+n:]
			m, ok, err := r.Add(enc)
			if ok {
				require.NoError(t, err)
				require.Equal(t, ComputeMessageID(m.Origin, m.Seq, m.Created.UnixMilli(), m.Topic, m.Payload), m.ID)
			}
			_, used := r.Partial()
			require.LessOrEqual(t, used, 4096)
		}
	})
}
