package gossip

import "sort"

// Operations on lists of sequence ranges: sorted, disjoint and
// non-adjacent, as holdings, digests and hints keep them.

// insertSeq adds seq to rs (sorted, disjoint, non-adjacent ranges), merging
// it with its neighbours, and returns the result.
func insertSeq(rs []SeqRange, seq uint64) []SeqRange {
	i := sort.Search(len(rs), func(i int) bool { return rs[i].First > seq })
	if i > 0 && seq < rs[i-1].End {
		return rs
	}
	joinsPrev := i > 0 && rs[i-1].End == seq
	joinsNext := i < len(rs) && rs[i].First == seq+1
	switch {
	case joinsPrev && joinsNext:
		rs[i-1].End = rs[i].End
		return append(rs[:i], rs[i+1:]...)
	case joinsPrev:
		rs[i-1].End = seq + 1
	case joinsNext:
		rs[i].First = seq
	default:
		rs = append(rs, SeqRange{})
		copy(rs[i+1:], rs[i:])
		rs[i] = SeqRange{seq, seq + 1}
	}
	return rs
}

// firstUncovered returns the first sequence number of r that the ranges rs
// (sorted, disjoint, non-adjacent) do not hold, if any.
func firstUncovered(rs []SeqRange, r SeqRange) (uint64, bool) {
	i := sort.Search(len(rs), func(i int) bool { return rs[i].End > r.First })
	if i == len(rs) || rs[i].First > r.First {
		return r.First, true
	}
	if rs[i].End < r.End {
		return rs[i].End, true
	}
	return 0, false
}

// unionRanges returns the union of two lists of sorted, disjoint,
// non-adjacent ranges, in a new slice.
func unionRanges(a, b []SeqRange) []SeqRange {
	out := make([]SeqRange, 0, len(a)+len(b))
	for len(a) > 0 || len(b) > 0 {
		var r SeqRange
		if len(b) == 0 || len(a) > 0 && a[0].First <= b[0].First {
			r, a = a[0], a[1:]
		} else {
			r, b = b[0], b[1:]
		}
		if n := len(out); n > 0 && r.First <= out[n-1].End {
			out[n-1].End = max(out[n-1].End, r.End)
			continue
		}
		out = append(out, r)
	}
	return out
}
