package merkle

import "math/bits"

// InsertLater queues id for insertion. Queued changes are applied, in the
// order they were queued, before anything reads the tree (every other
// method does), sorted so that each node on their paths is visited once per
// batch instead of once per ID: at a high message rate a node adds
// thousands of IDs between two anti-entropy sessions, and walking the tree
// for each of them cost a cache miss per level.
func (t *Tree) InsertLater(id ID) { t.queue(id, false) }

// RemoveLater queues id for removal, like InsertLater.
func (t *Tree) RemoveLater(id ID) { t.queue(id, true) }

// maxQueued bounds the queued changes; past it they are applied at once,
// so a tree that nobody reads still uses bounded memory.
const maxQueued = 1 << 16

// change is a queued insertion or removal. Of two changes of the same ID,
// the one queued later wins.
type change struct {
	id     ID
	remove bool
}

func (t *Tree) queue(id ID, remove bool) {
	t.queued = append(t.queued, change{id: id, remove: remove})
	if len(t.queued) >= maxQueued {
		t.apply()
	}
}

// apply applies the queued changes.
func (t *Tree) apply() {
	if len(t.queued) == 0 {
		return
	}
	t.queued, t.sortScratch = sortChanges(t.queued, t.sortScratch)
	adds, removes := t.adds[:0], t.removes[:0]
	for i, c := range t.queued {
		if i+1 < len(t.queued) && t.queued[i+1].id == c.id {
			continue // a later change of the same ID wins
		}
		if c.remove {
			removes = append(removes, c.id)
		} else {
			adds = append(adds, c.id)
		}
	}
	t.queued = t.queued[:0]
	t.merge(t.root, adds, removes, 0)
	// Keep the scratch unless a burst made it large.
	if cap(t.queued) > 4096 && len(adds)+len(removes) < cap(t.queued)/4 {
		t.queued, t.sortScratch = nil, nil
	}
	t.adds, t.removes = adds[:0], removes[:0]
}

// sortChanges sorts cs by ID, keeping changes of the same ID in queue
// order, and returns the sorted slice and the other buffer for next time
// (scratch is reused when large enough). IDs are uniformly distributed, so
// one counting pass on their leading bits leaves buckets of a few changes,
// each sorted by insertion: linear time, where a comparison sort of 64k
// changes cost more than the tree walk they serve.
func sortChanges(cs, scratch []change) (sorted, spare []change) {
	n := len(cs)
	if n < 64 {
		insertionSort(cs)
		return cs, scratch
	}
	prefixBits := min(16, max(4, bits.Len(uint(n))-1)) // about log2(n)
	shift := 16 - prefixBits
	counts := make([]int32, 1<<prefixBits+1)
	for i := range cs {
		counts[1+prefix16(&cs[i].id)>>shift]++
	}
	for b := 1; b < len(counts); b++ {
		counts[b] += counts[b-1]
	}
	if cap(scratch) < n {
		scratch = make([]change, n)
	}
	out := scratch[:n]
	for i := range cs {
		b := prefix16(&cs[i].id) >> shift
		out[counts[b]] = cs[i]
		counts[b]++
	}
	// counts[b] is now the end of bucket b.
	start := int32(0)
	for b := 0; b < 1<<prefixBits; b++ {
		if end := counts[b]; end-start > 1 {
			insertionSort(out[start:end])
		}
		start = counts[b]
	}
	return out, cs[:0]
}

func prefix16(id *ID) int { return int(id[0])<<8 | int(id[1]) }

// insertionSort sorts cs by ID, stably.
func insertionSort(cs []change) {
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && cs[j].id.Compare(cs[j-1].id) < 0; j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}
