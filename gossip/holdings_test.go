package gossip

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDigestRangesLeaveOutOldestGaps(t *testing.T) {
	rs := []SeqRange{{1, 3}, {5, 8}, {10, 11}, {20, 21}, {30, 35}}
	require.Equal(t, rs, digestRanges(rs, 5))
	require.Equal(t, []SeqRange{{1, 11}, {20, 21}, {30, 35}}, digestRanges(rs, 3))
	require.Equal(t, []SeqRange{{1, 35}}, digestRanges(rs, 1))
	require.Equal(t, []SeqRange{{1, 3}, {5, 8}, {10, 11}, {20, 21}, {30, 35}}, rs, "the holdings are not changed")

	// A burst of gaps past the digest's bound is kept, not given up: as the
	// newer gaps fill, the older ones show again.
	h := holdings{maxRanges: heldRangesFactor * 4}
	o := testOrigin(1)
	for s := uint64(0); s < 40; s += 2 {
		h.add(o, s, 1)
	}
	require.Len(t, h.find(o).ranges, 20)
	require.Equal(t, SeqRange{0, 33}, digestRanges(h.find(o).ranges, 4)[0])
	for s := uint64(33); s < 40; s += 2 {
		h.add(o, s, 2)
	}
	require.Equal(t, []SeqRange{{0, 27}, {28, 29}, {30, 31}, {32, 40}}, digestRanges(h.find(o).ranges, 4))
	require.False(t, h.contains(o, 1), "the oldest gap is still missing, and asked for later")
}
