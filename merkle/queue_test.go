package merkle

import (
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSortChangesIsAStableSortByID: whatever the size, the result is the
// changes sorted by ID with those of one ID in queue order.
func TestSortChangesIsAStableSortByID(t *testing.T) {
	t.Parallel()
	rng := newRand(7)
	var scratch []change
	// From below the insertion-sort cutoff to a full queue (maxQueued),
	// which buckets by all 16 leading bits.
	for _, n := range []int{0, 1, 2, 63, 64, 65, 1000, 20_000, maxQueued} {
		pool := randomIDs(rng, max(1, n/3))
		// Some IDs share their leading 16 bits, to fill a bucket. Not too
		// many: a bucket is sorted by insertion, in quadratic time.
		for i := 0; i < min(len(pool)/10, 64); i++ {
			pool[i][0], pool[i][1] = 0xab, 0xcd
		}
		cs := make([]change, n)
		for i := range cs {
			cs[i] = change{id: pool[rng.IntN(len(pool))], remove: rng.IntN(2) == 0}
		}
		// The reference is a stable sort, built as the distinct IDs in order,
		// each with its changes in queue order (a comparison sort of every
		// change is slow under -race). Changes of one ID differ in their
		// remove flag, so a result out of queue order shows.
		byID := map[ID][]change{}
		for _, c := range cs {
			byID[c.id] = append(byID[c.id], c)
		}
		var want []change
		for _, id := range slices.SortedFunc(maps.Keys(byID), ID.Compare) {
			want = append(want, byID[id]...)
		}

		var got []change
		got, scratch = sortChanges(slices.Clone(cs), scratch)
		if !slices.Equal(want, got) { // require.Equal's reflection is slow under -race
			require.Equal(t, nilIfEmpty(want), nilIfEmpty(got), "n=%d", n)
		}
	}
}
