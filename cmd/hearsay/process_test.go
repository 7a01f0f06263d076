package main

// What end-to-end tests run: the hearsay binary, agents as child
// processes on 127.0.0.1, their event streams, a steady publisher.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/client"
)

// The hearsay binary, built in the background from the start of the run
// so that the in-process tests overlap the build.
var (
	hearsayPath string
	buildDone   = make(chan struct{}) // closed when the build ended
	buildErr    error                 // valid once buildDone is closed
	cancelBuild context.CancelFunc
)

func TestMain(m *testing.M) {
	// The environment of whoever runs the tests must not leak into the
	// commands; tests that set variables do so with t.Setenv.
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, envPrefix) {
			os.Unsetenv(name)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cancelBuild = cancel
	go func() {
		defer close(buildDone)
		hearsayPath, buildErr = buildHearsay(ctx)
	}()
	code := m.Run()
	cancelBuild() // unused by the tests run: not needed
	<-buildDone
	os.Exit(code)
}

// buildHearsay returns the path of the hearsay binary. The go command
// keeps what go run links in its build cache and go run -exec echo prints
// where, so that only the first run after a change links. That first run
// prints a temporary path, removed at once: the second try finds the
// binary in the cache.
func buildHearsay(ctx context.Context) (string, error) {
	for range 2 {
		cmd := exec.CommandContext(ctx, "go", "run", "-exec", "echo", ".")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("go run: %w\n%s", err, stderr.Bytes())
		}
		if path := strings.TrimSpace(string(out)); filepath.IsAbs(path) {
			if _, err := os.Stat(path); err == nil {
				return path, nil
			}
		}
	}
	return "", errors.New("go run -exec echo printed no binary that stayed")
}

// hearsayBinary waits for the hearsay binary and returns its path.
func hearsayBinary(t *testing.T) string {
	t.Helper()
	<-buildDone
	require.NoError(t, buildErr)
	return hearsayPath
}

// agentProcess is a hearsay agent running as a child process.
type agentProcess struct {
	name    string
	gossip  string // UDP 127.0.0.1:port
	api     string // TCP 127.0.0.1:port
	dataDir string
	cmd     *exec.Cmd
	logs    *syncBuffer   // its stderr
	exited  chan struct{} // closed when it exited
	exitErr error         // valid once exited is closed
}

// startAgent starts an agent and waits until its API is healthy. The agent
// is killed when the test ends, and its log shown if the test failed.
func startAgent(t *testing.T, name, gossip, api, dataDir string, args ...string) *agentProcess {
	t.Helper()
	a := &agentProcess{name: name, gossip: gossip, api: api, dataDir: dataDir,
		logs: &syncBuffer{}, exited: make(chan struct{})}
	args = append([]string{"agent", "--name", name, "--bind", gossip, "--api", api, "--data-dir", dataDir}, args...)
	a.cmd = exec.Command(hearsayBinary(t), args...)
	a.cmd.Env = agentEnv()
	a.cmd.Stdout = a.logs
	a.cmd.Stderr = a.logs
	require.NoError(t, a.cmd.Start())
	go func() {
		a.exitErr = a.cmd.Wait()
		close(a.exited)
	}()
	t.Cleanup(func() {
		a.kill(t)
		if t.Failed() {
			t.Logf("--- log of %s (pid %d):\n%s", a.name, a.cmd.Process.Pid, a.logs.String())
		}
	})
	waitRunning(t, a.logs, api, a.exited)
	return a
}

// status is the agent's /v1/status.
func (a *agentProcess) status(t *testing.T) agentStatus { return statusOf(t, a.api) }

// waitRounds waits until the agent has run rounds more gossip rounds.
func (a *agentProcess) waitRounds(t *testing.T, rounds uint64) {
	t.Helper()
	from := a.status(t).Rounds
	require.Eventually(t, func() bool { return a.status(t).Rounds >= from+rounds }, 20*time.Second, 10*time.Millisecond,
		"%s did not run %d rounds", a.name, rounds)
}

// settle waits until the agent has run rounds more gossip rounds, in which
// late copies of its messages (duplicates) would arrive, and s, a stream of
// the agent's opened before it delivered anything, has received every
// message the agent delivered.
func (a *agentProcess) settle(t *testing.T, s *testStream, rounds uint64) {
	t.Helper()
	a.waitRounds(t, rounds)
	require.Eventually(t, func() bool { return uint64(s.total()) == a.status(t).MessagesDelivered }, 20*time.Second,
		10*time.Millisecond, "stream %s has not received what %s delivered", s.name, a.name)
}

// cluster is the addresses and data directories of n agents to start.
type cluster struct {
	gossip, api, dirs []string
}

func newCluster(t *testing.T, n int) cluster {
	var c cluster
	for range n {
		c.gossip = append(c.gossip, freeUDPAddr(t))
		c.api = append(c.api, freeTCPAddr(t))
		c.dirs = append(c.dirs, t.TempDir())
	}
	return c
}

// start starts the cluster's agent i, named name, with args.
func (c cluster) start(t *testing.T, i int, name string, args ...string) *agentProcess {
	t.Helper()
	return startAgent(t, name, c.gossip[i], c.api[i], c.dirs[i], args...)
}

// peersFlag gives an agent the cluster's agents as its static peers.
func (c cluster) peersFlag() []string { return []string{"--peers", strings.Join(c.gossip, ",")} }

// startAll starts every agent of the cluster, named prefix-1 and up, each
// with the others as its static peers and args.
func (c cluster) startAll(t *testing.T, prefix string, args ...string) []*agentProcess {
	t.Helper()
	args = append(c.peersFlag(), args...)
	var agents []*agentProcess
	for i := range c.gossip {
		agents = append(agents, c.start(t, i, fmt.Sprintf("%s-%d", prefix, i+1), args...))
	}
	return agents
}

// agentEnv is the environment of child processes, without HEARSAY_
// variables of whoever runs the tests.
func agentEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envPrefix) {
			env = append(env, kv)
		}
	}
	return env
}

// kill ends the agent with SIGKILL, if it still runs, and waits for it.
func (a *agentProcess) kill(t *testing.T) {
	select {
	case <-a.exited:
		return
	default:
	}
	a.cmd.Process.Kill()
	select {
	case <-a.exited:
	case <-time.After(10 * time.Second):
		t.Errorf("%s did not exit after SIGKILL", a.name)
	}
}

// testStream is an open event stream of an agent, counting what it receives.
type testStream struct {
	name    string
	changes changes       // at each event, and when the stream ends
	ended   chan struct{} // closed when the stream ended
	mu      sync.Mutex
	counts  map[string]int // message ID -> times received
	other   []string       // anything else received
	times   map[string]time.Time
	order   []string // message IDs in the order received
}

func openStream(t *testing.T, name, api, pattern string) *testStream {
	t.Helper()
	return openStreamFrom(t, name, api, pattern, "")
}

// openStreamFrom opens a stream that resumes after the message lastID
// (Last-Event-ID), or live from now if lastID is empty. It does not
// reconnect: it ends when the agent ends it.
func openStreamFrom(t *testing.T, name, api, pattern, lastID string) *testStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	agent, err := client.New(api)
	require.NoError(t, err)
	// Subscribe returns once the agent holds the subscription: from here
	// on, every message it accepts is on this stream.
	sub, err := agent.Subscribe(ctx, pattern, client.After(lastID), client.WithoutReconnect())
	require.NoError(t, err)
	s := &testStream{name: name, ended: make(chan struct{}), counts: map[string]int{}, times: map[string]time.Time{}}
	go func() {
		defer s.changes.notify()
		defer close(s.ended)
		for {
			m, err := sub.Next()
			now := time.Now()
			var streamErr *client.StreamError
			s.mu.Lock()
			switch {
			case err == nil:
				s.counts[m.ID]++
				s.order = append(s.order, m.ID)
				if _, ok := s.times[m.ID]; !ok {
					s.times[m.ID] = now
				}
			case errors.As(err, &streamErr):
				s.other = append(s.other, "error: "+streamErr.Reason)
			}
			s.mu.Unlock()
			if err != nil {
				return
			}
			s.changes.notify()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-s.ended
		sub.Close()
	})
	return s
}

// missing counts the ids the stream has not received.
func (s *testStream) missing(ids []string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, id := range ids {
		if s.counts[id] == 0 {
			n++
		}
	}
	return n
}

// total is the number of messages received, copies included.
func (s *testStream) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.order)
}

// waitFor waits until the stream has received every one of ids.
func (s *testStream) waitFor(t *testing.T, ids []string, timeout time.Duration) {
	t.Helper()
	if !s.changes.await(func() bool { return s.missing(ids) == 0 }, s.ended, timeout) {
		t.Fatalf("stream %s: %d of %d messages missing after %s", s.name, s.missing(ids), len(ids), timeout)
	}
}

// waitTotal waits until the stream has received n messages.
func (s *testStream) waitTotal(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	if !s.changes.await(func() bool { return s.total() >= n }, s.ended, timeout) {
		t.Fatalf("stream %s: %d of %d messages after %s", s.name, s.total(), n, timeout)
	}
}

// waitEnd waits until the agent ends the stream and returns the events
// other than messages that it received.
func (s *testStream) waitEnd(t *testing.T, timeout time.Duration) []string {
	t.Helper()
	select {
	case <-s.ended:
	case <-time.After(timeout):
		t.Fatalf("stream %s did not end within %s", s.name, timeout)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.other...)
}

// assertExactly checks that the stream received each of ids once and
// nothing else.
func (s *testStream) assertExactly(t *testing.T, ids []string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[string]int{}
	for _, id := range ids {
		want[id] = 1
	}
	assert.Equal(t, want, s.counts, "stream %s: each message exactly once, and no other", s.name)
	assert.Empty(t, s.other, "stream %s: events other than messages", s.name)
}

// publishMessages publishes n messages over HTTP and returns their IDs.
func publishMessages(t *testing.T, api, topic string, n int) []string {
	t.Helper()
	agent, err := client.New(api, client.WithPublishRetries(pushRetries))
	require.NoError(t, err)
	ids := make([]string, n)
	for i := range ids {
		id, err := agent.Publish(context.Background(), topic, fmt.Appendf(nil, "%s #%d", topic, i))
		require.NoError(t, err)
		ids[i] = id
	}
	return ids
}

// metric reads the value of a counter or gauge without labels from the
// agent's /metrics.
func metric(t *testing.T, api, name string) float64 {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + api + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if value, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			var v float64
			_, err := fmt.Sscan(value, &v)
			require.NoError(t, err, "%s: %q", name, value)
			return v
		}
	}
	require.NoError(t, sc.Err())
	t.Fatalf("%s: no metric %s", api, name)
	return 0
}

// publisher publishes a message every interval on an agent until stopped,
// and keeps the IDs it got.
type publisher struct {
	changes changes
	stop    chan struct{}
	stopped chan struct{}
	mu      sync.Mutex
	ids     []string
}

func startPublisher(api, topic string, interval time.Duration) *publisher {
	p := &publisher{stop: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(p.stopped)
		agent, err := client.New(api, client.WithPublishRetries(pushRetries), client.WithRequestTimeout(5*time.Second))
		if err != nil {
			panic(err) // api is a host:port of the test's
		}
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			if id, err := agent.Publish(context.Background(), topic, fmt.Appendf(nil, "tick %d", i)); err == nil {
				p.mu.Lock()
				p.ids = append(p.ids, id)
				p.mu.Unlock()
				p.changes.notify()
			}
		}
	}()
	return p
}

func (p *publisher) published() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.ids...)
}

// waitPublished waits until n more messages than now are published.
func (p *publisher) waitPublished(t *testing.T, n int) {
	t.Helper()
	want := len(p.published()) + n
	if !p.changes.await(func() bool { return len(p.published()) >= want }, nil, 20*time.Second) {
		t.Fatalf("published %d of %d messages", len(p.published()), want)
	}
}

func (p *publisher) halt() []string {
	close(p.stop)
	<-p.stopped
	return p.published()
}

// startSubscriber runs "hearsay subscribe" with args until the test ends
// and returns its lines of output, closed when it exits, and its stderr.
func startSubscriber(t *testing.T, args ...string) (lines <-chan string, stderr *syncBuffer, cmd *exec.Cmd) {
	t.Helper()
	cmd = exec.Command(hearsayBinary(t), append([]string{"subscribe"}, args...)...)
	cmd.Env = agentEnv()
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr = &syncBuffer{}
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	ch := make(chan string, 1000)
	go func() {
		scanner := bufio.NewScanner(out)
		for scanner.Scan() {
			ch <- scanner.Text()
		}
		close(ch)
	}()
	return ch, stderr, cmd
}

// runBinary runs the hearsay binary to completion with args and stdin.
func runBinary(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, hearsayBinary(t), args...)
	cmd.Env = agentEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code <= 0 {
		t.Fatalf("hearsay %v: %v", args, err)
	}
	return code, out.String(), errOut.String()
}
