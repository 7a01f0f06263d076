package merkle

import (
	"encoding/binary"
	"math"
	"time"
)

// used returns the bytes counted against the budget: those sent, those of
// the answers used, and room for the answers in flight.
func (s *Session) used() int {
	return s.stats.BytesSent + s.stats.BytesReceived + s.reserved
}

// fill sends queries for the probes waiting, as many as MaxInFlight and
// the budget allow; when nothing is left to compare, it makes the final
// check, which ends the session or starts another pass.
func (s *Session) fill(now time.Time) {
	for !s.done {
		for len(s.inflight) < s.window() && len(s.frontier) > 0 {
			// Room for a full query and a full answer.
			if s.used()+2*s.cfg.MaxPacketSize > s.cfg.MaxSessionBytes {
				break
			}
			s.sendQuery(now)
		}
		switch {
		case len(s.inflight) > 0:
			return
		case len(s.frontier) > 0:
			s.finish(ErrBudgetExceeded)
			return
		case !s.conclude():
			return
		}
	}
}

// window returns how many queries may be in flight. It narrows as the
// budget runs out, down to one: the session then goes depth first, from the
// deepest probes waiting, so that it resolves cells, and finds
// differences, before the budget is gone, rather than spend it all on the
// upper levels that every session compares again.
func (s *Session) window() int {
	left := s.cfg.MaxSessionBytes - s.used()
	return min(s.cfg.MaxInFlight, max(1, left/(8*s.cfg.MaxPacketSize)))
}

// checkSize is the check size of the queries.
func (s *Session) checkSize() int { return s.cfg.CheckSize }

// sendQuery sends one query for the probes on top of the frontier: as
// many as fit in a datagram, and whose answers are likely to fit in one.
func (s *Session) sendQuery(now time.Time) {
	if s.v1 {
		s.sendQueryV1(now)
		return
	}
	t := s.tree
	seq := s.nextSeq
	s.nextSeq++
	c := s.checkSize()
	o := min(s.offset, 32-c)
	q := &query{attempts: 1, deadline: now.Add(s.cfg.RetryTimeout), checkSize: c, checkOffset: o}
	head := QueryV2{
		Session: s.id, Seq: seq, Shape: t.Config(), HashSize: s.cfg.HashSize,
		CheckSize: c, CheckOffset: o, MaxAnswerSize: s.cfg.MaxPacketSize,
	}
	budgetQ := s.cfg.MaxPacketSize - maxQueryV2Head
	budgetA := s.cfg.MaxPacketSize - maxAnswerV2Head
	var items []byte
	for len(s.frontier) > 0 {
		p := s.frontier[len(s.frontier)-1]
		it := ProbeItem{Kind: p.kind, Pos: p.pos, Depth: p.depth}
		switch p.kind {
		case ProbeRoot:
			root := s.view.root()
			it.Hash = root[:s.cfg.HashSize]
		case ProbeCells, ProbeSummaries:
			s.cells = s.view.cells(p.pos, p.depth, growCells(s.cells, cellCount(t.b, p.depth)))
			it.Checks = make([]byte, 0, len(s.cells)*c)
			for i := range s.cells {
				it.Checks = append(it.Checks, s.cells[i].hash[o:o+c]...)
			}
		}
		qs, as := probeItemSize(&it, t.b), s.estimateReport(&p)
		if len(q.items) > 0 && (qs > budgetQ || as > budgetA) {
			break
		}
		budgetQ -= qs
		budgetA -= as
		items = appendProbeItem(items, &it, t.b)
		q.items = append(q.items, p)
		s.frontier = s.frontier[:len(s.frontier)-1]
	}
	dg := appendQueryV2Head(nil, &head)
	dg = binary.AppendUvarint(dg, uint64(len(q.items)))
	q.datagram = append(dg, items...)
	s.inflight[seq] = q
	s.reserved += s.cfg.MaxPacketSize
	s.send(q.datagram)
}

// estimateReport guesses the size of the peer's report on p.
func (s *Session) estimateReport(p *pending) int {
	t := s.tree
	switch p.kind {
	case ProbeRoot:
		return overviewSize(t.b, p.depth, s.cfg.HashSize, s.cfg.CheckSize)
	case ProbeIDs:
		return 3 + min(s.view.count(p.pos)+2, t.leafSize)*(16-leafSkip(p.pos.Level, t.b))
	}
	n := cellCount(t.b, p.depth)
	size := 4 + cellBitmapSize(t.b, p.depth)
	if p.kind == ProbeSummaries {
		e := float64(p.multi)
		if e == 0 {
			e = max(1, math.Ldexp(s.dEst, -t.b*p.pos.Level))
		}
		size += min(n, int(math.Ceil(e))+1) * summarySize
	}
	return size
}

func (s *Session) send(dg []byte) {
	s.out = append(s.out, dg)
	s.stats.Queries++
	s.stats.BytesSent += len(dg)
}
