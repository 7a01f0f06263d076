package merkle

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hearsay-io/hearsay/wire"
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
	// ErrUnverified: the comparison ended, but the peer's root is not the
	// local one with Missing added and Extra removed, even after another
	// pass: a tree changed during the session (gossip went on), or the
	// peer lies. What was found is reported; the next session sees the
	// rest.
	ErrUnverified = errors.New("merkle: differences found do not account for the peer's root")
)

// Stats counts what a session did.
type Stats struct {
	Queries       int // query datagrams sent, resends included
	Resends       int // queries sent again after RetryTimeout
	Answers       int // answers used
	Stale         int // answers dropped as stale
	BytesSent     int // bytes of the queries, headers included
	BytesReceived int // bytes of the answers, stale ones included
	Rounds        int // the longest chain of queries each asked because of the previous one's answer
	Passes        int // comparisons started again after a failed final check
	// Version is the protocol the session spoke: 2, or 1 with a peer of
	// an older release, which answered only the v1 root query.
	Version int
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

// pending is a probe waiting to be sent.
type pending struct {
	kind  ProbeKind
	pos   Position
	depth int
	multi int // ProbeSummaries: the differences the cell is known to hold, if more than one
	round int
	hash  bool // v1: send the local hash along (the root only)
}

type query struct {
	items                  []pending
	v1                     bool // a v1 query (wire.AEQuery)
	checkSize, checkOffset int
	datagram               []byte
	deadline               time.Time
	attempts               int
}

// Session reconciles a local tree with one peer's: the initiator's side of
// anti-entropy, as a deterministic state machine. It owns no goroutine,
// socket or timer and never reads the clock.
//
// It speaks protocol v2 (wire.AEQueryV2): it compares the roots; if they
// differ, the peer's checks of the 64 cells two levels down tell which
// differ and about how many differences there are; each cell that differs
// is then split into as many cells as make most of them hold at most one
// difference, and the peer sends the summaries of those that differ, each
// of which names its one difference outright. Cells holding more are split
// again; small ones are compared ID by ID. It ends when every differing cell
// has been resolved and the local root with Missing added and Extra removed
// is the peer's root, with Missing (what this node lacks) and Extra (what
// the peer lacks).
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

	// What the comparison has learnt so far.
	peerRoot    []byte  // the peer's root hash, from its overview
	rootsEqual  bool    // the peer said its root is ours
	dEst        float64 // estimated number of differences
	saturated   bool    // every cell of the latest sample differed: dEst is a floor
	scoutLevel  int     // the level of the cells of the latest bitmap-only sample...
	scoutDiffer int     // ...how many of them differ...
	scoutCells  int     // ...out of how many
	pass        int     // 1, then 2 after a failed final check...
	view        view    // the local tree with the differences of earlier passes applied
	offset      int     // the pass's check offset
	v1Asked     bool    // the v1 root query was sent too
	v1          bool    // the peer answered it: the session speaks v1

	cells []cell // scratch
}

// NewSession returns a session that will reconcile tree with a peer's.
func NewSession(tree *Tree, cfg SessionConfig) (*Session, error) {
	cfg.setDefaults()
	if err := cfg.validate(tree.Config()); err != nil {
		return nil, err
	}
	return &Session{
		cfg:      cfg,
		tree:     tree,
		id:       cfg.Rand.Uint32(),
		inflight: make(map[uint64]*query),
		stats:    Stats{Version: 2},
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
	s.startPass()
	s.fill(now)
}

// startPass starts a comparison from the root, with fresh check bytes, of
// the local tree as it would be with the differences found so far applied.
func (s *Session) startPass() {
	s.pass++
	s.view = newView(s.tree, s.missing, s.extra)
	s.peerRoot, s.rootsEqual, s.saturated, s.scoutCells, s.dEst = nil, false, false, 0, 0
	s.offset = s.cfg.Rand.IntN(32 - s.cfg.CheckSize + 1)
	s.frontier = append(s.frontier, pending{kind: ProbeRoot, pos: Position{}, depth: s.overviewDepth(), round: 1})
}

// overviewDepth is the depth of the root's overview: overviewCells cells,
// fewer for a tree of fewer leaves.
func (s *Session) overviewDepth() int {
	t := s.tree
	leaves := max(1, t.Len()/t.leafSize)
	depth := 0
	for next := depth + 1; cellCount(t.b, next) <= min(overviewCells, leaves) &&
		maxAnswerV2Head+overviewSize(t.b, next, s.cfg.HashSize, s.cfg.CheckSize) <= s.cfg.MaxPacketSize; next++ {
		depth = next
	}
	return depth
}

// conclude checks, once nothing is left to compare, that the differences
// found account for the peer's root, and ends the session; or, if they do
// not, starts another pass and reports true.
func (s *Session) conclude() bool {
	if s.rootsEqual || s.peerRoot == nil || s.v1 {
		s.finish(nil)
		return false
	}
	want := s.tree.RootWith(s.missing, s.extra)
	switch {
	case string(want[:len(s.peerRoot)]) == string(s.peerRoot):
		s.finish(nil)
	case s.pass < maxPasses:
		s.stats.Passes++
		s.startPass()
		return true
	default:
		s.finish(ErrUnverified)
	}
	return false
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
		if !s.v1Asked && s.stats.Answers == 0 && s.pass == 1 && !q.v1 && q.attempts >= v1After {
			// No answer yet: perhaps a peer of an older release, which
			// answers v1 queries only. Ask it in v1 too.
			s.askV1(now)
		}
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

// Handle takes the body of a wire.AEAnswerV2 datagram from the peer. An error that wraps
// ErrMalformed or ErrStaleAnswer means the datagram was dropped and the
// session goes on; any other error has ended the session (as Result.Err
// also says).
func (s *Session) Handle(now time.Time, body []byte) error {
	if s.done {
		return ErrSessionDone
	}
	a, err := DecodeAnswerV2(body)
	if err != nil {
		return err
	}
	q, err := s.accept(a.Session, a.Seq, len(body), false)
	if err != nil {
		return err
	}
	s.dropV1()
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

// accept takes an answer to one of the queries in flight, of the version
// given, out of them; an error if it is another session's, or a duplicate,
// or late.
func (s *Session) accept(session uint32, seq uint64, size int, v1 bool) (*query, error) {
	if session != s.id {
		return nil, fmt.Errorf("%w: session %08x, not %08x", ErrStaleAnswer, session, s.id)
	}
	s.stats.BytesReceived += wire.HeaderSize + size
	q, ok := s.inflight[seq]
	if !ok || q.v1 != v1 {
		s.stats.Stale++
		return nil, fmt.Errorf("%w: query %d", ErrStaleAnswer, seq)
	}
	delete(s.inflight, seq)
	s.reserved -= s.cfg.MaxPacketSize
	s.stats.Answers++
	return q, nil
}

// v1After is the attempt of the v2 root query with which the v1 one is
// sent too: the third, a second after the first without an answer
// (rather than the second, which under 30% loss would make a v1 session of
// one in four with a peer of this release).
const v1After = 3

// dropV1 forgets the v1 root query once the peer has answered in v2, so
// that its answer, if it comes, is stale.
func (s *Session) dropV1() {
	for seq, q := range s.inflight {
		if q.v1 {
			delete(s.inflight, seq)
			s.reserved -= s.cfg.MaxPacketSize
		}
	}
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
