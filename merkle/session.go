package merkle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/hearsay-io/hearsay/wire"
	"math/rand/v2"
	"slices"
	"time"
)

// Errors a session ends with (Result.Err), or that Handle returns for a
// datagram it did not use. Every one but ErrStaleAnswer ends the session;
// the IDs it found until then are still reported.
var (
	// ErrTimeout: a query went unanswered MaxAttempts times; the peer is
	// down or unreachable.
	ErrTimeout = errors.New("merkle: peer did not answer")
	// ErrBudgetExceeded: comparing further would pass MaxSessionBytes.
	ErrBudgetExceeded = errors.New("merkle: session byte budget exhausted")
	// ErrTooManyDifferences: Missing or Extra reached MaxDifferences.
	ErrTooManyDifferences = errors.New("merkle: too many differences for one session")
	// ErrShapeMismatch: the peer's tree has another shape (TreeConfig), so
	// the trees cannot be compared.
	ErrShapeMismatch = errors.New("merkle: peer's tree has another shape")
	// ErrProtocol: the peer's answer contradicts the protocol.
	ErrProtocol = errors.New("merkle: protocol violation by peer")
	// ErrStaleAnswer: an answer to another session or to a query already
	// answered (a duplicate, or a late answer to a query resent since). It
	// is dropped and the session goes on.
	ErrStaleAnswer = errors.New("merkle: stale answer")
	// ErrSessionDone: the session has ended; nothing more is accepted.
	ErrSessionDone = errors.New("merkle: session has ended")
)

// Defaults of SessionConfig and ResponderConfig.
const (
	DefaultMaxPacketSize   = 1400 // an Ethernet MTU less IP and UDP headers
	DefaultMaxInFlight     = 32
	DefaultRetryTimeout    = 500 * time.Millisecond
	DefaultMaxAttempts     = 10
	DefaultMaxSessionBytes = 1 << 20
	DefaultMaxDifferences  = 1 << 16
)

// SessionConfig configures a Session. Zero values take the defaults written
// beside each field; Rand is required.
type SessionConfig struct {
	// Rand chooses the session's ID, which tells its answers from those of
	// the previous session with the same peer. Required; a session draws
	// one number from it.
	Rand *rand.Rand
	// MaxPacketSize bounds every query, and the answers the peer may send,
	// in bytes. From 512 to 65507; it must hold the largest node of the
	// tree's shape (a full leaf or a full inner node). Default 1400.
	MaxPacketSize int
	// HashSize is how many bytes of each SHA-256 travel: 4 to 32. A
	// difference goes unseen in a session only if two truncated hashes of
	// different subtrees match, with odds of 2^-(8·HashSize) per compared
	// node. Default 8.
	HashSize int
	// MaxInFlight bounds the queries awaiting an answer. More shortens the
	// session when differences are many; each costs the peer one datagram
	// at once. Default 32.
	MaxInFlight int
	// RetryTimeout is how long a query waits for its answer before it is
	// sent again. Default 500ms.
	RetryTimeout time.Duration
	// MaxAttempts is how many times a query is sent before the session
	// gives up with ErrTimeout: the session ends at the latest
	// MaxAttempts·RetryTimeout after the peer last answered. Default 10,
	// which survives 30% loss each way (a query and its answer both get
	// through with odds 0.49; ten misses in a row have odds 0.1%).
	MaxAttempts int
	// MaxSessionBytes bounds the bytes of the session's queries and of the
	// answers it uses. Comparing 10^6 IDs with 100 differences takes about
	// 30 KB. A session that runs out returns ErrBudgetExceeded with the
	// differences found so far, deepest subtrees first, so that a series of
	// sessions converges. Default 1 MiB.
	MaxSessionBytes int
	// MaxDifferences bounds Missing and Extra each, and so the session's
	// memory. Default 65,536 (1 MiB of IDs each).
	MaxDifferences int
}

func (c *SessionConfig) setDefaults() {
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = DefaultMaxPacketSize
	}
	if c.HashSize == 0 {
		c.HashSize = DefaultHashSize
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.RetryTimeout == 0 {
		c.RetryTimeout = DefaultRetryTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxSessionBytes == 0 {
		c.MaxSessionBytes = DefaultMaxSessionBytes
	}
	if c.MaxDifferences == 0 {
		c.MaxDifferences = DefaultMaxDifferences
	}
}

// Sizes of the fixed parts of the datagrams, at most.
const (
	maxQueryHead  = wire.HeaderSize + 4 + 10 + 3 + 3 + 3 // ... seq, shape, max answer, item count
	maxAnswerHead = wire.HeaderSize + 4 + 10 + 3 + 3     // ... seq, shape, entry count
)

// maxEntrySize is the largest answer entry of a tree shape.
func maxEntrySize(shape TreeConfig, hashSize int) int {
	inner := 1 + bitmapSize(shape.FanoutBits) + (1<<shape.FanoutBits)*hashSize
	leaf := 3 + shape.LeafSize*16
	return max(inner, leaf)
}

func (c *SessionConfig) validate(shape TreeConfig) error {
	switch {
	case c.Rand == nil:
		return fmt.Errorf("%w: SessionConfig.Rand is required", ErrInvalidConfig)
	case c.MaxPacketSize < wire.MinPacketSize || c.MaxPacketSize > wire.MaxUDPPayload:
		return fmt.Errorf("%w: MaxPacketSize %d out of range %d..%d", ErrInvalidConfig, c.MaxPacketSize, wire.MinPacketSize, wire.MaxUDPPayload)
	case c.HashSize < MinHashSize || c.HashSize > MaxHashSize:
		return fmt.Errorf("%w: HashSize %d out of range %d..%d", ErrInvalidConfig, c.HashSize, MinHashSize, MaxHashSize)
	case maxAnswerHead+maxEntrySize(shape, c.HashSize) > c.MaxPacketSize:
		return fmt.Errorf("%w: MaxPacketSize %d cannot hold a node of shape %+v with %d-byte hashes", ErrInvalidConfig, c.MaxPacketSize, shape, c.HashSize)
	case c.MaxInFlight < 1:
		return fmt.Errorf("%w: MaxInFlight %d is below 1", ErrInvalidConfig, c.MaxInFlight)
	case c.RetryTimeout <= 0:
		return fmt.Errorf("%w: RetryTimeout %v is not positive", ErrInvalidConfig, c.RetryTimeout)
	case c.MaxAttempts < 1:
		return fmt.Errorf("%w: MaxAttempts %d is below 1", ErrInvalidConfig, c.MaxAttempts)
	case c.MaxSessionBytes < 2*c.MaxPacketSize:
		return fmt.Errorf("%w: MaxSessionBytes %d is below two packets", ErrInvalidConfig, c.MaxSessionBytes)
	case c.MaxDifferences < 1:
		return fmt.Errorf("%w: MaxDifferences %d is below 1", ErrInvalidConfig, c.MaxDifferences)
	}
	return nil
}

// Stats counts what a session did.
type Stats struct {
	Queries       int // query datagrams sent, resends included
	Resends       int // queries sent again after RetryTimeout
	Answers       int // answers used
	Stale         int // answers dropped as stale
	BytesSent     int // bytes of the queries, headers included
	BytesReceived int // bytes of the answers, stale ones included
	Rounds        int // the longest chain of queries each asked because of the previous one's answer
}

// Result is the outcome of a session.
type Result struct {
	// Missing lists the IDs the peer holds and this node lacks: pull them.
	Missing []ID
	// Extra lists the IDs this node holds and the peer lacks: push them,
	// or tell the peer to pull them.
	Extra []ID
	// Err is nil if the trees were compared in full: then Missing and Extra
	// are all the differences (as of the moments the subtrees were
	// compared). Otherwise they are those found before the session ended,
	// all true differences.
	Err   error
	Stats Stats
}

// pending is a position waiting to be compared.
type pending struct {
	pos   Position
	round int
	hash  bool // send the local hash along (the root only)
}

type query struct {
	items    []pending
	datagram []byte
	deadline time.Time
	attempts int
}

// Session reconciles a local tree with one peer's: the initiator's side of
// anti-entropy, as a deterministic state machine. It owns no goroutine,
// socket or timer and never reads the clock.
//
// It compares the roots, then descends only into the subtrees whose hashes
// differ, asking the peer's Responder for its nodes there a level at a time;
// where either side has a leaf, the peer sends its IDs and the session
// compares them with its own. It ends when every differing subtree has been
// compared, with Missing (what this node lacks) and Extra (what the peer
// lacks).
//
// Drive it with Start, Handle and Tick; after each, send the datagrams
// Ready returns to the peer, and call Tick again at NextTick. Keep at most
// one session per peer: start the next only when Done. The tree may change
// between inputs (new messages, expiry): each subtree is compared as it is
// when its answer arrives, so an ID inserted during the session may show in
// Missing (the pull finds it held) and one removed may show in Extra.
// A Session is not safe for concurrent use.
type Session struct {
	cfg  SessionConfig
	tree *Tree
	id   uint32

	frontier []pending // a stack: the deepest positions are compared first
	inflight map[uint64]*query
	nextSeq  uint64
	out      [][]byte
	started  bool
	done     bool
	reserved int // bytes kept in the budget for the answers in flight

	missing, extra []ID
	err            error
	stats          Stats

	hashes []Hash // scratch of compareInner
	counts []int
}

// NewSession returns a session that will reconcile tree with a peer's.
func NewSession(tree *Tree, cfg SessionConfig) (*Session, error) {
	cfg.setDefaults()
	if err := cfg.validate(tree.Config()); err != nil {
		return nil, err
	}
	fan := 1 << tree.b
	return &Session{
		cfg:      cfg,
		tree:     tree,
		id:       cfg.Rand.Uint32(),
		inflight: make(map[uint64]*query),
		hashes:   make([]Hash, fan),
		counts:   make([]int, fan),
	}, nil
}

// ID returns the session's ID, which its queries and answers carry.
func (s *Session) ID() uint32 { return s.id }

// Start sends the first query: the local root hash. If the peer's root is
// the same, its one-entry answer ends the session.
func (s *Session) Start(now time.Time) {
	if s.started {
		return
	}
	s.started = true
	s.frontier = append(s.frontier, pending{pos: Position{}, round: 1, hash: true})
	s.fill(now)
}

// Ready returns the datagrams to send to the peer now, in order, and
// forgets them. The caller may keep them: the session does not reuse them.
func (s *Session) Ready() [][]byte {
	out := s.out
	s.out = nil
	return out
}

// Done reports whether the session has ended; Result then holds its
// outcome.
func (s *Session) Done() bool { return s.done }

// Result returns the session's outcome. Missing and Extra are final once
// Done; before, they hold what was found so far.
func (s *Session) Result() Result {
	return Result{Missing: s.missing, Extra: s.extra, Err: s.err, Stats: s.stats}
}

// NextTick returns when Tick must next be called: the earliest deadline of
// the queries in flight. It is the zero time when nothing is in flight.
func (s *Session) NextTick() time.Time {
	var next time.Time
	for _, q := range s.inflight {
		if next.IsZero() || q.deadline.Before(next) {
			next = q.deadline
		}
	}
	return next
}

// Tick resends the queries whose answers are overdue, and ends the session
// with ErrTimeout if one has been sent MaxAttempts times.
func (s *Session) Tick(now time.Time) {
	if s.done || !s.started {
		return
	}
	for _, seq := range s.sortedInflight() {
		q := s.inflight[seq]
		if now.Before(q.deadline) {
			continue
		}
		if q.attempts >= s.cfg.MaxAttempts {
			s.finish(fmt.Errorf("%w: query %d unanswered after %d attempts", ErrTimeout, seq, q.attempts))
			return
		}
		if s.used()+len(q.datagram) > s.cfg.MaxSessionBytes {
			s.finish(ErrBudgetExceeded)
			return
		}
		q.attempts++
		q.deadline = now.Add(s.cfg.RetryTimeout)
		s.send(q.datagram)
		s.stats.Resends++
	}
}

// sortedInflight returns the sequence numbers in flight, in order, so that
// resends are deterministic.
func (s *Session) sortedInflight() []uint64 {
	seqs := make([]uint64, 0, len(s.inflight))
	for seq := range s.inflight {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs
}

// Handle takes the body of a wire.AEAnswer datagram from the peer. An error that wraps
// ErrMalformed or ErrStaleAnswer means the datagram was dropped and the
// session goes on; any other error has ended the session (as Result.Err
// also says).
func (s *Session) Handle(now time.Time, body []byte) error {
	if s.done {
		return ErrSessionDone
	}
	a, err := DecodeAnswer(body)
	if err != nil {
		return err
	}
	if a.Session != s.id {
		return fmt.Errorf("%w: session %08x, not %08x", ErrStaleAnswer, a.Session, s.id)
	}
	s.stats.BytesReceived += wire.HeaderSize + len(body)
	q, ok := s.inflight[a.Seq]
	if !ok {
		s.stats.Stale++
		return fmt.Errorf("%w: query %d", ErrStaleAnswer, a.Seq)
	}
	delete(s.inflight, a.Seq)
	s.reserved -= s.cfg.MaxPacketSize
	s.stats.Answers++
	if err := s.use(a, q); err != nil {
		s.finish(err)
		return err
	}
	if s.done {
		return s.err
	}
	s.fill(now)
	return s.err
}

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
			if !s.addMissing(other) {
				return nil
			}
		}
		if j < theirs && e.LeafID(j, p.Prefix) == id {
			j++
			continue
		}
		if !s.addExtra1(id) {
			return nil
		}
	}
	for ; j < theirs; j++ {
		if !s.addMissing(e.LeafID(j, p.Prefix)) {
			return nil
		}
	}
	return nil
}

// addExtra adds every local ID under p to Extra; false if that ended the
// session.
func (s *Session) addExtra(p Position) bool {
	for id := range s.tree.IDs(p) {
		if !s.addExtra1(id) {
			return false
		}
	}
	return true
}

func (s *Session) addExtra1(id ID) bool {
	if len(s.extra) >= s.cfg.MaxDifferences {
		s.finish(ErrTooManyDifferences)
		return false
	}
	s.extra = append(s.extra, id)
	return true
}

func (s *Session) addMissing(id ID) bool {
	if len(s.missing) >= s.cfg.MaxDifferences {
		s.finish(ErrTooManyDifferences)
		return false
	}
	s.missing = append(s.missing, id)
	return true
}

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

func (s *Session) finish(err error) {
	if s.done {
		return
	}
	s.done = true
	s.err = err
	s.frontier = nil
	clear(s.inflight)
	s.reserved = 0
}
