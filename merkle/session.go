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
