package gossip

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

// A peer's latest pull decides; past the bound the longest remembered is
// forgotten.
func TestStatementPeers(t *testing.T) {
	var sp statementPeers
	sp.note(addr(1), true)
	sp.note(addr(2), true)
	require.True(t, sp.understands(addr(1)))
	sp.note(addr(1), false)
	require.False(t, sp.understands(addr(1)))
	require.True(t, sp.understands(addr(2)))
	for i := range maxStatementPeers {
		sp.note(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 1), true)
	}
	require.Len(t, sp, maxStatementPeers)
	require.False(t, sp.understands(addr(2)), "the longest remembered, forgotten")
}

// Both kinds of statement are recognised in their encodings, and nothing
// else is.
func TestIsStatementEncoding(t *testing.T) {
	key, origin := testKeyOrigin()
	for _, keyed := range []bool{true, false} {
		require.True(t, isStatementEncoding(appendStatement(nil, key, origin, 10, 5, 3, make([]byte, 32), keyed)))
	}
	require.False(t, isStatementEncoding(appendMessage(nil, origin, 10, 5, "a", nil)))
	chunks := newChunkSet(origin, 1<<40, 1_700_000_000_000, "big.file", make([]byte, 300), 3)
	require.False(t, isStatementEncoding(chunks.enc(0, nil)))
	require.False(t, isStatementEncoding(nil))
}
