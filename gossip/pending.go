package gossip

import (
	"bytes"
	"crypto/sha256"
	"net/netip"
	"slices"
	"time"
)

// The receiving side of origin signatures. A signing core holds every
// message it receives back, as pending: marked held in its digest (so it is
// not pulled twice) but not cached, logged, delivered nor relayed, until a
// verified statement of its origin covers its range and every message of
// the range is here; then the IDs are hashed in order and, if they match
// the signed hash, all are accepted in order.
//
// A forger holding the cluster passphrase can still send messages under
// another origin's sequence numbers; they make the range mismatch. A node
// cannot tell which were forged from the hash alone, so it keeps the
// candidates it has and un-holds the range: its next pulls bring the
// genuine messages from other peers as second candidates at the forged
// numbers, and the one choice per number that matches the hash (search)
// is accepted. The candidates not chosen were
// forged: dropped as bad_signature, and their senders penalised
// (penalty.go). Candidates no statement covers within unsignedRounds are
// dropped as unsigned, un-held, and their senders penalised.

// Bounds on what is held back. Past them a message is dropped
// (DropPendingFull) and not marked held: it is pulled again later.
const (
	maxPendingPerOrigin = 8 * MaxStatementRange  // about 1.6 s at 20,000 messages/s
	maxPending          = 16 * MaxStatementRange // about 20 MB of 300-byte messages
	maxPendingPerSender = 4 * MaxStatementRange  // a forger fills half an origin's at most
	maxCandidates       = 3                      // per sequence number
	maxCombinations     = 64                     // choices tried one by one when a range mismatches (search)
)

// slabSize is how many single candidates are allocated together, at most.
const slabSize = 256

// unsignedRounds is how long a candidate waits for a statement, in rounds:
// twice as long as gossip offers a message (CacheRounds), as a statement
// comes with its range or soon after it. coveredRounds is how long a
// verified statement, and the candidates it covers, wait for the rest of
// its range: ReassemblyTimeout, as long as a large message's chunks wait
// for each other, since a loaded node fills its gaps late (by
// anti-entropy, at worst) and giving up a range costs pulling all of it
// again.
func (c *Core) unsignedRounds() uint64 { return 2 * uint64(c.cfg.CacheRounds) }

func (c *Core) coveredRounds() uint64 {
	return max(c.unsignedRounds(), uint64(c.cfg.ReassemblyTimeout/c.cfg.Interval))
}

// pending is what a signing core holds back.
type pending struct {
	origins map[NodeID]*pendingOrigin
	count   int // candidates in all
	// bySender counts the candidates each peer sent: a forger cannot fill
	// all that is held back for an origin.
	bySender map[netip.AddrPort]int
	hasher   rangeHasher
	choice   []int // scratch: the candidate chosen at each sequence number of a range
}

// pendingOrigin is what is held back of one origin.
type pendingOrigin struct {
	cands map[uint64][]candidate
	slab  []candidate // where single candidates are cut from, a block at a time
	block int         // the size of the next block: doubling, up to slabSize
	count int
	stmts []coverage
}

// candidate is a message held back: one of possibly several under one
// sequence number.
type candidate struct {
	id    MessageID
	enc   []byte // a private copy of its encoding
	from  netip.AddrPort
	round uint64
}

// coverage is a verified statement whose range is not yet accepted.
type coverage struct {
	first, end uint64 // the range [first, end); the statement is at end
	hash       [sha256.Size]byte
	have       uint64 // sequence numbers of the range with a candidate
	round      uint64
}

func (p *pending) origin(id NodeID) *pendingOrigin {
	if p.origins == nil {
		p.origins = make(map[NodeID]*pendingOrigin)
	}
	po := p.origins[id]
	if po == nil {
		po = &pendingOrigin{cands: make(map[uint64][]candidate)}
		p.origins[id] = po
	}
	return po
}

func (po *pendingOrigin) covering(seq uint64) *coverage {
	for i := range po.stmts {
		if st := &po.stmts[i]; st.first <= seq && seq < st.end {
			return st
		}
	}
	return nil
}

// acceptSigned holds back an admissible message of a signing cluster
// until a statement verifies it.
func (c *Core) acceptSigned(now time.Time, wm *wireMessage) {
	id, fresh := c.unseen(now, wm)
	if !fresh {
		return
	}
	if wm.origin == c.cfg.ID && c.sign.runFirst != 0 && wm.seq >= c.sign.runFirst {
		// This run's numbers are all this node's own, and all seen.
		c.forged(c.from)
		return
	}
	p := &c.pend
	po := p.origin(wm.origin)
	cs := po.cands[wm.seq]
	for _, cd := range cs {
		if cd.id == id {
			// Again, after a mismatch un-held the range: held again.
			c.stats.Duplicates++
			c.held.add(wm.origin, wm.seq, c.round)
			return
		}
	}
	if len(cs) >= maxCandidates || po.count >= maxPendingPerOrigin || p.count >= maxPending ||
		p.bySender[c.from] >= maxPendingPerSender {
		c.drop(DropPendingFull, 1)
		return
	}
	st := po.covering(wm.seq)
	if st == nil && po.isStatementSeq(wm.seq) {
		c.forged(c.from)
		return
	}
	cd := candidate{id: id, enc: bytes.Clone(wm.raw), from: c.from, round: c.round}
	if len(cs) == 0 {
		// The common case, one candidate: no allocation of its own.
		if len(po.slab) == 0 {
			// Small blocks first: a simulator holds a pendingOrigin per
			// node and origin.
			po.block = min(max(2*po.block, 4), slabSize)
			po.slab = make([]candidate, po.block)
		}
		cs, po.slab = po.slab[:0:1], po.slab[1:]
	}
	po.cands[wm.seq] = append(cs, cd)
	po.count++
	p.count++
	if p.bySender == nil {
		p.bySender = make(map[netip.AddrPort]int)
	}
	p.bySender[c.from]++
	c.trustStats.Pending++
	c.held.add(wm.origin, wm.seq, c.round)
	if st == nil {
		return
	}
	if len(cs) == 0 {
		st.have++
	}
	if st.have == st.end-st.first {
		c.resolve(now, wm.origin, po, st)
	}
}

// unseen computes wm's ID and reports whether the seen filter lacks it; a
// message seen already is counted as a duplicate and marked held.
func (c *Core) unseen(now time.Time, wm *wireMessage) (MessageID, bool) {
	id := wm.knownID
	if !wm.private {
		x := hashers.Get().(*idHasher)
		id = wm.id(x)
		hashers.Put(x)
	}
	return id, c.unseenID(now, wm, id)
}

// unseenID is unseen for a message whose ID is known.
func (c *Core) unseenID(now time.Time, wm *wireMessage, id MessageID) bool {
	if seen, err := c.cfg.Filter.Contains(id); err != nil {
		c.filterDrop(err)
		return false
	} else if seen {
		c.stats.Duplicates++
		c.held.add(wm.origin, wm.seq, c.round)
		c.duplicate(now, id)
		return false
	}
	return true
}

// isStatementSeq reports whether seq is the number of a verified statement
// still waiting for its range: no message can be there.
func (po *pendingOrigin) isStatementSeq(seq uint64) bool {
	for i := range po.stmts {
		if po.stmts[i].end == seq {
			return true
		}
	}
	return false
}

// acceptStatement checks a statement's key and signature and accepts it
// like a message, never delivered; a signing core then verifies the range
// it covers.
func (c *Core) acceptStatement(now time.Time, wm *wireMessage) {
	id, fresh := c.unseen(now, wm)
	if !fresh {
		return
	}
	pub := wm.stmt.pub
	if pub == nil {
		if pub = c.keyOf(wm.origin); pub == nil {
			c.waitForKey(wm, id)
			return
		}
	}
	if !verifyStatement(wm, pub) {
		// Not held: the genuine statement at this number is still pulled.
		c.forged(c.from)
		return
	}
	if wm.stmt.pub != nil && c.keyOf(wm.origin) == nil {
		c.keys.learnKey(wm.origin, pub)
		defer c.keyLearned(now, wm.origin)
	}
	if _, err := c.cfg.Filter.Add(id, c.expiry(wm.created)); err != nil {
		c.filterDrop(err)
		return
	}
	c.trustStats.StatementsIn++
	e := c.newEntry(*wm, id, bytes.Clone(wm.raw))
	c.logAccepted(e)
	c.addToCache(e)
	c.held.add(wm.origin, wm.seq, c.round)
	if !c.signing() {
		return
	}
	p := &c.pend
	po := p.origin(wm.origin)
	// Anything under the statement's own number was forged.
	if cs := po.cands[wm.seq]; len(cs) > 0 {
		for _, cd := range cs {
			c.forged(cd.from)
		}
		po.remove(p, wm.seq)
	}
	if len(po.stmts) >= maxPendingPerOrigin/16 {
		c.drop(DropPendingFull, 1)
		return
	}
	st := coverage{first: wm.seq - wm.stmt.n, end: wm.seq, round: c.round}
	copy(st.hash[:], wm.stmt.hash)
	for k := st.first; k < st.end; k++ {
		if len(po.cands[k]) > 0 {
			st.have++
		}
	}
	po.stmts = append(po.stmts, st)
	if st.have == st.end-st.first {
		c.resolve(now, wm.origin, po, &po.stmts[len(po.stmts)-1])
	}
}

// remove forgets the candidates at seq.
func (po *pendingOrigin) remove(p *pending, seq uint64) {
	cs := po.cands[seq]
	n := len(cs)
	for _, cd := range cs {
		if p.bySender[cd.from]--; p.bySender[cd.from] <= 0 {
			delete(p.bySender, cd.from)
		}
	}
	clear(cs) // a slab's slot: let go of the encoding
	delete(po.cands, seq)
	po.count -= n
	p.count -= n
}

// resolve verifies the range of st, every number of which has a
// candidate: the one choice of candidates whose IDs hash to the signed
// hash is accepted, in order; the candidates not chosen were forged. With
// no such choice, the range is un-held to bring other candidates.
func (c *Core) resolve(now time.Time, origin NodeID, po *pendingOrigin, st *coverage) {
	p := &c.pend
	n := int(st.end - st.first)
	p.choice = append(p.choice[:0], make([]int, n)...)
	if !c.search(po, st) {
		// A forgery somewhere in the range: pull every number again, and
		// try once more candidates arrive.
		c.trustStats.RangeMismatches++
		full := false
		for k := st.first; k < st.end; k++ {
			full = full || len(po.cands[k]) == maxCandidates
		}
		if full {
			// No room for the candidate that would settle it: start the
			// range afresh.
			for k := st.first; k < st.end; k++ {
				c.drop(DropBadSignature, uint64(len(po.cands[k])))
				po.remove(p, k)
			}
			st.have = 0
		}
		for k := st.first; k < st.end; k++ {
			c.held.remove(origin, k)
		}
		return
	}
	first := st.first
	po.dropCoverage(st)
	from, fromSub := c.from, c.fromSub
	for i := range n {
		k := first + uint64(i)
		cs := po.cands[k]
		for j, cd := range cs {
			if j != p.choice[i] {
				c.forged(cd.from)
			}
		}
		chosen := cs[p.choice[i]]
		po.remove(p, k)
		wm, _, err := decodeMessage(chosen.enc)
		if err != nil {
			continue // decoded before it was held
		}
		wm.knownID, wm.private = chosen.id, true
		c.trustStats.Verified++
		c.from, c.fromSub = chosen.from, c.isSubscription(chosen.from)
		if c.admissible(now, &wm) {
			c.acceptVerified(now, wm)
		}
		c.held.add(origin, k, c.round)
	}
	c.from, c.fromSub = from, fromSub
	if po.count == 0 && len(po.stmts) == 0 && po.block < slabSize {
		// A quiet origin: its state is freed now (a simulator holds one
		// per node and origin). A busy one's stays, empty, for its next
		// range, until expirePending frees it.
		delete(p.origins, origin)
	}
}

// search looks for the choice of one candidate per number of st's range
// whose IDs hash to the signed hash, and leaves it in pend.choice. It tries
// every choice when there are few (the first is the common case: no
// forgery, one candidate each); else the choices that leave out one
// sender's candidates, then two senders': a forger is one peer, or a few, and the
// genuine messages come from the others.
func (c *Core) search(po *pendingOrigin, st *coverage) bool {
	combos := 1
	for k := st.first; k < st.end && combos <= maxCombinations; k++ {
		combos *= len(po.cands[k])
	}
	if combos <= maxCombinations {
		for try := range combos {
			// The try-th choice, counting in mixed radix.
			t := try
			if c.tryChoice(po, st, func(_ int, cs []candidate) int {
				j := t % len(cs)
				t /= len(cs)
				return j
			}) {
				return true
			}
		}
		return false
	}
	var senders []netip.AddrPort
	for k := st.first; k < st.end && len(senders) < maxSenders; k++ {
		for _, cd := range po.cands[k] {
			if !slices.Contains(senders, cd.from) && len(senders) < maxSenders {
				senders = append(senders, cd.from)
			}
		}
	}
	without := func(a, b netip.AddrPort) func(int, []candidate) int {
		return func(_ int, cs []candidate) int {
			for j, cd := range cs {
				if cd.from != a && cd.from != b {
					return j
				}
			}
			return 0
		}
	}
	for i, a := range senders {
		if c.tryChoice(po, st, without(a, a)) {
			return true
		}
		for _, b := range senders[i+1:] {
			if c.tryChoice(po, st, without(a, b)) {
				return true
			}
		}
	}
	return false
}

// maxSenders bounds the senders whose candidates search leaves out.
const maxSenders = 8

// tryChoice hashes the choice pick makes at each number of st's range and
// reports whether it matches.
func (c *Core) tryChoice(po *pendingOrigin, st *coverage, pick func(i int, cs []candidate) int) bool {
	p := &c.pend
	p.hasher.reset()
	for i := range p.choice {
		cs := po.cands[st.first+uint64(i)]
		p.choice[i] = pick(i, cs)
		p.hasher.add(&cs[p.choice[i]].id)
	}
	var sum [sha256.Size]byte
	p.hasher.sum(&sum)
	return sum == st.hash
}

// dropCoverage forgets a statement whose range is settled.
func (po *pendingOrigin) dropCoverage(st *coverage) {
	for i := range po.stmts {
		if &po.stmts[i] == st {
			po.stmts = append(po.stmts[:i], po.stmts[i+1:]...)
			return
		}
	}
}

// forged counts a message or statement that failed its origin's signature
// and penalises the peer that sent it.
func (c *Core) forged(from netip.AddrPort) {
	c.drop(DropBadSignature, 1)
	c.penalise(from)
}

// expirePending gives up, once a round, candidates and statements that
// waited too long (unsignedRounds, coveredRounds): the candidates are dropped and un-held, so that
// genuine messages are pulled (or repaired) later.
func (c *Core) expirePending() {
	p := &c.pend
	if len(p.origins) == 0 {
		return
	}
	// Candidates that arrived before these rounds are given up (0: none).
	var unsigned, covered uint64
	if c.round > c.unsignedRounds() {
		unsigned = c.round - c.unsignedRounds()
	}
	if c.round > c.coveredRounds() {
		covered = c.round - c.coveredRounds()
	}
	reoffer := c.round%reofferRounds == 0
	// In a fixed order, so that runs repeat: un-holding merges gaps.
	origins := make([]NodeID, 0, len(p.origins))
	for origin := range p.origins {
		origins = append(origins, origin)
	}
	slices.SortFunc(origins, func(a, b NodeID) int { return bytes.Compare(a[:], b[:]) })
	var expired, unheld []uint64
	for _, origin := range origins {
		po := p.origins[origin]
		kept := po.stmts[:0]
		for _, st := range po.stmts {
			if st.round >= covered {
				kept = append(kept, st)
			}
		}
		po.stmts = kept
		expired, unheld = expired[:0], unheld[:0]
		for seq, cs := range po.cands {
			st := po.covering(seq)
			switch {
			case cs[0].round < unsigned && (st == nil || cs[0].round < covered):
				expired = append(expired, seq)
			case st == nil && reoffer && cs[0].round+reofferRounds <= c.round:
				unheld = append(unheld, seq)
			}
		}
		slices.Sort(expired)
		for _, seq := range expired {
			st := po.covering(seq)
			for _, cd := range po.cands[seq] {
				c.drop(DropUnsigned, 1)
				if st == nil {
					// Relayed with no statement: an honest signing peer
					// relays only what it verified.
					c.penalise(cd.from)
				}
			}
			if st != nil {
				st.have--
			}
			po.remove(p, seq)
			c.held.remove(origin, seq)
		}
		// Kept, but offered again: a forger's message at the number of
		// a statement would otherwise hide the statement, and hold its
		// whole range back, until the candidates expired.
		slices.Sort(unheld)
		for _, seq := range unheld {
			c.held.remove(origin, seq)
		}
		if po.count == 0 && len(po.stmts) == 0 {
			delete(p.origins, origin)
		}
	}
}

// reofferRounds is how often a candidate that no statement covers is
// un-held, so that peers offer its number again: whatever is genuinely
// there, a statement included, comes as another candidate.
const reofferRounds = 2

// PendingMessages returns the number of messages held back for want of a
// statement.
func (c *Core) PendingMessages() int { return c.pend.count }
