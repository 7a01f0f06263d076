package merkle

import (
	"iter"
	"slices"
)

// view is a tree as it would be with some IDs added and others removed,
// without changing it: what a session compares in a later pass, once the
// differences of the first are known, so that only what the first pass
// missed still differs. With nothing added or removed it is the tree.
type view struct {
	t             *Tree
	adds, removes []ID // ascending; adds absent from t, removes present
}

// newView returns t with adds added and removes removed.
func newView(t *Tree, adds, removes []ID) view {
	v := view{t: t}
	for _, id := range adds {
		if !t.Contains(id) {
			v.adds = append(v.adds, id)
		}
	}
	for _, id := range removes {
		if t.Contains(id) {
			v.removes = append(v.removes, id)
		}
	}
	slices.SortFunc(v.adds, ID.Compare)
	slices.SortFunc(v.removes, ID.Compare)
	v.adds, v.removes = slices.Compact(v.adds), slices.Compact(v.removes)
	return v
}

func (v *view) plain() bool { return len(v.adds) == 0 && len(v.removes) == 0 }

// under returns the run of sorted that lies under p.
func (v *view) under(sorted []ID, p Position) []ID {
	nbits := p.Level * v.t.b
	lo, _ := slices.BinarySearchFunc(sorted, p.Prefix, ID.Compare)
	hi := lo
	for hi < len(sorted) && hasPrefix(&sorted[hi], &p.Prefix, nbits) {
		hi++
	}
	return sorted[lo:hi]
}

// root is the view's root hash.
func (v *view) root() Hash {
	v.t.settle()
	return v.t.hashWith(v.t.root, 0, v.adds, v.removes)
}

// cell is the view's subtree at p.
func (v *view) cell(p Position) cell {
	c := v.t.cellAt(p)
	adds, removes := v.under(v.adds, p), v.under(v.removes, p)
	if len(adds) == 0 && len(removes) == 0 {
		return c
	}
	for i := range adds {
		c.sum.add(&adds[i])
	}
	for i := range removes {
		c.sum.add(&removes[i])
	}
	c.count += len(adds) - len(removes)
	n, level := v.t.locate(p)
	if n != nil && level == p.Level {
		c.hash = v.t.hashWith(n, level, adds, removes)
		return c
	}
	// p lies in a leaf, or is empty: its IDs as they would be.
	ids, _ := mergeIDs(slices.Collect(v.t.IDs(p)), adds, removes)
	c.hash = v.t.hashWith(nil, p.Level, ids, nil)
	return c
}

// cells fills cells with the view's subtrees depth levels below p, as
// Tree.cellsAt does.
func (v *view) cells(p Position, depth int, cells []cell) []cell {
	cells = v.t.cellsAt(p, depth, cells)
	if v.plain() {
		return cells
	}
	b := v.t.b
	last := -1
	for _, list := range [][]ID{v.under(v.adds, p), v.under(v.removes, p)} {
		for i := range list {
			if k := cellIndex(&list[i], p.Level, depth, b); k != last {
				cells[k] = v.cell(cellPosition(p, depth, k, b))
				last = k
			}
		}
	}
	return cells
}

func (v *view) count(p Position) int {
	return v.t.CountAt(p) + len(v.under(v.adds, p)) - len(v.under(v.removes, p))
}

func (v *view) contains(id ID) bool {
	if _, ok := slices.BinarySearchFunc(v.adds, id, ID.Compare); ok {
		return true
	}
	if _, ok := slices.BinarySearchFunc(v.removes, id, ID.Compare); ok {
		return false
	}
	return v.t.Contains(id)
}

// ids iterates, ascending, over the view's IDs under p.
func (v *view) ids(p Position) iter.Seq[ID] {
	if v.plain() {
		return v.t.IDs(p)
	}
	return func(yield func(ID) bool) {
		ids, _ := mergeIDs(slices.Collect(v.t.IDs(p)), v.under(v.adds, p), v.under(v.removes, p))
		for _, id := range ids {
			if !yield(id) {
				return
			}
		}
	}
}
