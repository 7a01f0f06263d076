package gossip

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/wire"
)

// signedRange is a datagram of messages at [first, first+n) of key's origin
// and, if stmt, their statement at first+n, keyed or not.
func signedRange(key ed25519.PrivateKey, first, n uint64, payload string, stmt, keyed bool) []byte {
	origin := NodeIDOf(key.Public().(ed25519.PublicKey))
	now := t0.UnixMilli()
	d := wire.AppendHeader(nil, wire.Messages)
	var h rangeHasher
	h.reset()
	for s := first; s < first+n; s++ {
		d = appendMessage(d, origin, s, now, "a", []byte(payload))
		id := ComputeMessageID(origin, s, now, "a", []byte(payload))
		h.add(&id)
	}
	if !stmt {
		return d
	}
	var sum [32]byte
	h.sum(&sum)
	return appendStatement(d, key, origin, first+n, now, n, sum[:], keyed)
}

func signingCore(t *testing.T) *Core {
	own := ed25519.NewKeyFromSeed(append(make([]byte, 31), 9))
	c, err := New(Config{ID: NodeIDOf(own.Public().(ed25519.PublicKey)), SigningKey: own, Peers: fixedPeers{addr(1)}})
	require.NoError(t, err)
	return c
}

// A keyless statement of an origin whose key is not cached waits, held,
// for a keyed one; then it verifies, and so do later keyless ones at once.
// A forged keyless one fails against the cached key, and a keyless one
// whose key never comes is given up as unsigned.
func TestKeylessStatementsWaitForTheKey(t *testing.T) {
	key, origin := testKeyOrigin()
	c := signingCore(t)
	c.Handle(t0, addr(1), signedRange(key, 21, 2, "later", true, false))
	require.Equal(t, uint64(1), c.TrustStats().AwaitedKey)
	require.Equal(t, 2, c.PendingMessages())
	require.Empty(t, c.Ready().Messages)
	require.True(t, c.held.contains(origin, 23), "the waiting statement is held: not pulled again")

	c.Handle(t0, addr(2), signedRange(key, 10, 10, "first", true, true))
	require.Len(t, c.Ready().Messages, 12, "the keyed statement's range, then the waiting one's")
	require.Equal(t, uint64(2), c.TrustStats().StatementsIn)
	require.Zero(t, c.PendingMessages())

	c.Handle(t0, addr(1), signedRange(key, 24, 1, "known", true, false))
	require.Len(t, c.Ready().Messages, 1, "verified with the cached key")
	require.Equal(t, uint64(1), c.TrustStats().AwaitedKey)

	// A keyless statement of a forged range: its signature does not verify
	// under the cached key.
	forged := signedRange(key, 26, 1, "genuine", true, false)
	forged[len(forged)-1] ^= 1
	c.Handle(t0, addr(3), forged)
	require.Equal(t, uint64(1), c.Stats().Dropped[DropBadSignature])
	require.Equal(t, addr(3), c.Penalties()[0].Peer)

	// A genuine keyless statement whose range holds a forgery: a mismatch.
	c.Handle(t0, addr(3), signedRange(key, 28, 1, "forged", false, false))
	genuine := signedRange(key, 28, 1, "genuine", true, false)
	_, stmt := splitFirst(t, genuine)
	c.Handle(t0, addr(1), stmt)
	require.Equal(t, uint64(1), c.TrustStats().RangeMismatches)
	c.Handle(t0, addr(1), genuine)
	require.Len(t, c.Ready().Messages, 1, "the genuine message, as a second candidate")

	// An origin whose key never comes.
	other := ed25519.NewKeyFromSeed(append(make([]byte, 31), 5))
	otherOrigin := NodeIDOf(other.Public().(ed25519.PublicKey))
	c.Handle(t0, addr(1), signedRange(other, 5, 1, "x", true, false))
	require.Equal(t, uint64(2), c.TrustStats().AwaitedKey)
	for now := t0; now.Before(t0.Add(20 * time.Second)); now = now.Add(c.cfg.Interval) {
		c.Tick(now)
	}
	require.Equal(t, uint64(3), c.Stats().Dropped[DropUnsigned], "the statement and its message, and the message of the forged statement")
	require.False(t, c.held.contains(otherOrigin, 6), "un-held: pulled again later")
	require.Empty(t, c.keys.waiting)
}

// The key cache is bounded, the longest cached forgotten first.
func TestKnownKeysBound(t *testing.T) {
	var k knownKeys
	pub := make([]byte, ed25519.PublicKeySize)
	for i := range maxKnownKeys + 1 {
		k.learnKey(NodeID{byte(i), byte(i >> 8)}, pub)
	}
	require.Len(t, k.keys, maxKnownKeys)
	require.NotContains(t, k.keys, NodeID{0, 0})
	require.Contains(t, k.keys, NodeID{1, 0})
}

// splitFirst splits a messages datagram into its first message and a
// datagram of the rest.
func splitFirst(t *testing.T, d []byte) ([]byte, []byte) {
	_, body, err := wire.Parse(d)
	require.NoError(t, err)
	wm, rest, err := decodeMessage(body)
	require.NoError(t, err)
	return wm.raw, append(wire.AppendHeader(nil, wire.Messages), rest...)
}
