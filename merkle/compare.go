package merkle

import (
	"fmt"
	"math"
	"slices"
)

// The session's side of protocol v2: what it makes of each report, and
// which probe it sends next for a cell known to differ.

// Planner constants, chosen by measurement (docs/anti-entropy.md).
const (
	// overviewCells bounds the cells of the root's overview: 64 checks of
	// 2 bytes, 128 bytes, tell the initiator roughly how many differences
	// there are (from how many of the cells differ) before it spends
	// more.
	overviewCells = 64
	// targetRate is the expected differences per cell an expansion aims
	// at: at 0.4, 80% of the cells that differ hold one difference, which
	// their summary names.
	targetRate = 0.4
	// targetRounds and fewDifferences: when fewer than fewDifferences are
	// estimated, a cell found to hold two or more in round targetRounds
	// or later is split into 64 cells rather than 8, so that it is
	// resolved in that round with odds of about 98% instead of 88%: a
	// session of 100 differences then ends in three round trips. Past
	// fewDifferences bytes matter more than round trips.
	targetRounds   = 3
	fewDifferences = 256
	// maxPasses: a session whose final check fails (a check collision, or
	// a tree that changed) compares again, with other check bytes, at
	// most this many times in all. The next pass compares the local tree
	// as it would be with the differences found applied, so only what the
	// last missed still differs, and it costs little.
	maxPasses = 3
	// summarySize is a summary's size on the wire, about.
	summarySize = 19
)

// plan is what is known of a cell that differs.
type plan struct {
	peerCount int // the peer's IDs there; -1 if unknown
	multi     int // at least 2 if the cell is known to hold several differences
	split     int // if more than 0, the depth at which its two differences part
}

// use compares the reports of an answer with the local tree.
func (s *Session) use(a *AnswerV2, q *query) error {
	if a.CheckSize != q.checkSize {
		return fmt.Errorf("%w: check size %d, asked %d", ErrProtocol, a.CheckSize, q.checkSize)
	}
	if err := s.takeAnswer(q, a.Shape, a.HashSize, len(a.Entries)); err != nil {
		return err
	}
	for i := range a.Entries {
		p := q.items[i]
		s.stats.Rounds = max(s.stats.Rounds, p.round)
		var err error
		switch r := &a.Entries[i]; {
		case p.kind == ProbeRoot && r.Kind == ReportEqual:
			s.rootsEqual = true
		case p.kind == ProbeRoot && r.Kind == ReportOverview && r.Depth == p.depth:
			err = s.useOverview(p, r, q)
		case (p.kind == ProbeCells || p.kind == ProbeSummaries) && r.Kind == ReportCells && r.Depth == p.depth:
			err = s.useCells(p, r, q)
		case p.kind == ProbeIDs && r.Kind == ReportIDs:
			err = s.compareIDs(p.pos, r)
		case p.kind == ProbeIDs && r.Kind == ReportSummary && p.pos.Level < expandLimit(s.tree.b) && r.Summaries[0].Count > uint64(s.tree.leafSize):
			err = s.resolve(p.pos, &r.Summaries[0], p.round)
		default:
			err = fmt.Errorf("%w: report %d (depth %d) to probe %d (depth %d)", ErrProtocol, r.Kind, r.Depth, p.kind, p.depth)
		}
		if err != nil || s.done {
			return err
		}
	}
	return nil
}

// takeAnswer checks what an answer of either version echoes, and puts the
// probes of q left out, which did not fit, back first on the stack.
func (s *Session) takeAnswer(q *query, shape TreeConfig, hashSize, entries int) error {
	switch {
	case shape != s.tree.Config():
		return fmt.Errorf("%w: %+v, ours %+v", ErrShapeMismatch, shape, s.tree.Config())
	case hashSize != s.cfg.HashSize:
		return fmt.Errorf("%w: hash size %d, asked %d", ErrProtocol, hashSize, s.cfg.HashSize)
	case entries == 0 || entries > len(q.items):
		return fmt.Errorf("%w: %d entries for %d positions", ErrProtocol, entries, len(q.items))
	}
	for i := len(q.items) - 1; i >= entries; i-- {
		s.frontier = append(s.frontier, q.items[i])
	}
	return nil
}

// useOverview compares the peer's cells under the root with the local
// ones and estimates from how many differ the number of differences.
func (s *Session) useOverview(p pending, r *Report, q *query) error {
	s.peerRoot = append(s.peerRoot[:0], r.Hash...)
	if r.Count == 0 {
		s.addExtra(p.pos) // the peer has nothing
		return nil
	}
	n := cellCount(s.tree.b, p.depth)
	s.cells = s.view.cells(p.pos, p.depth, growCells(s.cells, n))
	c, o := q.checkSize, q.checkOffset
	var differ []int
	for i := range s.cells {
		if string(s.cells[i].hash[o:o+c]) != string(r.Checks[i*c:(i+1)*c]) {
			differ = append(differ, i)
		}
	}
	// Cells hold a Poisson number of differences: the share that differs
	// gives the rate. All differing says only "many".
	if len(differ) < n {
		s.dEst = -float64(n) * math.Log1p(-float64(len(differ))/float64(n))
	} else {
		s.saturated = true
		s.dEst = float64(n) * (math.Log(float64(n)) + 2)
	}
	for _, i := range slices.Backward(differ) {
		s.plan(cellPosition(p.pos, p.depth, i, s.tree.b), plan{peerCount: -1}, p.round+1)
	}
	return nil
}

// useCells takes the peer's verdict on the cells under p: those that
// differ are resolved from their summaries, or probed further.
func (s *Session) useCells(p pending, r *Report, q *query) error {
	t := s.tree
	level := p.pos.Level + p.depth
	if int(r.Skip) != leafSkip(level, t.b) {
		return fmt.Errorf("%w: cells at level %d skip %d bytes", ErrProtocol, level, r.Skip)
	}
	if p.kind == ProbeCells && len(r.Summaries) > 0 {
		return fmt.Errorf("%w: summaries not asked for", ErrProtocol)
	}
	n := cellCount(t.b, p.depth)
	var differ []int
	for i := range n {
		if r.Bitmap[i/8]&(1<<(i%8)) != 0 {
			differ = append(differ, i)
		}
	}
	if p.kind == ProbeCells {
		s.scout(level, len(differ), n)
	}
	// Push in reverse, so that the lowest cell is compared first.
	for j := len(differ) - 1; j >= 0; j-- {
		c := cellPosition(p.pos, p.depth, differ[j], t.b)
		if j < len(r.Summaries) {
			if err := s.resolve(c, &r.Summaries[j], p.round); err != nil || s.done {
				return err
			}
			continue
		}
		s.plan(c, plan{peerCount: -1}, p.round+1)
	}
	return nil
}

// scout updates the estimate of the number of differences from a
// bitmap-only expansion of a cell that differs: its cells differ in the
// share 1-e^-rate.
func (s *Session) scout(level, differ, cells int) {
	s.scoutDiffer += differ
	s.scoutCells += cells
	if s.scoutLevel != level {
		s.scoutLevel, s.scoutDiffer, s.scoutCells = level, differ, cells
	}
	if s.scoutDiffer < s.scoutCells {
		rate := -math.Log1p(-float64(s.scoutDiffer) / float64(s.scoutCells))
		s.dEst = math.Ldexp(rate, s.tree.b*level)
		s.saturated = false
	}
}

// resolve compares the peer's summary of the cell at c with the local one.
// One difference is named outright; more are probed further.
func (s *Session) resolve(c Position, sm *Summary, round int) error {
	t := s.tree
	local := s.view.cell(c)
	skip := leafSkip(c.Level, t.b)
	peer := sm.XOR
	if sm.Count%2 == 1 {
		copy(peer[:skip], c.Prefix[:skip])
	}
	nbits := c.Level * t.b
	switch {
	case sm.Count == 0:
		s.addExtra(c)
		return nil
	case sm.Count == 1:
		// The peer's one ID: whatever else is here is Extra.
		if !hasPrefix(&peer, &c.Prefix, nbits) {
			return fmt.Errorf("%w: ID %v outside its cell", ErrProtocol, peer)
		}
		for id := range s.view.ids(c) {
			if id != peer && !s.addDifference(&s.extra, id) {
				return nil
			}
		}
		if !s.view.contains(peer) {
			s.addDifference(&s.missing, peer)
		}
		return nil
	}
	var x ID
	for i := range x {
		x[i] = local.sum.xor[i] ^ peer[i]
	}
	pure := hasPrefix(&x, &c.Prefix, nbits) && uint16(local.sum.chk)^sm.Check == uint16(idCheck(&x))
	switch delta := int64(sm.Count) - int64(local.count); {
	case delta == 1 && pure && !s.view.contains(x):
		s.addDifference(&s.missing, x)
	case delta == -1 && pure && s.view.contains(x):
		s.addDifference(&s.extra, x)
	case (delta == 0 || delta == -2) && local.count <= maxPairSearch && s.pairFromSummary(c, x, uint16(local.sum.chk)^sm.Check, delta == 0):
		// Two differences, at least one of them ours: found here.
	default:
		k := plan{peerCount: int(min(sm.Count, 1<<40)), multi: 2}
		if delta > 2 || delta < -2 {
			k.multi = int(min(max(delta, -delta), 1<<20))
		}
		if delta == 2 {
			// Two of the peer's, most likely: they part where their XOR
			// has its first bit set, so that deep a split tells them apart.
			k.split = (firstBit(&x, nbits)-nbits)/t.b + 1
		}
		s.plan(c, k, round+1)
	}
	return nil
}

// maxPairSearch bounds the local IDs pairFromSummary looks through.
const maxPairSearch = 1 << 14

// pairFromSummary looks, among the local IDs under c, for the two
// differences a summary shows: the XOR of the cell's differences is x and
// that of their mixes chk. If one is ours and one the peer's (split), the
// peer's is y^x for one of our IDs y; if both are ours, both are here. It
// adds them and reports true if exactly one pair fits.
func (s *Session) pairFromSummary(c Position, x ID, chk uint16, split bool) bool {
	nbits := c.Level * s.tree.b
	if !hasPrefix(&x, &ID{}, nbits) || x == (ID{}) {
		return false
	}
	var found [2]ID
	n := 0
	for y := range s.view.ids(c) {
		var other ID
		for i := range other {
			other[i] = y[i] ^ x[i]
		}
		if uint16(idCheck(&y)^idCheck(&other)) != chk || s.view.contains(other) != !split {
			continue
		}
		if !split && other.Compare(y) < 0 {
			continue // the pair, seen from its other end
		}
		if n++; n > 1 {
			return false
		}
		found = [2]ID{y, other}
	}
	if n != 1 {
		return false
	}
	if s.addDifference(&s.extra, found[0]) {
		if split {
			s.addDifference(&s.missing, found[1])
		} else {
			s.addDifference(&s.extra, found[1])
		}
	}
	return true
}

// firstBit is the index of the first bit set in x at or after bit from;
// 128 if none.
func firstBit(x *ID, from int) int {
	for i := from; i < 128; i++ {
		if x[i/8]&(0x80>>(i%8)) != 0 {
			return i
		}
	}
	return 128
}

// plan pushes the probe for a cell that differs: its IDs if it is small,
// else an expansion deep enough that most of its cells hold at most one
// difference.
func (s *Session) plan(c Position, k plan, round int) {
	t := s.tree
	local := s.view.count(c)
	size := max(local, k.peerCount)
	limit := expandLimit(t.b)
	// A small cell's IDs cost less than splitting it (and a round trip more
	// if that is not enough).
	idsCost := size * (16 - leafSkip(c.Level, t.b))
	splitCost := cellCount(t.b, scoutDepth(t.b))*s.checkSize() + 2*summarySize
	switch {
	case c.Level >= limit || (idsCost <= 2*splitCost && size <= t.leafSize) || (local == 0 && k.peerCount >= 0 && k.peerCount <= t.leafSize):
		s.push(pending{kind: ProbeIDs, pos: c, round: round})
		return
	case local == 0 || k.peerCount == 0:
		// One side is empty there: its cells tell the other's apart.
		s.push(pending{kind: ProbeSummaries, pos: c, depth: s.clampDepth(c, scoutDepth(t.b)), round: round})
		return
	case k.multi >= 2:
		j := float64(k.multi)
		need := j / targetRate
		if round >= targetRounds && !s.saturated && s.dEst <= fewDifferences {
			need = j * (j - 1) / 2 / 0.02 // the odds that two share a cell
		}
		depth := 1
		for float64(cellCount(t.b, depth)) < need && depth < 2*scoutDepth(t.b) {
			depth++
		}
		if k.split > 0 {
			depth = k.split
		}
		s.push(pending{kind: ProbeSummaries, pos: c, depth: s.clampDepth(c, depth), multi: k.multi, round: round})
		return
	case s.saturated:
		s.push(pending{kind: ProbeCells, pos: c, depth: s.clampDepth(c, scoutDepth(t.b)), round: round})
		return
	}
	depth := 0
	for math.Ldexp(s.dEst, -t.b*(c.Level+depth)) > targetRate {
		depth++
	}
	s.push(pending{kind: ProbeSummaries, pos: c, depth: s.clampDepth(c, depth), round: round})
}

// scoutDepth is the depth of an expansion into at least 8 cells.
func scoutDepth(fanoutBits int) int { return (3 + fanoutBits - 1) / fanoutBits }

// clampDepth bounds an expansion of c: to the levels where every cell
// exists, maxCellBits, and a query's room for the checks.
func (s *Session) clampDepth(c Position, depth int) int {
	b := s.tree.b
	room := s.cfg.MaxPacketSize - maxQueryV2Head - 24
	for depth > 0 && (c.Level+depth > expandLimit(b) || b*depth > maxCellBits || cellCount(b, depth)*s.checkSize() > room) {
		depth--
	}
	return depth
}

func (s *Session) push(p pending) { s.frontier = append(s.frontier, p) }

// compareIDs compares the peer's IDs under p with the local ones.
func (s *Session) compareIDs(p Position, r *Report) error {
	t := s.tree
	nbits := p.Level * t.b
	if int(r.Skip) > leafSkip(p.Level, t.b) {
		return fmt.Errorf("%w: IDs at level %d skip %d bytes", ErrProtocol, p.Level, r.Skip)
	}
	theirs := r.LeafLen()
	for j := range theirs {
		id := r.LeafID(j, p.Prefix)
		if !hasPrefix(&id, &p.Prefix, nbits) {
			return fmt.Errorf("%w: leaf ID %v outside its subtree", ErrProtocol, id)
		}
	}
	// Merge the two ascending lists.
	j := 0
	for id := range s.view.ids(p) {
		for ; j < theirs; j++ {
			other := r.LeafID(j, p.Prefix)
			if other.Compare(id) >= 0 {
				break
			}
			if !s.addDifference(&s.missing, other) {
				return nil
			}
		}
		if j < theirs && r.LeafID(j, p.Prefix) == id {
			j++
			continue
		}
		if !s.addDifference(&s.extra, id) {
			return nil
		}
	}
	for ; j < theirs; j++ {
		if !s.addDifference(&s.missing, r.LeafID(j, p.Prefix)) {
			return nil
		}
	}
	return nil
}

// addExtra adds every local ID under p to Extra; false if that ended the
// session.
func (s *Session) addExtra(p Position) bool {
	for id := range s.view.ids(p) {
		if !s.addDifference(&s.extra, id) {
			return false
		}
	}
	return true
}

// addDifference appends id to list (Missing or Extra); false if the list
// is full, which ends the session.
func (s *Session) addDifference(list *[]ID, id ID) bool {
	if len(*list) >= s.cfg.MaxDifferences {
		s.finish(ErrTooManyDifferences)
		return false
	}
	*list = append(*list, id)
	return true
}
