package gossip

import "sort"

// heldOrigin is what this node holds of one origin's messages.
type heldOrigin struct {
	origin    NodeID
	tag       OriginTag
	ranges    []SeqRange // sorted, disjoint, non-adjacent
	lastRound uint64     // the last round in which a message of this origin arrived
}

// holdings is the source of the pull digest: for each origin with recent
// messages, the ranges of sequence numbers this node holds (or has refused
// for good, such as messages past MaxAge, so that peers stop offering them).
//
// An origin numbers its messages contiguously, and pulled messages arrive
// mostly in order, so a node's holdings of one origin are nearly always a
// single range: the digest costs about 19 bytes per active origin whatever
// the message rate. Bounds keep it small when things go wrong: a digest
// lists at most MaxRangesPerOrigin ranges per origin (digestRanges: the
// oldest gaps wait until newer ones fill), holdings keep at most maxRanges
// (the oldest gap is given up first: anti-entropy repairs it), and origins
// idle for long enough are forgotten.
type holdings struct {
	index     map[NodeID]int32
	origins   []heldOrigin // in order of first appearance: deterministic digests
	maxRanges int
}

// heldRangesFactor is how many more ranges per origin a node keeps track
// of than its digests list: enough for the gaps that a burst of losses
// leaves in the chunks of a large message (an answer of 256 KiB carries
// about 190 chunks; at 10% loss, 19 gaps).
const heldRangesFactor = 16

func (h *holdings) find(origin NodeID) *heldOrigin {
	if i, ok := h.index[origin]; ok {
		return &h.origins[i]
	}
	return nil
}

func (h *holdings) contains(origin NodeID, seq uint64) bool {
	o := h.find(origin)
	if o == nil {
		return false
	}
	rs := o.ranges
	i := sort.Search(len(rs), func(i int) bool { return rs[i].First > seq })
	return i > 0 && seq < rs[i-1].End
}

// add records seq as held. seq must be below MaxUint64 (the decoder refuses it).
func (h *holdings) add(origin NodeID, seq uint64, round uint64) {
	o := h.find(origin)
	if o == nil {
		if h.index == nil {
			h.index = make(map[NodeID]int32)
		}
		h.index[origin] = int32(len(h.origins))
		h.origins = append(h.origins, heldOrigin{origin: origin, tag: TagOf(origin), ranges: []SeqRange{{seq, seq + 1}}, lastRound: round})
		return
	}
	o.lastRound = round
	rs := insertSeq(o.ranges, seq)
	if len(rs) > h.maxRanges {
		rs[0].End = rs[1].End
		rs = append(rs[:1], rs[2:]...)
	}
	o.ranges = rs
}

// expire forgets origins whose last message arrived before round minRound.
func (h *holdings) expire(minRound uint64) {
	kept := h.origins[:0]
	for _, o := range h.origins {
		if o.lastRound < minRound {
			delete(h.index, o.origin)
			continue
		}
		h.index[o.origin] = int32(len(kept))
		kept = append(kept, o)
	}
	clear(h.origins[len(kept):])
	h.origins = kept
}

// digestRanges returns rs as a digest lists them: at most limit ranges. Past
// that, the digest shows a window of consecutive gaps and merges the ranges
// on each side of it into one, as if their gaps were held. The hidden gaps
// are not given up, only left out of this digest: turn, counted up by each
// pull, moves the window, from the newest gaps back to the oldest and
// round again, so every gap is asked for within a few pulls. (A fixed
// window on the newest gaps waited for them to fill before showing older
// ones, and a node whose holdings anti-entropy had left sparse, a message
// here and there, stalled until anti-entropy came back.) A burst of losses,
// such as a large message's chunks through a lossy link, costs a few more
// pulls rather than the messages. Rare: it allocates.
func digestRanges(rs []SeqRange, limit int, turn uint64) []SeqRange {
	n := len(rs)
	if n <= limit {
		return rs
	}
	if limit < 3 {
		// No room for a window between two merged sides: the newest
		// limit-1 gaps show.
		out := make([]SeqRange, limit)
		skip := n - limit
		out[0] = SeqRange{First: rs[0].First, End: rs[skip].End}
		copy(out[1:], rs[skip+1:])
		return out
	}
	// Gap i lies between rs[i] and rs[i+1]. The window shows gaps s to s+w:
	// rs[0..s] merged, rs[s+1..s+w] as they are, rs[s+w+1..n-1] merged.
	w := limit - 2
	last := n - 2 - w                     // where the window on the newest gaps starts
	windows := uint64((last+w)/(w+1) + 1) // the last one starts at gap 0
	s := max(0, last-int(turn%windows)*(w+1))
	out := make([]SeqRange, 0, limit)
	out = append(out, SeqRange{First: rs[0].First, End: rs[s].End})
	out = append(out, rs[s+1:s+w+1]...)
	out = append(out, SeqRange{First: rs[s+w+1].First, End: rs[n-1].End})
	return out
}

// remove records seq as no longer held, so that peers offer it again: a
// message held back that turned out not to be the origin's (pending.go).
func (h *holdings) remove(origin NodeID, seq uint64) {
	o := h.find(origin)
	if o == nil {
		return
	}
	rs := o.ranges
	i := sort.Search(len(rs), func(i int) bool { return rs[i].First > seq })
	if i == 0 || seq >= rs[i-1].End {
		return
	}
	r := rs[i-1]
	switch {
	case r.First == seq && r.End == seq+1:
		rs = append(rs[:i-1], rs[i:]...)
		if len(rs) == 0 {
			// A digest lists no origin without ranges: forget the origin.
			h.forget(origin)
			return
		}
	case r.First == seq:
		rs[i-1].First++
	case r.End == seq+1:
		rs[i-1].End--
	default:
		rs[i-1].End = seq
		rs = append(rs[:i], append([]SeqRange{{seq + 1, r.End}}, rs[i:]...)...)
		if len(rs) > h.maxRanges {
			rs[0].End = rs[1].End
			rs = append(rs[:1], rs[2:]...)
		}
	}
	o.ranges = rs
}

// forget drops origin from the holdings.
func (h *holdings) forget(origin NodeID) {
	i, ok := h.index[origin]
	if !ok {
		return
	}
	delete(h.index, origin)
	h.origins = append(h.origins[:i], h.origins[i+1:]...)
	for j := int(i); j < len(h.origins); j++ {
		h.index[h.origins[j].origin] = int32(j)
	}
}
