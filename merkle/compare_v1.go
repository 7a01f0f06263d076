package merkle

import (
	"fmt"
	"time"
)

// Protocol v1, which a session falls back to with a peer of an older
// release: it asks for the peer's node at each position that differs, a
// level at a time (the children's hashes of an inner node, the IDs of a
// leaf), and compares it with its own.

// askV1 sends, beside the v2 root query that went unanswered, the v1 root
// query: a peer of an older release answers only that one.
func (s *Session) askV1(now time.Time) {
	s.v1Asked = true
	root := s.tree.Root()
	q := &query{attempts: 1, deadline: now.Add(s.cfg.RetryTimeout), v1: true,
		items: []pending{{pos: Position{}, round: 1, hash: true}}}
	s.sendV1(q, []QueryItem{{Hash: root[:s.cfg.HashSize]}})
}

// sendV1 sends q, a v1 query of items.
func (s *Session) sendV1(q *query, items []QueryItem) {
	seq := s.nextSeq
	s.nextSeq++
	q.datagram = AppendQuery(nil, &Query{
		Session: s.id, Seq: seq, Shape: s.tree.Config(), HashSize: s.cfg.HashSize,
		MaxAnswerSize: s.cfg.MaxPacketSize, Items: items,
	})
	s.inflight[seq] = q
	s.reserved += s.cfg.MaxPacketSize
	s.send(q.datagram)
}

// sendQueryV1 sends one v1 query for the positions on top of the frontier:
// as many as fit in a datagram, and whose answers are likely to fit in one.
func (s *Session) sendQueryV1(now time.Time) {
	t := s.tree
	q := &query{attempts: 1, deadline: now.Add(s.cfg.RetryTimeout), v1: true}
	budgetQ := s.cfg.MaxPacketSize - maxQueryHead
	budgetA := s.cfg.MaxPacketSize - maxAnswerHead
	var items []QueryItem
	for len(s.frontier) > 0 {
		p := s.frontier[len(s.frontier)-1]
		it := QueryItem{Pos: p.pos}
		if p.hash {
			h := t.HashAt(p.pos)
			it.Hash = h[:s.cfg.HashSize]
		}
		qs := uvarintLen(uint64(p.pos.Level)<<1|1) + prefixSize(p.pos.Level, t.b) + len(it.Hash)
		as := s.estimateEntryV1(p.pos)
		if len(q.items) > 0 && (qs > budgetQ || as > budgetA) {
			break
		}
		budgetQ -= qs
		budgetA -= as
		items = append(items, it)
		q.items = append(q.items, p)
		s.frontier = s.frontier[:len(s.frontier)-1]
	}
	s.sendV1(q, items)
}

// estimateEntryV1 guesses the size of the peer's v1 entry for p from the
// local subtree there, on the grounds that the two are mostly alike.
func (s *Session) estimateEntryV1(p Position) int {
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

// HandleV1 takes the body of a wire.AEAnswer datagram (protocol v1) from the
// peer, the answer of a peer of an older release to the v1 root query the
// session sent when its v2 one went unanswered: the session then goes on in
// v1. Errors are as for Handle.
func (s *Session) HandleV1(now time.Time, body []byte) error {
	if s.done {
		return ErrSessionDone
	}
	a, err := DecodeAnswer(body)
	if err != nil {
		return err
	}
	q, err := s.accept(a.Session, a.Seq, len(body), true)
	if err != nil {
		return err
	}
	if !s.v1 {
		// The peer speaks v1 only: forget the v2 queries.
		s.v1 = true
		s.stats.Version = 1
		s.frontier = s.frontier[:0]
		for seq, other := range s.inflight {
			if !other.v1 {
				delete(s.inflight, seq)
				s.reserved -= s.cfg.MaxPacketSize
			}
		}
	}
	if err := s.useV1(a, q); err != nil {
		s.finish(err)
		return err
	}
	s.fill(now)
	return s.err
}

// useV1 compares the entries of a v1 answer with the local tree.
func (s *Session) useV1(a *Answer, q *query) error {
	if err := s.takeAnswer(q, a.Shape, a.HashSize, len(a.Entries)); err != nil {
		return err
	}
	for i := range a.Entries {
		p := q.items[i]
		s.stats.Rounds = max(s.stats.Rounds, p.round)
		var err error
		switch e := &a.Entries[i]; e.Kind {
		case EntryEqual:
			s.rootsEqual = s.rootsEqual || p.hash
		case EntryInner:
			err = s.compareInner(p, e)
		case EntryLeaf:
			r := Report{Kind: ReportIDs, Skip: e.Skip, Data: e.Data}
			err = s.compareIDs(p.pos, &r)
		}
		if err != nil || s.done {
			return err
		}
	}
	return nil
}

// compareInner compares the peer's children of p with the local ones:
// subtrees the peer lacks are Extra, differing ones are compared next.
func (s *Session) compareInner(p pending, e *Entry) error {
	t, h := s.tree, s.cfg.HashSize
	if p.pos.Level >= t.maxLevel {
		return fmt.Errorf("%w: inner node at the deepest level", ErrProtocol)
	}
	fan := 1 << t.b
	s.cells = t.cellsAt(p.pos, 1, growCells(s.cells, fan))
	k := 0
	var push []pending
	for i := range fan {
		c, ok := t.Child(p.pos, i)
		present := e.Children[i/8]&(1<<(i%8)) != 0
		if present && !ok {
			return fmt.Errorf("%w: child %d of level %d does not exist", ErrProtocol, i, p.pos.Level)
		}
		switch {
		case !ok:
		case !present && s.cells[i].count > 0:
			if !s.addExtra(c) {
				return nil
			}
		case present:
			theirs := e.Data[k*h : (k+1)*h]
			k++
			if s.cells[i].count == 0 || string(s.cells[i].hash[:h]) != string(theirs) {
				push = append(push, pending{pos: c, round: p.round + 1})
			}
		}
	}
	// Stack order: the lowest child is compared first.
	for i := len(push) - 1; i >= 0; i-- {
		s.frontier = append(s.frontier, push[i])
	}
	return nil
}
