package gossip

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDigestRangesShowAWindowOfGaps(t *testing.T) {
	rs := []SeqRange{{1, 3}, {5, 8}, {10, 11}, {20, 21}, {30, 35}}
	require.Equal(t, rs, digestRanges(rs, 5, 0))
	require.Equal(t, []SeqRange{{1, 11}, {20, 21}, {30, 35}}, digestRanges(rs, 3, 0), "first the newest gaps")
	require.Equal(t, []SeqRange{{1, 3}, {5, 8}, {10, 35}}, digestRanges(rs, 3, 1), "then older ones")
	require.Equal(t, []SeqRange{{1, 11}, {20, 21}, {30, 35}}, digestRanges(rs, 3, 2), "and round again")
	require.Equal(t, []SeqRange{{1, 35}}, digestRanges(rs, 1, 0))
	require.Equal(t, []SeqRange{{1, 21}, {30, 35}}, digestRanges(rs, 2, 7))

	// Over the turns, every gap of a sparse holding is shown, each within
	// a few turns.
	var sparse []SeqRange
	for s := uint64(0); s < 400; s += 4 {
		sparse = append(sparse, SeqRange{First: s, End: s + 1})
	}
	shown := map[uint64]int{}
	for turn := uint64(0); turn < 8; turn++ {
		d := digestRanges(sparse, 16, turn)
		require.Len(t, d, 16)
		for i := 0; i+1 < len(d); i++ {
			shown[d[i].End]++ // the gap starting there is asked for
		}
	}
	for i := 0; i+1 < len(sparse); i++ {
		require.Positive(t, shown[sparse[i].End], "gap after %d", sparse[i].End)
	}
	require.Equal(t, []SeqRange{{1, 3}, {5, 8}, {10, 11}, {20, 21}, {30, 35}}, rs, "the holdings are not changed")

	// A burst of gaps past the digest's bound is kept, not given up: as the
	// newer gaps fill, the older ones show again.
	h := holdings{maxRanges: heldRangesFactor * 4}
	o := testOrigin(1)
	for s := uint64(0); s < 40; s += 2 {
		h.add(o, s, 1)
	}
	require.Len(t, h.find(o).ranges, 20)
	require.Equal(t, SeqRange{0, 33}, digestRanges(h.find(o).ranges, 4, 0)[0])
	for s := uint64(33); s < 40; s += 2 {
		h.add(o, s, 2)
	}
	require.Equal(t, []SeqRange{{0, 27}, {28, 29}, {30, 31}, {32, 40}}, digestRanges(h.find(o).ranges, 4, 0))
	require.False(t, h.contains(o, 1), "the oldest gap is still missing, and asked for later")
}
