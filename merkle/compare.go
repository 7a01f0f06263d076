package merkle

import "fmt"

// use compares the entries of an answer with the local tree.
func (s *Session) use(a *Answer, q *query) error {
	switch {
	case a.Shape != s.tree.Config():
		return fmt.Errorf("%w: %+v, ours %+v", ErrShapeMismatch, a.Shape, s.tree.Config())
	case a.HashSize != s.cfg.HashSize:
		return fmt.Errorf("%w: hash size %d, asked %d", ErrProtocol, a.HashSize, s.cfg.HashSize)
	case len(a.Entries) == 0 || len(a.Entries) > len(q.items):
		return fmt.Errorf("%w: %d entries for %d positions", ErrProtocol, len(a.Entries), len(q.items))
	}
	// The positions left out did not fit: ask again, first.
	for i := len(q.items) - 1; i >= len(a.Entries); i-- {
		s.frontier = append(s.frontier, q.items[i])
	}
	for i := range a.Entries {
		p := q.items[i]
		s.stats.Rounds = max(s.stats.Rounds, p.round)
		var err error
		switch e := &a.Entries[i]; e.Kind {
		case EntryEqual:
			// Nothing differs below p.
		case EntryInner:
			err = s.compareInner(p, e)
		case EntryLeaf:
			err = s.compareLeaf(p.pos, e)
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
	t.childView(p.pos, s.hashes, s.counts)
	k := 0
	var push []pending
	for i := range fan {
		c, ok := t.Child(p.pos, i)
		present := e.Children[i/8]&(1<<(i%8)) != 0
		if present && !ok {
			return fmt.Errorf("%w: child %d of level %d does not exist", ErrProtocol, i, p.pos.Level)
		}
		switch {
		case !present && s.counts[i] > 0:
			if !s.addExtra(c) {
				return nil
			}
		case present:
			theirs := e.Data[k*h : (k+1)*h]
			k++
			if s.counts[i] == 0 || string(s.hashes[i][:h]) != string(theirs) {
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

// compareLeaf compares the peer's IDs under p with the local ones.
func (s *Session) compareLeaf(p Position, e *Entry) error {
	t := s.tree
	nbits := p.Level * t.b
	if int(e.Skip) > leafSkip(p.Level, t.b) {
		return fmt.Errorf("%w: leaf at level %d skips %d bytes", ErrProtocol, p.Level, e.Skip)
	}
	theirs := e.LeafLen()
	for j := range theirs {
		id := e.LeafID(j, p.Prefix)
		if !hasPrefix(&id, &p.Prefix, nbits) {
			return fmt.Errorf("%w: leaf ID %v outside its subtree", ErrProtocol, id)
		}
	}
	// Merge the two ascending lists.
	j := 0
	for id := range t.IDs(p) {
		for ; j < theirs; j++ {
			other := e.LeafID(j, p.Prefix)
			if other.Compare(id) >= 0 {
				break
			}
			if !s.addDifference(&s.missing, other) {
				return nil
			}
		}
		if j < theirs && e.LeafID(j, p.Prefix) == id {
			j++
			continue
		}
		if !s.addDifference(&s.extra, id) {
			return nil
		}
	}
	for ; j < theirs; j++ {
		if !s.addDifference(&s.missing, e.LeafID(j, p.Prefix)) {
			return nil
		}
	}
	return nil
}

// addExtra adds every local ID under p to Extra; false if that ended the
// session.
func (s *Session) addExtra(p Position) bool {
	for id := range s.tree.IDs(p) {
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
