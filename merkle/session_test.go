package merkle

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/wire"
)

// net drives a session against a responder, the way a runtime would, with
// a virtual clock, a fixed round-trip time and a seeded loss rate on each
// direction.
type net struct {
	t        testing.TB
	loss     float64
	rng      *rand.Rand
	rtt      time.Duration
	now      time.Time
	dropped  int
	maxSteps int
	v1Only   bool // the responder is of an older release: it answers v1 queries only
}

func newNet(t testing.TB, loss float64, seed uint64) *net {
	return &net{t: t, loss: loss, rng: newRand(seed), rtt: 20 * time.Millisecond, now: time.Unix(1_700_000_000, 0), maxSteps: 1_000_000}
}

func (n *net) lost() bool {
	if n.loss > 0 && n.rng.Float64() < n.loss {
		n.dropped++
		return true
	}
	return false
}

// run drives s, already created, to its end against r and returns its
// result and the number of round trips: the exchanges in which at least one
// query was sent.
func (n *net) run(s *Session, r *Responder) (Result, int) {
	n.t.Helper()
	s.Start(n.now)
	rounds := 0
	for step := 0; !s.Done(); step++ {
		require.Less(n.t, step, n.maxSteps, "the session does not end")
		queries := s.Ready()
		if len(queries) == 0 {
			next := s.NextTick()
			require.False(n.t, next.IsZero(), "a session with nothing in flight must be done")
			n.now = next
			s.Tick(n.now)
			continue
		}
		rounds++
		var answers [][]byte
		for _, q := range queries {
			if n.lost() {
				continue
			}
			answer := r.AnswerV2
			if typ, _ := wire.TypeOf(q); typ == wire.AEQuery {
				answer = r.Answer
			} else if n.v1Only {
				continue // unknown_type to an old node
			}
			a, err := answer(nil, body(q))
			require.NoError(n.t, err)
			require.LessOrEqual(n.t, len(a), r.cfg.MaxPacketSize)
			answers = append(answers, a)
		}
		n.now = n.now.Add(n.rtt)
		for _, a := range answers {
			if n.lost() {
				continue
			}
			handle := s.Handle
			if typ, _ := wire.TypeOf(a); typ == wire.AEAnswer {
				handle = s.HandleV1
			}
			if err := handle(n.now, body(a)); err != nil && !errors.Is(err, ErrStaleAnswer) {
				require.ErrorIs(n.t, err, s.Result().Err)
			}
		}
		s.Tick(n.now)
	}
	return s.Result(), rounds
}

func mustSession(t testing.TB, tree *Tree, cfg SessionConfig) *Session {
	t.Helper()
	if cfg.Rand == nil {
		cfg.Rand = newRand(99)
	}
	s, err := NewSession(tree, cfg)
	require.NoError(t, err)
	return s
}

func mustResponder(t testing.TB, tree *Tree) *Responder {
	t.Helper()
	r, err := NewResponder(tree, ResponderConfig{})
	require.NoError(t, err)
	return r
}

// replicas returns two trees holding shared plus, each, its own extra IDs.
// It sorts shared once for both builds, and queues the extras: sorting is
// most of the cost of a build under the race detector, and BuildTree sorts
// a sorted input in linear time.
func replicas(t testing.TB, cfg TreeConfig, shared, onlyA, onlyB []ID) (*Tree, *Tree) {
	t.Helper()
	sorted := slices.SortedFunc(slices.Values(shared), ID.Compare)
	a, err := BuildTree(cfg, sorted)
	require.NoError(t, err)
	b, err := BuildTree(cfg, sorted)
	require.NoError(t, err)
	for _, id := range onlyA {
		a.InsertLater(id)
	}
	for _, id := range onlyB {
		b.InsertLater(id)
	}
	return a, b
}

// shared100k returns the 100,000 IDs, sorted, that the replicas of the
// tests at that scale share: sorted once for all of them.
var shared100k = sharedIDs(100_000, 100_000, true)

// apply makes a and b equal from a session's result, as the runtime would
// by pulling Missing and pushing Extra.
func apply(a, b *Tree, res Result) {
	for _, id := range res.Missing {
		a.Insert(id)
	}
	for _, id := range res.Extra {
		b.Insert(id)
	}
}

// requireSameIDs checks that want and got hold the same IDs, in any order.
func requireSameIDs(t testing.TB, want, got []ID, msgAndArgs ...any) {
	t.Helper()
	want = slices.SortedFunc(slices.Values(want), ID.Compare)
	got = slices.SortedFunc(slices.Values(got), ID.Compare)
	requireEqualIDs(t, want, got, msgAndArgs...)
}

func requireSameSets(t testing.TB, a, b *Tree) {
	t.Helper()
	require.Equal(t, a.Len(), b.Len())
	require.Equal(t, a.Root(), b.Root())
	requireEqualIDs(t, slices.Collect(a.All()), slices.Collect(b.All()))
}

func TestSessionEqualTreesTakeOneSmallRoundTrip(t *testing.T) {
	t.Parallel()
	ids := randomIDs(newRand(1), 10_000)
	a, b := replicas(t, TreeConfig{}, ids, nil, nil)
	res, rounds := newNet(t, 0, 1).run(mustSession(t, a, SessionConfig{}), mustResponder(t, b))
	require.NoError(t, res.Err)
	require.Empty(t, res.Missing)
	require.Empty(t, res.Extra)
	require.Equal(t, 1, rounds)
	require.Less(t, res.Stats.BytesSent+res.Stats.BytesReceived, 100)
}

func TestSessionReconciles100kReplicasDifferingBy100OnEachSide(t *testing.T) {
	t.Parallel()
	rng := newRand(2)
	onlyA, onlyB := randomIDs(rng, 100), randomIDs(rng, 100)
	a, b := replicas(t, TreeConfig{}, shared100k(), onlyA, onlyB)

	res, rounds := newNet(t, 0, 2).run(mustSession(t, a, SessionConfig{}), mustResponder(t, b))
	require.NoError(t, res.Err)
	requireSameIDs(t, onlyB, res.Missing)
	requireSameIDs(t, onlyA, res.Extra)
	t.Logf("%d round trips, %d queries, %d bytes sent, %d received", rounds, res.Stats.Queries, res.Stats.BytesSent, res.Stats.BytesReceived)
	require.LessOrEqual(t, rounds, 10)

	apply(a, b, res)
	requireSameSets(t, a, b)
	// And now they agree in one round trip.
	res, rounds = newNet(t, 0, 3).run(mustSession(t, a, SessionConfig{Rand: newRand(3)}), mustResponder(t, b))
	require.NoError(t, res.Err)
	require.Equal(t, 1, rounds)
}

// TestSessionSurvives30PercentLoss drops 30% of the datagrams in each
// direction, deterministically. A session that gives up does so with
// ErrTimeout after MaxAttempts sends of one query, and reports the true
// differences it found; the next session finishes the job.
func TestSessionSurvives30PercentLoss(t *testing.T) {
	t.Parallel()
	rng := newRand(4)
	onlyA, onlyB := randomIDs(rng, 100), randomIDs(rng, 100)
	a, b := replicas(t, TreeConfig{}, shared100k(), onlyA, onlyB)

	var missing, extra []ID
	for attempt := 0; ; attempt++ {
		require.Less(t, attempt, 3, "three sessions were not enough")
		n := newNet(t, 0.3, uint64(40+attempt))
		res, rounds := n.run(mustSession(t, a, SessionConfig{Rand: newRand(uint64(attempt))}), mustResponder(t, b))
		t.Logf("session %d: err %v, %d round trips, %d queries (%d resent), %d datagrams dropped",
			attempt, res.Err, rounds, res.Stats.Queries, res.Stats.Resends, n.dropped)
		require.Positive(t, n.dropped)
		missing = append(missing, res.Missing...)
		extra = append(extra, res.Extra...)
		apply(a, b, res)
		if res.Err == nil {
			break
		}
		require.ErrorIs(t, res.Err, ErrTimeout)
	}
	requireSameIDs(t, onlyB, missing)
	requireSameIDs(t, onlyA, extra)
	requireSameSets(t, a, b)
}

func TestSessionGivesUpOnASilentPeer(t *testing.T) {
	a := mustTree(t, TreeConfig{}, randomIDs(newRand(5), 100)...)
	s := mustSession(t, a, SessionConfig{MaxAttempts: 3, RetryTimeout: time.Second})
	now := time.Unix(0, 0)
	s.Start(now)
	require.Len(t, s.Ready(), 1)
	require.Equal(t, now.Add(time.Second), s.NextTick())
	s.Tick(now.Add(999 * time.Millisecond))
	require.Empty(t, s.Ready(), "not yet due")
	sent := 1
	for !s.Done() {
		now = s.NextTick()
		s.Tick(now)
		sent += len(s.Ready())
	}
	require.Equal(t, 3+1, sent, "MaxAttempts sends of the v2 root query, and the v1 one with the third")
	require.Equal(t, time.Unix(3, 0), now)
	require.ErrorIs(t, s.Result().Err, ErrTimeout)
	require.True(t, s.NextTick().IsZero())
	require.ErrorIs(t, s.Handle(now, body([]byte("late"))), ErrSessionDone)
}

func TestSessionShapeMismatch(t *testing.T) {
	ids := randomIDs(newRand(6), 100)
	a := mustTree(t, TreeConfig{FanoutBits: 4}, ids...)
	b := mustTree(t, TreeConfig{FanoutBits: 2}, ids...)
	res, _ := newNet(t, 0, 6).run(mustSession(t, a, SessionConfig{}), mustResponder(t, b))
	require.ErrorIs(t, res.Err, ErrShapeMismatch)
}

// TestSessionBudgetConverges gives sessions a budget far below what the
// differences need: each ends with ErrBudgetExceeded and the differences it
// found, and a series of them converges.
func TestSessionBudgetConverges(t *testing.T) {
	t.Parallel()
	rng := newRand(7)
	shared := randomIDs(rng, 20_000)
	onlyA, onlyB := randomIDs(rng, 500), randomIDs(rng, 500)
	a, b := replicas(t, TreeConfig{}, shared, onlyA, onlyB)
	want := idSet(onlyA, onlyB)
	sessions := 0
	for {
		sessions++
		require.Less(t, sessions, 50)
		res, _ := newNet(t, 0, uint64(sessions)).run(mustSession(t, a, SessionConfig{Rand: newRand(uint64(sessions)), MaxSessionBytes: 8 << 10}), mustResponder(t, b))
		require.LessOrEqual(t, res.Stats.BytesSent+res.Stats.BytesReceived, 8<<10)
		for _, id := range slices.Concat(res.Missing, res.Extra) {
			require.True(t, want[id], "only true differences")
		}
		apply(a, b, res)
		if res.Err == nil {
			break
		}
		require.ErrorIs(t, res.Err, ErrBudgetExceeded)
		require.NotEmpty(t, slices.Concat(res.Missing, res.Extra), "every session makes progress")
	}
	t.Logf("converged in %d sessions of 8 KiB", sessions)
	requireSameSets(t, a, b)
}

func TestSessionOneSideEmpty(t *testing.T) {
	t.Parallel()
	ids := randomIDs(newRand(8), 3000)
	full := mustTree(t, TreeConfig{}, ids...)
	empty := mustTree(t, TreeConfig{})

	res, _ := newNet(t, 0, 8).run(mustSession(t, empty, SessionConfig{}), mustResponder(t, full))
	require.NoError(t, res.Err)
	requireSameIDs(t, ids, res.Missing)
	require.Empty(t, res.Extra)

	res, rounds := newNet(t, 0, 9).run(mustSession(t, full, SessionConfig{}), mustResponder(t, empty))
	require.NoError(t, res.Err)
	require.Equal(t, 1, rounds, "the peer's empty root says it all")
	requireSameIDs(t, ids, res.Extra)

	res, _ = newNet(t, 0, 10).run(mustSession(t, full, SessionConfig{MaxDifferences: 100}), mustResponder(t, empty))
	require.ErrorIs(t, res.Err, ErrTooManyDifferences)
	require.Len(t, res.Extra, 100)
}

// TestSessionExactOnManyShapes reconciles small random sets on every kind of
// shape, IDs sharing long prefixes included, and checks the result against
// the set differences.
func TestSessionExactOnManyShapes(t *testing.T) {
	t.Parallel()
	shapes := []TreeConfig{
		{FanoutBits: 1, LeafSize: 1}, {FanoutBits: 2, LeafSize: 4}, {FanoutBits: 3, LeafSize: 16},
		{FanoutBits: 4, LeafSize: 2}, {FanoutBits: 5, LeafSize: 8}, {FanoutBits: 6, LeafSize: 32},
	}
	for si, cfg := range shapes {
		for trial := range 10 {
			rng := newRand(uint64(100*si + trial))
			pool := withNearTwins(randomIDs(rng, 1+rng.IntN(2000)), 20)
			var shared, onlyA, onlyB []ID
			for _, id := range pool {
				switch rng.IntN(10) {
				case 0:
					onlyA = append(onlyA, id)
				case 1:
					onlyB = append(onlyB, id)
				default:
					shared = append(shared, id)
				}
			}
			a, b := replicas(t, cfg, shared, onlyA, onlyB)
			s := mustSession(t, a, SessionConfig{
				Rand: rng, MaxInFlight: 1 + rng.IntN(8), MaxPacketSize: 4096,
				HashSize: MinHashSize + rng.IntN(MaxHashSize-MinHashSize+1),
			})
			r, err := NewResponder(b, ResponderConfig{MaxPacketSize: 4096})
			require.NoError(t, err)
			res, _ := newNet(t, 0.1, uint64(trial)).run(s, r)
			require.NoError(t, res.Err, "%+v trial %d", cfg, trial)
			requireSameIDs(t, onlyB, res.Missing, "%+v trial %d", cfg, trial)
			requireSameIDs(t, onlyA, res.Extra, "%+v trial %d", cfg, trial)
			apply(a, b, res)
			requireSameSets(t, a, b)
		}
	}
}

func TestSessionDropsStaleAndMalformedAnswers(t *testing.T) {
	rng := newRand(11)
	shared := randomIDs(rng, 5000)
	a, b := replicas(t, TreeConfig{}, shared, randomIDs(rng, 5), randomIDs(rng, 5))
	r := mustResponder(t, b)
	s := mustSession(t, a, SessionConfig{})
	now := time.Unix(0, 0)
	s.Start(now)
	q := slices.Clone(s.Ready()[0])

	other := mustSession(t, a, SessionConfig{Rand: newRand(12)})
	other.Start(now)
	foreign, err := r.AnswerV2(nil, body(other.Ready()[0]))
	require.NoError(t, err)
	require.ErrorIs(t, s.Handle(now, body(foreign)), ErrStaleAnswer, "another session's answer")

	require.ErrorIs(t, s.Handle(now, body([]byte{'H', 'S', 1, byte(wire.AEAnswer), 1})), ErrMalformed)

	ans, err := r.AnswerV2(nil, body(q))
	require.NoError(t, err)
	require.NoError(t, s.Handle(now, body(ans)))
	require.ErrorIs(t, s.Handle(now, body(ans)), ErrStaleAnswer, "a duplicate")
	require.Equal(t, 1, s.Result().Stats.Stale)
	require.False(t, s.Done())
}

// TestSessionRejectsLyingPeers feeds answers that contradict the protocol.
func TestSessionRejectsLyingPeers(t *testing.T) {
	a := mustTree(t, TreeConfig{}, randomIDs(newRand(13), 1000)...)
	start := func() (*Session, *QueryV2) {
		s := mustSession(t, a, SessionConfig{})
		s.Start(time.Unix(0, 0))
		q, err := DecodeQueryV2(body(s.Ready()[0]))
		require.NoError(t, err)
		return s, q
	}
	answer := func(q *QueryV2, entries ...Report) []byte {
		return AppendAnswerV2(nil, &AnswerV2{Session: q.Session, Seq: q.Seq, Shape: q.Shape, HashSize: q.HashSize, CheckSize: q.CheckSize, Entries: entries})
	}
	root := q0Hash(t, a)
	for name, entries := range map[string][]Report{
		"no entries":       nil,
		"too many":         {{Kind: ReportEqual}, {Kind: ReportEqual}},
		"cells for a root": {{Kind: ReportCells, Bitmap: []byte{1}}},
		"overview depth":   {{Kind: ReportOverview, Depth: 2, Hash: root, Count: 5, Checks: make([]byte, 128)}},
	} {
		s, q := start()
		require.ErrorIs(t, s.Handle(time.Unix(0, 0), body(answer(q, entries...))), ErrProtocol, name)
		require.True(t, s.Done())
	}

	// A summary naming an ID outside its cell: an overview in which cell 0
	// alone differs, then the lie about it.
	s, q := start()
	require.Equal(t, 1, q.Items[0].Depth, "1,000 IDs: 62 leaves, an overview of 8 cells")
	cells := a.cellsAt(Position{}, 1, make([]cell, 8))
	var checks []byte
	for i := range cells {
		checks = append(checks, cells[i].hash[q.CheckOffset:q.CheckOffset+q.CheckSize]...)
	}
	checks[0] ^= 0xff
	require.NoError(t, s.Handle(time.Unix(0, 0), body(answer(q, Report{Kind: ReportOverview, Depth: 1, Hash: root, Count: 1000, Checks: checks}))))
	q, err := DecodeQueryV2(body(s.Ready()[0]))
	require.NoError(t, err)
	require.Len(t, q.Items, 1)
	require.Equal(t, ProbeItem{Kind: ProbeSummaries, Pos: Position{Level: 1}, Depth: 0, Checks: cells[0].hash[q.CheckOffset : q.CheckOffset+q.CheckSize]}, q.Items[0])
	lie := Report{Kind: ReportCells, Bitmap: []byte{1}, Summaries: []Summary{{Count: 1, XOR: ID{0xff}}}}
	require.ErrorIs(t, s.Handle(time.Unix(0, 0), body(answer(q, lie))), ErrProtocol)

	s, q = start()
	bad := AppendAnswerV2(nil, &AnswerV2{Session: q.Session, Seq: q.Seq, Shape: q.Shape, HashSize: 9, CheckSize: q.CheckSize, Entries: []Report{{Kind: ReportEqual}}})
	require.ErrorIs(t, s.Handle(time.Unix(0, 0), body(bad)), ErrProtocol, "hash size not the one asked")
	s, q = start()
	bad = AppendAnswerV2(nil, &AnswerV2{Session: q.Session, Seq: q.Seq, Shape: q.Shape, HashSize: q.HashSize, CheckSize: 3, Entries: []Report{{Kind: ReportEqual}}})
	require.ErrorIs(t, s.Handle(time.Unix(0, 0), body(bad)), ErrProtocol, "check size not the one asked")
}

// q0Hash is a root hash that is not t's, 8 bytes.
func q0Hash(t *testing.T, tr *Tree) []byte {
	t.Helper()
	h := tr.Root()
	h[0] ^= 1
	return h[:8]
}

func TestSessionConfigValidation(t *testing.T) {
	tr := mustTree(t, TreeConfig{})
	for name, cfg := range map[string]SessionConfig{
		"no rand":     {},
		"packet size": {Rand: newRand(1), MaxPacketSize: 100},
		"hash size":   {Rand: newRand(1), HashSize: 40},
		"budget":      {Rand: newRand(1), MaxSessionBytes: 1000},
		"in flight":   {Rand: newRand(1), MaxInFlight: -1},
		"attempts":    {Rand: newRand(1), MaxAttempts: -1},
		"timeout":     {Rand: newRand(1), RetryTimeout: -time.Second},
		"differences": {Rand: newRand(1), MaxDifferences: -1},
	} {
		_, err := NewSession(tr, cfg)
		require.ErrorIs(t, err, ErrInvalidConfig, name)
	}
	wide := mustTree(t, TreeConfig{FanoutBits: 8})
	_, err := NewSession(wide, SessionConfig{Rand: newRand(1)})
	require.ErrorIs(t, err, ErrInvalidConfig, "256 8-byte hashes do not fit in 1400 bytes")
	bigLeaves := mustTree(t, TreeConfig{LeafSize: 64})
	_, err = NewSession(bigLeaves, SessionConfig{Rand: newRand(1), MaxPacketSize: 512})
	require.ErrorIs(t, err, ErrInvalidConfig, "64 IDs do not fit in 512 bytes")
	_, err = NewResponder(tr, ResponderConfig{MaxPacketSize: 70000})
	require.ErrorIs(t, err, ErrInvalidConfig)
}

func TestSessionsOnePerPeer(t *testing.T) {
	t.Parallel()
	rng := newRand(20)
	shared := randomIDs(rng, 5000)
	local := mustTree(t, TreeConfig{}, shared...)
	peers := map[string]*Responder{}
	want := map[string][]ID{}
	for _, name := range []string{"b", "c"} {
		extra := randomIDs(rng, 7)
		peers[name] = mustResponder(t, mustTree(t, TreeConfig{}, slices.Concat(shared, extra)...))
		want[name] = extra
	}
	m, err := NewSessions[string](local, SessionsConfig{Session: SessionConfig{Rand: rng}, MaxSessions: 2})
	require.NoError(t, err)
	now := time.Unix(0, 0)
	require.NoError(t, m.Start(now, "b"))
	require.ErrorIs(t, m.Start(now, "b"), ErrSessionActive)
	require.NoError(t, m.Start(now, "c"))
	require.ErrorIs(t, m.Start(now, "d"), ErrTooManySessions)
	require.True(t, m.Active("b"))
	require.Equal(t, 2, m.Len())
	require.False(t, m.NextTick().IsZero())

	got := map[string]Result{}
	for step := 0; m.Len() > 0; step++ {
		require.Less(t, step, 100)
		rd := m.Ready()
		for _, f := range rd.Finished {
			got[f.Peer] = f.Result
		}
		for _, dg := range rd.Datagrams {
			ans, err := peers[dg.To].AnswerV2(nil, body(dg.Data))
			require.NoError(t, err)
			require.NoError(t, m.Handle(now, dg.To, body(ans)))
		}
	}
	for _, f := range m.Ready().Finished {
		got[f.Peer] = f.Result
	}
	for name, ids := range want {
		require.NoError(t, got[name].Err)
		requireSameIDs(t, ids, got[name].Missing, name)
		require.Empty(t, got[name].Extra)
	}
	require.False(t, m.Active("b"))
	require.True(t, m.NextTick().IsZero())
	ans, err := peers["b"].AnswerV2(nil, body(AppendQueryV2(nil, sampleQueryV2())))
	require.NoError(t, err)
	require.ErrorIs(t, m.Handle(now, "b", body(ans)), ErrStaleAnswer, "no session with b any more")

	// A silent peer times out and frees its slot.
	require.NoError(t, m.Start(now, "silent"))
	for m.Len() > 0 {
		m.Ready()
		now = m.NextTick()
		m.Tick(now)
	}
	fin := m.Ready().Finished
	require.Len(t, fin, 1)
	require.ErrorIs(t, fin[0].Result.Err, ErrTimeout)
}

// TestSessionToleratesTreeChangesBetweenInputs inserts and removes IDs on
// both sides while a session runs, as gossip and expiry do: the session
// ends, and what it reports held at some moment.
func TestSessionToleratesTreeChangesBetweenInputs(t *testing.T) {
	t.Parallel()
	rng := newRand(21)
	shared := randomIDs(rng, 20_000)
	onlyA, onlyB := randomIDs(rng, 50), randomIDs(rng, 50)
	a, b := replicas(t, TreeConfig{}, shared, onlyA, onlyB)
	everA, everB := idSet(shared, onlyA), idSet(shared, onlyB)
	s := mustSession(t, a, SessionConfig{MaxInFlight: 2})
	r := mustResponder(t, b)
	now := time.Unix(0, 0)
	s.Start(now)
	for step := 0; !s.Done(); step++ {
		require.Less(t, step, 1000)
		for _, q := range s.Ready() {
			ans, err := r.AnswerV2(nil, body(q))
			require.NoError(t, err)
			for _, id := range randomIDs(rng, 3) {
				a.Insert(id)
				everA[id] = true
				b.Insert(id)
				everB[id] = true
			}
			a.Remove(shared[rng.IntN(len(shared))])
			b.Remove(shared[rng.IntN(len(shared))])
			_ = s.Handle(now, body(ans))
		}
	}
	res := s.Result()
	// The roots moved on meanwhile: the final check cannot pass.
	require.ErrorIs(t, res.Err, ErrUnverified)
	require.Equal(t, maxPasses-1, res.Stats.Passes)
	for _, id := range res.Missing {
		require.True(t, everB[id])
	}
	for _, id := range res.Extra {
		require.True(t, everA[id])
	}
	require.NotEmpty(t, res.Missing)
	require.NotEmpty(t, res.Extra)
}

// TestSessionExactRandomized reconciles random pairs of sets, of every size
// from empty to thousands, with differences on one side, the other or
// both, none, or everything, on several shapes and check sizes (1-byte
// checks collide often, so that the final check and the further passes
// are exercised), under loss. Every session reports only true
// differences; a series of them (one, nearly always) makes the sets equal.
func TestSessionExactRandomized(t *testing.T) {
	t.Parallel()
	shapes := []TreeConfig{DefaultTreeConfig(), DefaultTreeConfig(), {FanoutBits: 1, LeafSize: 2}, {FanoutBits: 2, LeafSize: 8}, {FanoutBits: 4, LeafSize: 16}}
	passes := 0
	for trial := range 40 {
		rng := newRand(uint64(500 + trial))
		shape := shapes[trial%len(shapes)]
		n := []int{0, 1, 10, 100, 1000, 5000}[rng.IntN(6)]
		pool := randomIDs(rng, n)
		if trial%7 == 0 && n > 0 {
			pool = withNearTwins(pool, 12)
		}
		var shared, onlyA, onlyB []ID
		mode := rng.IntN(5)
		for _, id := range pool {
			switch {
			case mode == 0: // equal sets
				shared = append(shared, id)
			case mode == 1: // nothing shared: d = n
				if rng.IntN(2) == 0 {
					onlyA = append(onlyA, id)
				} else {
					onlyB = append(onlyB, id)
				}
			case mode == 2 && rng.IntN(20) == 0: // the initiator lacks some
				onlyB = append(onlyB, id)
			case mode == 3 && rng.IntN(20) == 0: // the peer lacks some
				onlyA = append(onlyA, id)
			case mode == 4 && rng.IntN(10) == 0:
				if rng.IntN(2) == 0 {
					onlyA = append(onlyA, id)
				} else {
					onlyB = append(onlyB, id)
				}
			default:
				shared = append(shared, id)
			}
		}
		a, b := replicas(t, shape, shared, onlyA, onlyB)
		want := idSet(onlyA, onlyB)
		checkSize := 1 + rng.IntN(3)
		name := []any{"trial %d: %+v n=%d mode=%d d=%d check=%d", trial, shape, n, mode, len(want), checkSize}
		for session := 1; ; session++ {
			require.LessOrEqual(t, session, 4, name...)
			s := mustSession(t, a, SessionConfig{Rand: newRand(uint64(trial*10 + session)), CheckSize: checkSize, MaxPacketSize: 4096, MaxInFlight: 1 + rng.IntN(8)})
			r, err := NewResponder(b, ResponderConfig{MaxPacketSize: 4096})
			require.NoError(t, err)
			res, _ := newNet(t, 0.1*float64(trial%2), uint64(trial)).run(s, r)
			passes += res.Stats.Passes
			for _, id := range res.Missing {
				require.True(t, b.Contains(id) && !a.Contains(id), name...)
			}
			for _, id := range res.Extra {
				require.True(t, a.Contains(id) && !b.Contains(id), name...)
			}
			apply(a, b, res)
			if res.Err == nil {
				break
			}
			require.ErrorIs(t, res.Err, ErrUnverified, name...)
		}
		requireSameSets(t, a, b)
	}
	require.Positive(t, passes, "1-byte checks collided somewhere, and a further pass found what they hid")
}

// TestSessionCheckCollisionsAreCaughtByTheFinalCheck forces check
// collisions (1-byte checks: a differing cell looks equal with odds 1/256)
// on 1,200 differences: the first pass misses some, the final check sees
// it, and the next passes, which compare the tree as it would be with what
// was found applied, find the rest at a small cost.
func TestSessionCheckCollisionsAreCaughtByTheFinalCheck(t *testing.T) {
	t.Parallel()
	rng := newRand(34)
	onlyA, onlyB := randomIDs(rng, 600), randomIDs(rng, 600)
	a, b := replicas(t, TreeConfig{}, randomIDs(rng, 20_000), onlyA, onlyB)
	res, rounds := newNet(t, 0, 34).run(mustSession(t, a, SessionConfig{CheckSize: 1, Rand: newRand(34)}), mustResponder(t, b))
	t.Logf("%d passes, %d round trips, %d bytes", 1+res.Stats.Passes, rounds, res.Stats.BytesSent+res.Stats.BytesReceived)
	require.NoError(t, res.Err)
	require.Positive(t, res.Stats.Passes, "a collision hid a difference from the first pass")
	requireSameIDs(t, onlyB, res.Missing)
	requireSameIDs(t, onlyA, res.Extra)
}

// TestSessionFallsBackToV1WithAnOldPeer: a peer of an older release answers
// only v1 queries. The session's v2 root query goes unanswered; with its
// third attempt the v1 root query goes too, and the session goes on in v1,
// exactly. Under loss, a peer of this release answers in v2 first.
func TestSessionFallsBackToV1WithAnOldPeer(t *testing.T) {
	t.Parallel()
	rng := newRand(35)
	onlyA, onlyB := randomIDs(rng, 30), randomIDs(rng, 30)
	a, b := replicas(t, TreeConfig{}, randomIDs(rng, 20_000), onlyA, onlyB)
	n := newNet(t, 0, 35)
	n.v1Only = true
	start := n.now
	res, _ := n.run(mustSession(t, a, SessionConfig{}), mustResponder(t, b))
	require.NoError(t, res.Err)
	require.Equal(t, 1, res.Stats.Version)
	requireSameIDs(t, onlyB, res.Missing)
	requireSameIDs(t, onlyA, res.Extra)
	require.Less(t, n.now.Sub(start), 2*time.Second, "a second lost before the v1 query, and a few round trips")

	fallbacks := 0
	for seed := range 20 {
		res, _ := newNet(t, 0.3, uint64(seed)).run(mustSession(t, a, SessionConfig{Rand: newRand(uint64(seed))}), mustResponder(t, b))
		if res.Err == nil && res.Stats.Version == 1 {
			fallbacks++
		}
	}
	t.Logf("%d of 20 sessions with a peer of this release under 30%% loss fell back to v1", fallbacks)
	require.Less(t, fallbacks, 10)
}
