package merkle

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"
)

// The figures of docs/anti-entropy.md. Run them with
//
//	go test -run '^$' -bench 'Reconcile|ShapeChoice' ./merkle
//	go test -run '^$' -bench 'TreeBuild|TreeInsertAll|BenchmarkInsert$|BenchmarkRemove$|ShapeMemory' ./merkle
//
// The reconciliation benchmarks run one session whatever -benchtime says
// and report its bytes and round trips (their ns/op means nothing).

const figureN = 1_000_000

// figureIDs returns the n = 10^6 IDs every replica of the figures shares,
// in random order.
var figureIDs = sharedIDs(2026, figureN, false)

// replicaPair is two trees holding the figures' base IDs, into which a
// scenario inserts its differences and from which it removes them again.
type replicaPair struct{ a, b *Tree }

func newReplicaPair(tb testing.TB, shape TreeConfig) replicaPair {
	tb.Helper()
	base := figureIDs()
	a, err := BuildTree(shape, base)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := BuildTree(shape, base)
	if err != nil {
		tb.Fatal(err)
	}
	return replicaPair{a, b}
}

// scenario is d differences, split evenly between the sides or all on the
// peer's side (the initiator lacks them).
type scenario struct {
	d       int
	oneSide bool
	seed    uint64 // of the differences; 0: d+7
}

func (sc scenario) String() string {
	if sc.oneSide {
		return fmt.Sprintf("d=%d/peer-only", sc.d)
	}
	return fmt.Sprintf("d=%d/split", sc.d)
}

type figure struct {
	bytes, rounds, queries, found, passes int
	err                                   error
}

// measure runs one session from p.a to p.b with sc's differences in place
// and checks its result.
func (p replicaPair) measure(tb testing.TB, sc scenario, cfg SessionConfig) figure {
	tb.Helper()
	rng := newRand(uint64(sc.d) + 7)
	if sc.seed != 0 {
		rng = newRand(sc.seed)
	}
	var onlyA, onlyB []ID
	if sc.oneSide {
		onlyB = randomIDs(rng, sc.d)
	} else {
		onlyA, onlyB = randomIDs(rng, sc.d/2), randomIDs(rng, sc.d-sc.d/2)
	}
	for _, id := range onlyA {
		p.a.Insert(id)
	}
	for _, id := range onlyB {
		p.b.Insert(id)
	}
	defer func() {
		for _, id := range onlyA {
			p.a.Remove(id)
		}
		for _, id := range onlyB {
			p.b.Remove(id)
		}
	}()
	if cfg.Rand == nil {
		cfg.Rand = newRand(1)
	}
	s, err := NewSession(p.a, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := NewResponder(p.b, ResponderConfig{MaxPacketSize: cfg.MaxPacketSize})
	if err != nil {
		tb.Fatal(err)
	}
	res, rounds := newNet(tb, 0, 1).run(s, r)
	if res.Err == nil {
		requireSameIDs(tb, onlyB, res.Missing, sc.String())
		requireSameIDs(tb, onlyA, res.Extra, sc.String())
	}
	return figure{
		bytes:   res.Stats.BytesSent + res.Stats.BytesReceived,
		rounds:  rounds,
		queries: res.Stats.Queries,
		found:   len(res.Missing) + len(res.Extra),
		passes:  1 + res.Stats.Passes,
		err:     res.Err,
	}
}

func (f figure) report(b *testing.B) {
	b.ReportMetric(float64(f.bytes), "wire-bytes")
	b.ReportMetric(float64(f.rounds), "round-trips")
	b.ReportMetric(float64(f.queries), "queries")
	b.ReportMetric(float64(f.found), "found")
	b.ReportMetric(float64(f.passes), "passes")
	b.ReportMetric(0, "ns/op")
	if f.err != nil {
		b.Logf("session ended with %v", f.err)
	}
}

// unbounded lifts the budget and the difference cap, to measure the full
// cost of a comparison.
func unbounded(cfg SessionConfig) SessionConfig {
	cfg.MaxSessionBytes = 1 << 30
	cfg.MaxDifferences = 1 << 30
	return cfg
}

// BenchmarkReconcile gives the bytes and round trips to reconcile two
// replicas of n = 10^6 IDs with d differences, with the default shape and
// configuration (the budget lifted, to see the whole cost, except in
// default-budget): n=1000000/d=... with the differences split evenly
// between the sides, peer-only/d=... with all of them on the responder's;
// seeds/d=100 runs 200 sessions with other differences and session seeds
// and reports the worst of them.
func BenchmarkReconcile(b *testing.B) {
	p := newReplicaPair(b, DefaultTreeConfig())
	run := func(name string, sc scenario, cfg SessionConfig) {
		b.Run(name, func(b *testing.B) {
			f := p.measure(b, sc, cfg)
			for b.Loop() {
			}
			f.report(b)
		})
	}
	for _, d := range []int{0, 1, 100, 10_000} {
		run(fmt.Sprintf("n=%d/d=%d", figureN, d), scenario{d: d}, unbounded(SessionConfig{}))
	}
	for _, d := range []int{1, 100, 10_000} {
		run(fmt.Sprintf("n=%d/peer-only/d=%d", figureN, d), scenario{d: d, oneSide: true}, unbounded(SessionConfig{}))
	}
	// With the default budget of 1 MiB.
	b.Run(fmt.Sprintf("n=%d/default-budget/d=10000", figureN), func(b *testing.B) {
		f := p.measure(b, scenario{d: 10_000}, SessionConfig{})
		for b.Loop() {
		}
		f.report(b)
		b.ReportMetric(float64(p.sessionsToConverge(b, scenario{d: 10_000}, SessionConfig{})), "sessions")
	})
	b.Run(fmt.Sprintf("n=%d/seeds/d=100", figureN), func(b *testing.B) {
		var worst figure
		within := 0
		const seeds = 200
		for seed := range seeds {
			f := p.measure(b, scenario{d: 100, seed: uint64(1000 + seed)}, unbounded(SessionConfig{Rand: newRand(uint64(seed))}))
			worst.bytes, worst.rounds = max(worst.bytes, f.bytes), max(worst.rounds, f.rounds)
			worst.passes = max(worst.passes, f.passes)
			if f.rounds <= 3 && f.bytes <= 8<<10 {
				within++
			}
		}
		for b.Loop() {
		}
		b.ReportMetric(float64(worst.bytes), "max-wire-bytes")
		b.ReportMetric(float64(worst.rounds), "max-round-trips")
		b.ReportMetric(float64(worst.passes), "max-passes")
		b.ReportMetric(float64(within)/seeds, "share-within-3-round-trips-and-8KiB")
		b.ReportMetric(0, "ns/op")
	})
}

// sessionsToConverge runs sessions from p.a to p.b, applying each one's
// result as the runtime would, until one completes; it returns how many it
// took and leaves the pair as it found it.
func (p replicaPair) sessionsToConverge(tb testing.TB, sc scenario, cfg SessionConfig) int {
	tb.Helper()
	rng := newRand(uint64(sc.d) + 7)
	onlyA, onlyB := randomIDs(rng, sc.d/2), randomIDs(rng, sc.d-sc.d/2)
	all := slices.Concat(onlyA, onlyB)
	for _, id := range onlyA {
		p.a.Insert(id)
	}
	for _, id := range onlyB {
		p.b.Insert(id)
	}
	defer func() {
		for _, id := range all {
			p.a.Remove(id)
			p.b.Remove(id)
		}
	}()
	for n := 1; ; n++ {
		cfg.Rand = newRand(uint64(n))
		s, err := NewSession(p.a, cfg)
		if err != nil {
			tb.Fatal(err)
		}
		res, _ := newNet(tb, 0, 1).run(s, mustResponder(tb, p.b))
		apply(p.a, p.b, res)
		if res.Err == nil {
			return n
		}
		if n == 100 {
			tb.Fatalf("no convergence: %v", res.Err)
		}
	}
}

// BenchmarkShapeChoice is the measurement behind DefaultFanoutBits and
// DefaultLeafSize: bytes and round trips to reconcile 10^6 IDs with 100
// and 10,000 differences (split), for each fanout and leaf size; then, for
// the chosen shape and 100 differences, each check size.
func BenchmarkShapeChoice(b *testing.B) {
	for _, fb := range []int{1, 2, 3, 4, 5, 6} {
		for _, leaf := range []int{4, 8, 16, 32, 64} {
			shape := TreeConfig{FanoutBits: fb, LeafSize: leaf}
			cfg := unbounded(SessionConfig{})
			p := newReplicaPair(b, shape)
			for _, d := range []int{100, 10_000} {
				b.Run(fmt.Sprintf("b=%d/L=%d/d=%d", fb, leaf, d), func(b *testing.B) {
					f := p.measure(b, scenario{d: d}, cfg)
					for b.Loop() {
					}
					f.report(b)
				})
			}
		}
	}
	p := newReplicaPair(b, DefaultTreeConfig())
	for _, c := range []int{1, 2, 3, 4} {
		b.Run(fmt.Sprintf("default/check=%d", c), func(b *testing.B) {
			f := p.measure(b, scenario{d: 100}, unbounded(SessionConfig{CheckSize: c}))
			for b.Loop() {
			}
			f.report(b)
		})
	}
}

// BenchmarkTreeBuild builds a tree of 10^6 IDs in bulk and reports the heap
// it holds per ID.
func BenchmarkTreeBuild(b *testing.B) {
	ids := figureIDs()
	var t *Tree
	for b.Loop() {
		var err error
		if t, err = BuildTree(DefaultTreeConfig(), ids); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/figureN, "ns/ID")
	b.ReportMetric(heapPerID(b, func() any { t2, _ := BuildTree(DefaultTreeConfig(), ids); return t2 }), "heap-bytes/ID")
	runtime.KeepAlive(t)
}

// BenchmarkTreeInsertAll builds a tree of 10^6 IDs by inserting them one
// by one, and reports the heap it holds per ID.
func BenchmarkTreeInsertAll(b *testing.B) {
	ids := figureIDs()
	build := func() any {
		t := mustTree(b, DefaultTreeConfig())
		for _, id := range ids {
			t.Insert(id)
		}
		return t
	}
	for b.Loop() {
		build()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/figureN, "ns/ID")
	b.ReportMetric(heapPerID(b, build), "heap-bytes/ID")
}

// heapPerID returns the live heap that build's result holds, per ID of the
// figures.
func heapPerID(b *testing.B, build func() any) float64 {
	b.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	keep := build()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(keep)
	return float64(after.HeapAlloc-before.HeapAlloc) / figureN
}

// BenchmarkInsert inserts fresh IDs into a tree of 10^6 (which grows by
// b.N, a few per cent).
func BenchmarkInsert(b *testing.B) {
	t, err := BuildTree(DefaultTreeConfig(), figureIDs())
	if err != nil {
		b.Fatal(err)
	}
	fresh := randomIDs(newRand(77), 1<<21)
	i := 0
	for b.Loop() {
		if !t.Insert(fresh[i%len(fresh)]) {
			b.Fatal("not fresh")
		}
		i++
	}
}

// BenchmarkRemove removes IDs from a tree of 10^6 (which shrinks by b.N,
// and is built again, off the clock, once emptied).
func BenchmarkRemove(b *testing.B) {
	ids := figureIDs()
	build := func() *Tree {
		t, err := BuildTree(DefaultTreeConfig(), ids)
		if err != nil {
			b.Fatal(err)
		}
		return t
	}
	t := build()
	i := 0
	for b.Loop() {
		if i == len(ids) {
			b.StopTimer()
			t, i = build(), 0
			b.StartTimer()
		}
		if !t.Remove(ids[i]) {
			b.Fatal("not there")
		}
		i++
	}
}

// BenchmarkResponderAnswer answers a query for the 8 children of a node
// near the leaves of a tree of 10^6 IDs.
func BenchmarkResponderAnswer(b *testing.B) {
	t, err := BuildTree(DefaultTreeConfig(), figureIDs())
	if err != nil {
		b.Fatal(err)
	}
	r := mustResponder(b, t)
	q := &Query{Session: 1, Shape: t.Config(), HashSize: DefaultHashSize, MaxAnswerSize: DefaultMaxPacketSize}
	for i := range 8 {
		id := figureIDs()[i*1000]
		q.Items = append(q.Items, QueryItem{Pos: t.PositionOf(id, 5)})
	}
	dg := AppendQuery(nil, q)
	var out []byte
	b.ReportAllocs()
	for b.Loop() {
		if out, err = r.Answer(out[:0], body(dg)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkShapeMemory reports the heap per ID and the build time of a tree
// of 10^6 IDs for the shapes BenchmarkShapeChoice found cheapest on the
// wire.
func BenchmarkShapeMemory(b *testing.B) {
	for _, shape := range []TreeConfig{
		{FanoutBits: 2, LeafSize: 4}, {FanoutBits: 2, LeafSize: 16},
		{FanoutBits: 3, LeafSize: 4}, {FanoutBits: 3, LeafSize: 8}, {FanoutBits: 3, LeafSize: 16},
		{FanoutBits: 4, LeafSize: 8}, {FanoutBits: 4, LeafSize: 16},
	} {
		b.Run(fmt.Sprintf("b=%d/L=%d", shape.FanoutBits, shape.LeafSize), func(b *testing.B) {
			build := func() any {
				t, err := BuildTree(shape, figureIDs())
				if err != nil {
					b.Fatal(err)
				}
				return t
			}
			for b.Loop() {
				build()
			}
			b.ReportMetric(heapPerID(b, build), "heap-bytes/ID")
			t := build().(*Tree)
			fresh := randomIDs(newRand(5), 100_000)
			start := time.Now()
			for _, id := range fresh {
				t.Insert(id)
			}
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(len(fresh)), "ns/insert")
		})
	}
}

// BenchmarkInsertBatchThenRoot is what a node does between two
// anti-entropy sessions: many inserts, then one read of the root, which
// settles the hashes the inserts left dirty. Per insert, queued with
// InsertLater in batches of 1,000 and 20,000, into a tree of 10^6 IDs and
// into one of 20,000 (a log of a few seconds at a high rate); each tree
// grows by b.N.
func BenchmarkInsertBatchThenRoot(b *testing.B) {
	for _, size := range []int{1_000_000, 20_000} {
		for _, batch := range []int{1_000, 20_000} {
			b.Run(fmt.Sprintf("tree=%d/batch=%d", size, batch), func(b *testing.B) {
				t, err := BuildTree(DefaultTreeConfig(), figureIDs()[:size])
				if err != nil {
					b.Fatal(err)
				}
				fresh := randomIDs(newRand(78), 1<<21)
				i := 0
				for b.Loop() {
					t.InsertLater(fresh[i%len(fresh)])
					i++
					if i%batch == 0 {
						_ = t.Root()
					}
				}
			})
		}
	}
}
