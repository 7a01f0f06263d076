package merkle

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSortChangesIsAStableSortByID: whatever the size, the result is the
// changes sorted by ID with those of one ID in queue order.
func TestSortChangesIsAStableSortByID(t *testing.T) {
	rng := newRand(7)
	var scratch []change
	for _, n := range []int{0, 1, 2, 63, 64, 65, 1000, 20_000, 70_000} {
		pool := randomIDs(rng, max(1, n/3))
		// Some IDs share their leading 16 bits, to fill buckets.
		for i := 0; i < len(pool)/10; i++ {
			pool[i][0], pool[i][1] = 0xab, 0xcd
		}
		cs := make([]change, n)
		for i := range cs {
			cs[i] = change{id: pool[rng.IntN(len(pool))], remove: rng.IntN(2) == 0}
		}
		// The reference is a stable sort: changes of one ID differ in their
		// remove flag, so a result out of queue order shows.
		want := slices.Clone(cs)
		slices.SortStableFunc(want, func(a, b change) int { return a.id.Compare(b.id) })

		var got []change
		got, scratch = sortChanges(slices.Clone(cs), scratch)
		require.Equal(t, nilIfEmpty(want), nilIfEmpty(got), "n=%d", n)
	}
}
