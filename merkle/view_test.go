package merkle

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// modified returns ids with adds added and removes removed.
func modified(ids, adds, removes []ID) []ID {
	set := idSet(ids, adds)
	for _, id := range removes {
		delete(set, id)
	}
	return sortedKeys(set)
}

// TestRootWithMatchesTheTreeItDescribes: RootWith, and a view's cells,
// counts and IDs, are those of the tree built from the modified set,
// through leaves that split and inner nodes that collapse.
func TestRootWithMatchesTheTreeItDescribes(t *testing.T) {
	t.Parallel()
	shapes := []TreeConfig{{FanoutBits: 1, LeafSize: 1}, {FanoutBits: 2, LeafSize: 3}, DefaultTreeConfig(), {FanoutBits: 4, LeafSize: 8}}
	for si, shape := range shapes {
		for trial := range 20 {
			rng := newRand(uint64(1000*si + trial))
			ids := withNearTwins(randomIDs(rng, 1+rng.IntN(400)), rng.IntN(10))
			tr, err := BuildTree(shape, ids)
			require.NoError(t, err)
			var adds, removes []ID
			adds = append(adds, randomIDs(rng, rng.IntN(50))...)
			adds = append(adds, ids[rng.IntN(len(ids))]) // already there
			for range rng.IntN(len(ids) + 1) {
				removes = append(removes, ids[rng.IntN(len(ids))])
			}
			removes = append(removes, randomIDs(rng, 2)...) // not there
			want := modified(ids, adds, removes)
			wantTree, err := BuildTree(shape, want)
			require.NoError(t, err)
			require.Equal(t, wantTree.Root(), tr.RootWith(adds, removes), "%+v trial %d", shape, trial)

			v := newView(tr, adds, removes)
			for range 10 {
				id := want[rng.IntN(max(1, len(want)))%max(1, len(want))]
				if len(want) == 0 {
					id = randomIDs(rng, 1)[0]
				}
				p := tr.PositionOf(id, rng.IntN(maxLevel(shape.FanoutBits)/2+1))
				got, exp := v.cell(p), wantTree.cellAt(p)
				require.Equal(t, exp, got, "%+v trial %d at %+v", shape, trial, p)
				require.Equal(t, exp.count, v.count(p))
				require.Equal(t, slices.Collect(wantTree.IDs(p)), nilIfEmpty(slices.Collect(v.ids(p))))
				if depth := 1; p.Level+depth <= expandLimit(shape.FanoutBits) {
					n := cellCount(shape.FanoutBits, depth)
					require.Equal(t, wantTree.cellsAt(p, depth, make([]cell, n)), v.cells(p, depth, make([]cell, n)))
				}
				require.Equal(t, wantTree.Contains(id), v.contains(id))
			}
		}
	}
}

// TestCellsAgreeWithHashAt: the cells of an expansion are the subtrees at
// their positions, as HashAt and CountAt see them, whether they lie above,
// at or below the leaves.
func TestCellsAgreeWithHashAt(t *testing.T) {
	rng := newRand(33)
	ids := withNearTwins(randomIDs(rng, 3000), 30)
	tr := mustTree(t, TreeConfig{}, ids...)
	for _, level := range []int{0, 1, 2, 3, 5, 8, 40} {
		p := tr.PositionOf(ids[0], level)
		for depth := 0; depth <= 2 && level+depth <= expandLimit(3); depth++ {
			n := cellCount(3, depth)
			cells := tr.cellsAt(p, depth, make([]cell, n))
			for i, c := range cells {
				q := cellPosition(p, depth, i, 3)
				require.Equal(t, tr.HashAt(q), c.hash, "level %d depth %d cell %d", level, depth, i)
				require.Equal(t, tr.CountAt(q), c.count)
				require.Equal(t, summarize(slices.Collect(tr.IDs(q))), c.sum)
			}
		}
	}
}
