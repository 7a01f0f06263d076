package merkle

import (
	"encoding/binary"
	"time"
)

// used returns the bytes counted against the budget: those sent, those of
// the answers used, and room for the answers in flight.
func (s *Session) used() int {
	return s.stats.BytesSent + s.stats.BytesReceived + s.reserved
}

// fill sends queries for the positions waiting, as many as MaxInFlight and
// the budget allow, and ends the session when nothing is left to compare.
func (s *Session) fill(now time.Time) {
	for len(s.inflight) < s.window() && len(s.frontier) > 0 {
		// Room for a full query and a full answer.
		if s.used()+2*s.cfg.MaxPacketSize > s.cfg.MaxSessionBytes {
			break
		}
		s.sendQuery(now)
	}
	if len(s.inflight) == 0 {
		if len(s.frontier) > 0 {
			s.finish(ErrBudgetExceeded)
		} else {
			s.finish(nil)
		}
	}
}

// window returns how many queries may be in flight. It narrows as the
// budget runs out, down to one: the session then goes depth first, from the
// deepest positions waiting, so that it reaches leaves, and finds
// differences, before the budget is gone, rather than spend it all on the
// upper levels that every session compares again.
func (s *Session) window() int {
	left := s.cfg.MaxSessionBytes - s.used()
	return min(s.cfg.MaxInFlight, max(1, left/(8*s.cfg.MaxPacketSize)))
}

// sendQuery sends one query for the positions on top of the frontier: as
// many as fit in a datagram, and whose answers are likely to fit in one.
func (s *Session) sendQuery(now time.Time) {
	t := s.tree
	seq := s.nextSeq
	s.nextSeq++
	q := &query{attempts: 1, deadline: now.Add(s.cfg.RetryTimeout)}
	head := Query{
		Session: s.id, Seq: seq, Shape: t.Config(), HashSize: s.cfg.HashSize,
		MaxAnswerSize: s.cfg.MaxPacketSize,
	}
	budgetQ := s.cfg.MaxPacketSize - maxQueryHead
	budgetA := s.cfg.MaxPacketSize - maxAnswerHead
	var items []byte
	for len(s.frontier) > 0 {
		p := s.frontier[len(s.frontier)-1]
		it := QueryItem{Pos: p.pos}
		if p.hash {
			h := t.HashAt(p.pos)
			it.Hash = h[:s.cfg.HashSize]
		}
		qs, as := queryItemSize(&it, t.b), s.estimateEntry(p.pos)
		if len(q.items) > 0 && (qs > budgetQ || as > budgetA) {
			break
		}
		budgetQ -= qs
		budgetA -= as
		items = appendQueryItem(items, &it, t.b)
		q.items = append(q.items, p)
		s.frontier = s.frontier[:len(s.frontier)-1]
	}
	dg := appendQueryHead(nil, &head)
	dg = binary.AppendUvarint(dg, uint64(len(q.items)))
	q.datagram = append(dg, items...)
	s.inflight[seq] = q
	s.reserved += s.cfg.MaxPacketSize
	s.send(q.datagram)
}

// estimateEntry guesses the size of the peer's entry for p from the local
// subtree there, on the grounds that the two are mostly alike.
func (s *Session) estimateEntry(p Position) int {
	t, h := s.tree, s.cfg.HashSize
	c := t.CountAt(p)
	leaf := func(n int) int { return 3 + min(n, t.leafSize)*(16-leafSkip(p.Level, t.b)) }
	inner := func(n int) int { return 1 + bitmapSize(t.b) + min(n, 1<<t.b)*h }
	switch {
	case c == 0: // nothing to go by
		return max(leaf(t.leafSize), inner(1<<t.b))
	case c > t.leafSize:
		return inner(c)
	default:
		return leaf(c + 2)
	}
}

func (s *Session) send(dg []byte) {
	s.out = append(s.out, dg)
	s.stats.Queries++
	s.stats.BytesSent += len(dg)
}
