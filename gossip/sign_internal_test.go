package gossip

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/wire"
)

func testKey() ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
}

func testKeyOrigin() (ed25519.PrivateKey, NodeID) {
	k := testKey()
	return k, NodeIDOf(k.Public().(ed25519.PublicKey))
}

func TestStatementRoundTripAndVerify(t *testing.T) {
	key, origin := testKeyOrigin()
	hash := sha256.Sum256([]byte("ids"))
	enc := appendStatement(nil, key, origin, 1000, 1_700_000_000_000, 7, hash[:], true)
	require.Len(t, enc, 16+2+6+2+statementBodySize(7, true))
	wm, rest, err := decodeMessage(enc)
	require.NoError(t, err)
	require.Empty(t, rest)
	require.True(t, wm.isStatement())
	require.Equal(t, uint64(1000), wm.seq)
	require.Equal(t, uint64(7), wm.stmt.n)
	require.Equal(t, hash[:], wm.stmt.hash)
	require.Equal(t, enc, wm.raw)
	require.True(t, verifyStatement(&wm, wm.stmt.pub))

	// Each signed field changed, or the key of another origin: refused.
	for name, change := range map[string]func(b []byte){
		"seq":     func(b []byte) { b[16]++ },
		"created": func(b []byte) { b[19]++ },
		"n":       func(b []byte) { b[26]++ },
		"hash":    func(b []byte) { b[28]++ },
		"sig":     func(b []byte) { b[len(b)-1]++ },
		"key":     func(b []byte) { b[28+32]++ },
		"origin":  func(b []byte) { b[0]++ },
	} {
		bad := append([]byte(nil), enc...)
		change(bad)
		wm, _, err := decodeMessage(bad)
		require.NoError(t, err, name)
		require.False(t, verifyStatement(&wm, wm.stmt.pub), name)
	}
	// Another key, even a valid signature of it, does not speak for origin.
	other := ed25519.NewKeyFromSeed(append(make([]byte, 31), 1))
	forged := appendStatement(nil, other, origin, 1000, 1_700_000_000_000, 7, hash[:], true)
	wm, _, err = decodeMessage(forged)
	require.NoError(t, err)
	require.False(t, verifyStatement(&wm, wm.stmt.pub))

	_, err = ParseMessage(enc)
	require.ErrorIs(t, err, ErrStatement)
	ms, err := DecodeMessages(append(wire.AppendHeader(nil, wire.Messages), enc...))
	require.NoError(t, err)
	require.Empty(t, ms, "statements are not application messages")
	m, ok, err := NewReassembler(1 << 20).Add(enc)
	require.NoError(t, err)
	require.False(t, ok)
	require.Zero(t, m)
}

func TestStatementDecodeRejects(t *testing.T) {
	key, origin := testKeyOrigin()
	hash := make([]byte, 32)
	for _, tc := range []struct {
		name string
		seq  uint64
		n    uint64
	}{
		{"empty range", 10, 0},
		{"range below zero", 10, 11},
		{"range too long", 1 << 20, MaxStatementRange + 1},
	} {
		enc := appendStatement(nil, key, origin, tc.seq, 5, tc.n, hash, true)
		_, _, err := decodeMessage(enc)
		require.ErrorIs(t, err, wire.ErrMalformed, tc.name)
	}
	enc := appendStatement(nil, key, origin, 10, 5, 3, hash, true)
	for i := 16 + 1 + 1 + 2; i < len(enc); i++ {
		_, _, err := decodeMessage(enc[:i])
		require.Error(t, err, "truncated at %d", i)
	}
}

// FuzzDecodeStatement: whatever decodes as a statement encodes back to the
// same bytes, and verifies only if it is what the key signed.
func FuzzDecodeStatement(f *testing.F) {
	key, origin := testKeyOrigin()
	f.Add(appendStatement(nil, key, origin, 10, 5, 3, make([]byte, 32), true))
	f.Add(appendStatement(nil, key, origin, 1<<50, 1_700_000_000_000, MaxStatementRange, make([]byte, 32), true))
	f.Add(appendStatement(nil, key, origin, 10, 5, 3, make([]byte, 32), false))
	pub := key.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, b []byte) {
		wm, rest, err := decodeMessage(b)
		if err != nil || !wm.isStatement() {
			return
		}
		s := wm.stmt
		require.True(t, s.n >= 1 && s.n <= MaxStatementRange && s.n <= wm.seq)
		out := appendStatementFields(nil, wm.origin, wm.seq, wm.created, s.n, s.hash, s.pub, s.sig)
		require.Equal(t, b[:len(b)-len(rest)], out)
		if verifyStatement(&wm, wm.stmt.pub) {
			require.Equal(t, origin, wm.origin)
		}
		if s.pub == nil && verifyStatement(&wm, pub) { // keyless: with the key cached
			require.Equal(t, origin, wm.origin)
		}
	})
}

func TestHoldingsRemove(t *testing.T) {
	h := holdings{maxRanges: 4}
	o := testOrigin(1)
	for s := uint64(10); s < 20; s++ {
		h.add(o, s, 1)
	}
	h.remove(o, 15)
	require.Equal(t, []SeqRange{{10, 15}, {16, 20}}, h.find(o).ranges)
	h.remove(o, 10)
	h.remove(o, 19)
	h.remove(o, 30) // not held: nothing
	require.Equal(t, []SeqRange{{11, 15}, {16, 19}}, h.find(o).ranges)
	require.False(t, h.contains(o, 15))
	h.remove(o, 12)
	h.remove(o, 17)
	require.Equal(t, []SeqRange{{11, 12}, {13, 15}, {16, 17}, {18, 19}}, h.find(o).ranges)
	h.remove(o, 14)
	require.Equal(t, []SeqRange{{11, 12}, {13, 14}, {16, 17}, {18, 19}}, h.find(o).ranges)

	// A split past maxRanges gives up the oldest gap, as add does.
	h2 := holdings{maxRanges: 2}
	for s := uint64(1); s <= 10; s++ {
		h2.add(o, s, 1)
	}
	h2.remove(o, 3)
	h2.remove(o, 6)
	require.Equal(t, []SeqRange{{1, 6}, {7, 11}}, h2.find(o).ranges)

	// The last number of an origin removed: the origin is forgotten, and
	// the index of the others stays right.
	p := testOrigin(2)
	h.add(p, 5, 1)
	q := testOrigin(3)
	h.add(q, 7, 1)
	h.remove(p, 5)
	require.Nil(t, h.find(p))
	require.True(t, h.contains(q, 7))
	require.True(t, h.contains(o, 11))
}

func TestPenaltiesBanAndDecay(t *testing.T) {
	c, err := New(Config{ID: testOrigin(1), Peers: staticPeers{}})
	require.NoError(t, err)
	bad := netip.MustParseAddrPort("127.0.0.9:7600")
	good := netip.MustParseAddrPort("127.0.0.2:7600")
	c.round = 10
	c.penalise(netip.AddrPort{}) // local input: no one to charge
	require.Empty(t, c.Penalties())
	c.penalise(bad)
	ps := c.Penalties()
	require.Len(t, ps, 1)
	require.Equal(t, 1.0, ps[0].Score)
	require.Zero(t, ps[0].Banned)

	// Pulled from less: about one round in eight skips it.
	skipped := 0
	for range 8000 {
		if len(c.penalties.filter(c.rng, c.round, []netip.AddrPort{good, bad})) == 1 {
			skipped++
		}
	}
	require.InDelta(t, 1000, skipped, 150)

	for range 7 {
		c.penalise(bad)
	}
	ps = c.Penalties()
	require.Equal(t, uint64(8), ps[0].Offences)
	require.Equal(t, banRounds*c.cfg.Interval, ps[0].Banned)
	require.Equal(t, 1, c.TrustStats().PeersBanned)
	for range 100 {
		require.Equal(t, []netip.AddrPort{good}, c.penalties.filter(c.rng, c.round, []netip.AddrPort{good, bad}))
	}
	// The ban ends, the score halves every penaltyHalfLife rounds, and a
	// penalty that has decayed away is forgotten.
	c.round += banRounds
	require.Zero(t, c.Penalties()[0].Banned)
	require.InDelta(t, 8*0.125, c.Penalties()[0].Score, 0.01)
	c.round += 10 * penaltyHalfLife
	c.penalties.filter(c.rng, c.round, nil)
	require.Empty(t, c.Penalties())
}

type staticPeers struct{}

func (staticPeers) SamplePeers(_ sessionRand, _ int, dst []netip.AddrPort) []netip.AddrPort {
	return dst
}

// TestStatementExample checks the example of docs/protocol.md.
func TestStatementExample(t *testing.T) {
	key, origin := testKeyOrigin()
	var h rangeHasher
	h.reset()
	for _, s := range []uint64{42, 43, 44} {
		id := ComputeMessageID(origin, s, 1_700_000_000_123, "a.b", []byte("hi"))
		h.add(&id)
	}
	var sum [32]byte
	h.sum(&sum)
	enc := appendStatement(wire.AppendHeader(nil, wire.Messages), key, origin, 45, 1_700_000_000_123, 3, sum[:], true)
	want := "48530102" + "139e3940e64b5491722088d9a0d74162" + "2d" + "fbd095ffbc31" + "0002" + "03" +
		"ced2a0ff24325e066320aa997f4488ef42e3acd07728edee09b8e66ea0f08da9" +
		"3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29" +
		"0b5191469c51728ed8043f04c6d225ccd3aa017286618d5ba9478d7aa3b91bcaec1e12b289a588fd11b1682b287c15d01dc309b62e10d7ea2c63532c3eb53101"
	require.Equal(t, want, hex.EncodeToString(enc))
	require.Len(t, enc[wire.HeaderSize:], 154)
}

// FuzzSignedCoreHandle: a signing core holding messages back, and a
// verified statement waiting for its range, takes any datagram without
// panicking, and delivers only what its origin signed.
func FuzzSignedCoreHandle(f *testing.F) {
	key, origin := testKeyOrigin()
	now := t0.UnixMilli()
	var ids []MessageID
	d := wire.AppendHeader(nil, wire.Messages)
	for s := uint64(100); s < 103; s++ {
		d = appendMessage(d, origin, s, now, "a", []byte{byte(s)})
		ids = append(ids, ComputeMessageID(origin, s, now, "a", []byte{byte(s)}))
	}
	var h rangeHasher
	h.reset()
	for i := range ids {
		h.add(&ids[i])
	}
	var sum [32]byte
	h.sum(&sum)
	stmt := appendStatement(nil, key, origin, 103, now, 3, sum[:], true)
	f.Add(d)
	f.Add(append(wire.AppendHeader(nil, wire.Messages), stmt...))
	f.Add(appendMessage(wire.AppendHeader(nil, wire.Messages), origin, 101, now, "a", []byte("forged")))
	f.Add(appendStatement(wire.AppendHeader(nil, wire.Messages), testKey(), origin, 200, now, 1, make([]byte, 32), true))
	own := ed25519.NewKeyFromSeed(append(make([]byte, 31), 9))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := New(Config{ID: NodeIDOf(own.Public().(ed25519.PublicKey)), SigningKey: own, Peers: fixedPeers{addr(1)}})
		require.NoError(t, err)
		// One message of the range held back, and the statement verified.
		c.Handle(t0, addr(1), appendMessage(wire.AppendHeader(nil, wire.Messages), origin, 100, now, "a", []byte{100}))
		c.Handle(t0, addr(1), append(wire.AppendHeader(nil, wire.Messages), stmt...))
		c.Ready()
		c.Handle(t0, addr(2), b)
		c.Tick(t0.Add(time.Minute))
		for _, m := range c.Ready().Messages {
			require.Equal(t, origin, m.Origin, "only the signing origin's messages")
			require.Contains(t, ids, m.ID, "only what it signed")
		}
		require.LessOrEqual(t, c.PendingMessages(), maxPending)
	})
}

// A forger can fill only its share of what a node holds back: the genuine
// messages of the same origin, from another peer, still fit and are
// delivered.
func TestPendingBoundPerSender(t *testing.T) {
	key, origin := testKeyOrigin()
	own := ed25519.NewKeyFromSeed(append(make([]byte, 31), 9))
	c, err := New(Config{ID: NodeIDOf(own.Public().(ed25519.PublicKey)), SigningKey: own, Peers: fixedPeers{addr(1)}})
	require.NoError(t, err)
	now := t0.UnixMilli()
	forger, honest := addr(1), addr(2)
	for s := uint64(0); s < maxPendingPerSender+10; s += 4 {
		d := wire.AppendHeader(nil, wire.Messages)
		for k := s; k < s+4; k++ {
			d = appendMessage(d, origin, 1<<40+k, now, "a", nil)
		}
		c.Handle(t0, forger, d)
	}
	require.Equal(t, maxPendingPerSender, c.PendingMessages())
	require.Equal(t, uint64(12), c.Stats().Dropped[DropPendingFull])

	var ids []MessageID
	d := wire.AppendHeader(nil, wire.Messages)
	for s := uint64(100); s < 103; s++ {
		d = appendMessage(d, origin, s, now, "a", []byte("genuine"))
		ids = append(ids, ComputeMessageID(origin, s, now, "a", []byte("genuine")))
	}
	var h rangeHasher
	h.reset()
	for i := range ids {
		h.add(&ids[i])
	}
	var sum [32]byte
	h.sum(&sum)
	d = appendStatement(d, key, origin, 103, now, 3, sum[:], true)
	c.Ready()
	c.Handle(t0, honest, d)
	require.Len(t, c.Ready().Messages, 3)
}
