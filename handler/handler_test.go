package handler

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/node"
)

// quiet is a logger for tests that expect warnings.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newNode opens a node with no peers on the loopback; with dataDir, its
// filter and log are LevelDB's, kept there.
func newNode(t *testing.T, dataDir string, tweak func(*node.Config)) *node.Node {
	t.Helper()
	cfg := node.Config{Bind: "127.0.0.1:0", DataDir: dataDir, Name: "handler-test", Logger: quiet}
	if tweak != nil {
		tweak(&cfg)
	}
	n, err := node.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { n.Close() })
	return n
}

// recorder is a Runner that records every run and asks fail whether a run
// fails. It notifies on changed at each run.
type recorder struct {
	mu      sync.Mutex
	runs    []Job
	fail    func(Job) bool
	block   chan struct{} // if not nil, runs wait for it to close
	changed chan struct{}
}

func newRecorder(fail func(Job) bool) *recorder {
	return &recorder{fail: fail, changed: make(chan struct{}, 1)}
}

func (r *recorder) Run(ctx context.Context, job Job) error {
	if r.block != nil {
		select {
		case <-r.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	r.runs = append(r.runs, job)
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
	if r.fail != nil && r.fail(job) {
		return fmt.Errorf("attempt %d fails", job.Attempt)
	}
	return nil
}

// succeeded returns the payloads of the runs that succeeded, in order.
func (r *recorder) succeeded() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, j := range r.runs {
		if r.fail == nil || !r.fail(j) {
			out = append(out, string(j.Message.Payload))
		}
	}
	return out
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.runs)
}

// waitUntil waits for cond, re-checked at each run.
func (r *recorder) waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for !cond() {
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("waiting for %s: runs so far %v", what, r.succeeded())
		}
	}
}

func publish(t *testing.T, n *node.Node, topic string, payloads ...string) []gossip.MessageID {
	t.Helper()
	var ids []gossip.MessageID
	for _, p := range payloads {
		id, err := n.Publish(context.Background(), topic, []byte(p))
		require.NoError(t, err)
		ids = append(ids, id)
	}
	return ids
}

func startHandlers(t *testing.T, n *node.Node, cfg Config) *Handlers {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	hs, err := Start(n, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { hs.Close() })
	return hs
}

func mustSpec(t *testing.T, s string) Spec {
	t.Helper()
	spec, err := ParseSpec(s)
	require.NoError(t, err)
	return spec
}

func TestParseSpec(t *testing.T) {
	s, err := ParseSpec("orders.>=./notify.sh --to=ops, now")
	require.NoError(t, err)
	assert.Equal(t, "orders.>", s.Pattern.String())
	assert.Equal(t, "./notify.sh --to=ops, now", s.Command, "everything after the first '='")
	assert.Equal(t, "orders.>=./notify.sh --to=ops, now", s.String())
	for _, bad := range []string{"", "orders.>", "=cmd", "orders.>=", "orders.>.x=cmd", "a b=cmd"} {
		_, err := ParseSpec(bad)
		assert.Error(t, err, "%q", bad)
	}
	_, err = Start(nil, Config{Handlers: []Spec{s, s}})
	assert.ErrorContains(t, err, "given twice")
}

// A run that fails is retried, with backoff, until it succeeds; the others
// go on meanwhile; only matching topics run.
func TestFailedRunIsRetriedNotSkipped(t *testing.T) {
	n := newNode(t, "", nil)
	rec := newRecorder(func(j Job) bool { return string(j.Message.Payload) == "b" && j.Attempt < 3 })
	startHandlers(t, n, Config{Handlers: []Spec{mustSpec(t, "orders.*=unused")}, Runner: rec,
		RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond})
	require.NoError(t, n.Start())
	publish(t, n, "orders.new", "a", "b", "c")
	publish(t, n, "other.topic", "not for this handler")
	rec.waitUntil(t, "a, b and c handled", func() bool { return len(rec.succeeded()) == 3 })
	assert.ElementsMatch(t, []string{"a", "b", "c"}, rec.succeeded())
	assert.Equal(t, 5, rec.count(), "b ran three times")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, j := range rec.runs {
		assert.Equal(t, "orders.new", j.Message.Topic)
		assert.Equal(t, "handler-test", j.Node)
	}
}

// A restart resumes after the last message handled: what was handled
// before does not run again, what was not (a message still failing at the
// stop, one published while no handler ran) does. A message already in
// the log when the handler first started never runs.
func TestRestartResumesAfterLastHandled(t *testing.T) {
	dataDir, progressDir := t.TempDir(), t.TempDir()
	spec := mustSpec(t, ">=unused")

	// First life: "c" fails every time.
	n := newNode(t, dataDir, nil)
	publish(t, n, "t", "before the handler")
	rec := newRecorder(func(j Job) bool { return string(j.Message.Payload) == "c" })
	hs := startHandlers(t, n, Config{Handlers: []Spec{spec}, Dir: progressDir, Runner: rec,
		RetryMin: time.Millisecond, RetryMax: time.Millisecond})
	require.NoError(t, n.Start())
	publish(t, n, "t", "a", "b", "c", "d", "e")
	rec.waitUntil(t, "a, b, d, e handled and c tried twice", func() bool {
		return len(rec.succeeded()) == 4 && rec.count() >= 6
	})
	assert.ElementsMatch(t, []string{"a", "b", "d", "e"}, rec.succeeded())
	require.NoError(t, hs.Close())
	publish(t, n, "t", "f") // delivered while no handler runs
	require.NoError(t, n.Close())

	// Second life: everything succeeds.
	n = newNode(t, dataDir, nil)
	rec = newRecorder(nil)
	startHandlers(t, n, Config{Handlers: []Spec{spec}, Dir: progressDir, Runner: rec, Concurrency: 1})
	require.NoError(t, n.Start())
	publish(t, n, "t", "g")
	rec.waitUntil(t, "c, f and g handled", func() bool { return rec.count() >= 3 })
	assert.Equal(t, []string{"c", "f", "g"}, rec.succeeded(), "in the log's order, c first")

	// A third start runs nothing: all is done.
	require.NoError(t, n.Close())
	n = newNode(t, dataDir, nil)
	rec = newRecorder(nil)
	hs = startHandlers(t, n, Config{Handlers: []Spec{spec}, Dir: progressDir, Runner: rec})
	require.NoError(t, n.Start())
	publish(t, n, "t", "h")
	rec.waitUntil(t, "h handled", func() bool { return rec.count() >= 1 })
	require.NoError(t, hs.Close())
	assert.Equal(t, []string{"h"}, rec.succeeded())
}

// A handler that failed everything since it first started (nothing
// handled in order yet) still gets it all after a restart.
func TestRestartBeforeAnythingHandled(t *testing.T) {
	dataDir, progressDir := t.TempDir(), t.TempDir()
	spec := mustSpec(t, "jobs.>=unused")
	n := newNode(t, dataDir, nil)
	publish(t, n, "jobs.old", "old")
	rec := newRecorder(func(Job) bool { return true })
	hs := startHandlers(t, n, Config{Handlers: []Spec{spec}, Dir: progressDir, Runner: rec, RetryMin: time.Hour, RetryMax: time.Hour})
	require.NoError(t, n.Start())
	publish(t, n, "jobs.new", "x", "y")
	rec.waitUntil(t, "x and y tried", func() bool { return rec.count() >= 2 })
	require.NoError(t, hs.Close())
	require.NoError(t, n.Close())

	n = newNode(t, dataDir, nil)
	rec = newRecorder(nil)
	startHandlers(t, n, Config{Handlers: []Spec{spec}, Dir: progressDir, Runner: rec, Concurrency: 1})
	require.NoError(t, n.Start())
	rec.waitUntil(t, "x and y handled", func() bool { return rec.count() >= 2 })
	assert.Equal(t, []string{"x", "y"}, rec.succeeded())
}

// MaxPending bounds the messages taken and not done; past the node's
// subscriber buffer, the handler is cut off and takes the rest from the
// log: every message is handled once, none lost.
func TestPendingWindowAndCutOffResumeFromTheLog(t *testing.T) {
	n := newNode(t, "", func(c *node.Config) { c.SubscriberBuffer = 4 })
	rec := newRecorder(nil)
	rec.block = make(chan struct{})
	hs := startHandlers(t, n, Config{Handlers: []Spec{mustSpec(t, ">=unused")}, Runner: rec, MaxPending: 3, Concurrency: 2})
	require.NoError(t, n.Start())
	var want []string
	for i := range 40 {
		want = append(want, fmt.Sprint(i))
	}
	publish(t, n, "t", want...)
	hs.list[0].p.mu.Lock()
	taken := len(hs.list[0].p.window)
	hs.list[0].p.mu.Unlock()
	assert.LessOrEqual(t, taken, 3, "at most MaxPending taken")
	close(rec.block)
	rec.waitUntil(t, "all handled", func() bool { return rec.count() >= len(want) })
	require.NoError(t, hs.Close())
	assert.ElementsMatch(t, want, rec.succeeded(), "each once")
}

// The progress file is JSON, written atomically, and a corrupt one is a
// clear error.
func TestProgressFile(t *testing.T) {
	dir := t.TempDir()
	spec := mustSpec(t, "a.b=true")
	n := newNode(t, "", nil)
	rec := newRecorder(nil)
	hs := startHandlers(t, n, Config{Handlers: []Spec{spec}, Dir: dir, Runner: rec})
	require.NoError(t, n.Start())
	ids := publish(t, n, "a.b", "one")
	rec.waitUntil(t, "one handled", func() bool { return rec.count() == 1 })
	require.NoError(t, hs.Close())
	b, err := os.ReadFile(progressPath(dir, spec))
	require.NoError(t, err)
	assert.JSONEq(t, fmt.Sprintf(`{"handler": "a.b=true", "after": %q, "done": []}`, ids[0].String()), string(b))
	assert.Contains(t, string(b), `"handler": "a.b=true"`, "indented, as docs/handlers.md shows it")
	leftovers, _ := filepath.Glob(filepath.Join(dir, "*.tmp"))
	assert.Empty(t, leftovers)

	require.NoError(t, os.WriteFile(progressPath(dir, spec), []byte("{not json"), 0o600))
	_, err = Start(n, Config{Handlers: []Spec{spec}, Dir: dir, Runner: rec, Logger: quiet})
	assert.ErrorContains(t, err, "is corrupt")
}

// countingShell is the Shell runner, counting the runs that succeeded.
type countingShell struct{ done chan struct{} }

func (c *countingShell) Run(ctx context.Context, job Job) error {
	err := Shell{}.Run(ctx, job)
	if err == nil {
		c.done <- struct{}{}
	}
	return err
}

func newBenchNode(b *testing.B) (*node.Node, error) {
	n, err := node.New(node.Config{Bind: "127.0.0.1:0", Logger: quiet})
	if err == nil {
		b.Cleanup(func() { n.Close() })
	}
	return n, err
}

func mustPattern(s string) node.Pattern { return node.MustParsePattern(s) }

// hangingRunner signals each run's start and runs until killed.
type hangingRunner struct{ started chan string }

func (h hangingRunner) Run(ctx context.Context, job Job) error {
	h.started <- string(job.Message.Payload)
	<-ctx.Done()
	return ctx.Err()
}

// Close kills a command still running after StopTimeout; its message is
// not done, so it runs again after a restart.
func TestCloseKillsRunningCommandsAndTheyRunAgain(t *testing.T) {
	dataDir, progressDir := t.TempDir(), t.TempDir()
	spec := mustSpec(t, ">=unused")
	n := newNode(t, dataDir, nil)
	hang := hangingRunner{started: make(chan string, 1)}
	hs := startHandlers(t, n, Config{Handlers: []Spec{spec}, Dir: progressDir, Runner: hang, StopTimeout: 20 * time.Millisecond})
	require.NoError(t, n.Start())
	publish(t, n, "t", "hangs")
	require.Equal(t, "hangs", <-hang.started)
	require.NoError(t, hs.Close(), "returns once the command is killed")
	require.NoError(t, n.Close())

	n = newNode(t, dataDir, nil)
	rec := newRecorder(nil)
	startHandlers(t, n, Config{Handlers: []Spec{spec}, Dir: progressDir, Runner: rec})
	require.NoError(t, n.Start())
	rec.waitUntil(t, "the killed message run again", func() bool { return rec.count() >= 1 })
	assert.Equal(t, []string{"hangs"}, rec.succeeded())
}
