package main

// End-to-end tests: real hearsay processes on 127.0.0.1.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	binDir      string // removed by TestMain
	buildOnce   sync.Once
	hearsayPath string
	buildErr    error
)

func TestMain(m *testing.M) {
	var err error
	if binDir, err = os.MkdirTemp("", "hearsay-test-bin"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// hearsayBinary builds the hearsay binary, once per test run.
func hearsayBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		hearsayPath = filepath.Join(binDir, "hearsay")
		if runtime.GOOS == "windows" {
			hearsayPath += ".exe"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", hearsayPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
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
	waitHealthy(t, api, a.exited)
	return a
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
	name   string
	mu     sync.Mutex
	counts map[string]int // message ID -> times received
	other  []string       // anything else received
	times  map[string]time.Time
	order  []string // message IDs in the order received
}

func openStream(t *testing.T, name, api, pattern string) *testStream {
	t.Helper()
	return openStreamFrom(t, name, api, pattern, "")
}

// openStreamFrom opens a stream that resumes after the message lastID
// (Last-Event-ID), or live from now if lastID is empty.
func openStreamFrom(t *testing.T, name, api, pattern, lastID string) *testStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		"http://"+api+"/v1/messages/stream?topic="+url.QueryEscape(pattern), nil)
	require.NoError(t, err)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	// The agent answers once the subscription exists: from here on, every
	// message it accepts is on this stream.
	s := &testStream{name: name, counts: map[string]int{}, times: map[string]time.Time{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		events := newSSEReader(resp.Body, maxEventBytes)
		for {
			ev, err := events.Next()
			if err != nil {
				return
			}
			now := time.Now()
			var m struct {
				ID string `json:"id"`
			}
			s.mu.Lock()
			if ev.Event == "message" && json.Unmarshal([]byte(ev.Data), &m) == nil && m.ID == ev.ID {
				s.counts[m.ID]++
				s.order = append(s.order, m.ID)
				if _, ok := s.times[m.ID]; !ok {
					s.times[m.ID] = now
				}
			} else {
				s.other = append(s.other, ev.Event+": "+ev.Data)
			}
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		resp.Body.Close()
	})
	return s
}

// waitFor waits until the stream has received every one of ids.
func (s *testStream) waitFor(t *testing.T, ids []string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		missing := 0
		for _, id := range ids {
			if s.counts[id] == 0 {
				missing++
			}
		}
		s.mu.Unlock()
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s: %d of %d messages missing after %s", s.name, missing, len(ids), timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
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
	client := &apiClient{base: &url.URL{Scheme: "http", Host: api}, http: &http.Client{}}
	ids := make([]string, n)
	for i := range ids {
		id, err := publish(context.Background(), client, topic, fmt.Appendf(nil, "%s #%d", topic, i))
		require.NoError(t, err)
		ids[i] = id
	}
	return ids
}

// Four agents; messages published on the first reach the three others
// exactly once. Then the fourth is killed and restarted on the same data
// dir: its persistent seen filter keeps the messages it already delivered
// from being delivered again, although its peers offer them.
func TestE2EDeliveryAndRestart(t *testing.T) {
	hearsayBinary(t)
	const n = 4
	var gossip, api, dirs []string
	for range n {
		gossip = append(gossip, freeUDPAddr(t))
		api = append(api, freeTCPAddr(t))
		dirs = append(dirs, t.TempDir())
	}
	peers := strings.Join(gossip, ",")
	// A cache of 600 rounds (30 s at 50ms) keeps the first messages on
	// offer until after the restart, so that the restarted agent is sure to
	// be offered them again.
	gossipFlags := []string{"--interval", "50ms", "--cache-rounds", "600"}
	agents := make([]*agentProcess, n)
	for i := range n {
		agents[i] = startAgent(t, fmt.Sprintf("agent-%d", i+1), gossip[i], api[i], dirs[i],
			append([]string{"--peers", peers}, gossipFlags...)...)
	}
	for _, a := range agents {
		assert.Equal(t, n-1, statusOf(t, a.api).Peers, "%s leaves itself out of --peers", a.name)
	}

	var streams []*testStream
	for _, a := range agents[1:] {
		streams = append(streams, openStream(t, a.name, a.api, "e2e.>"))
	}
	first := publishMessages(t, agents[0].api, "e2e.first", 100)
	for _, s := range streams {
		s.waitFor(t, first, 20*time.Second)
	}
	time.Sleep(500 * time.Millisecond) // 10 rounds, for duplicates to show
	for _, s := range streams {
		s.assertExactly(t, first)
	}

	// Kill agent 4 and restart it with no peers but itself in a peers file,
	// so that it pulls nothing before its new stream is open.
	a4 := agents[3]
	idBefore := statusOf(t, a4.api).ID
	a4.kill(t)
	peersFile := filepath.Join(t.TempDir(), "peers")
	require.NoError(t, os.WriteFile(peersFile, []byte("# only me for now\n"+a4.gossip+"\n"), 0o600))
	a4 = startAgent(t, a4.name+"-restarted", a4.gossip, a4.api, a4.dataDir,
		append([]string{"--peers-file", peersFile}, gossipFlags...)...)
	st := statusOf(t, a4.api)
	assert.Equal(t, idBefore, st.ID, "the identity is kept in the data dir")
	assert.Equal(t, 0, st.Peers)
	stream4 := openStream(t, a4.name, a4.api, "e2e.>")

	// Now give it its peers, by SIGHUP.
	require.NoError(t, os.WriteFile(peersFile, []byte(strings.Join(gossip, "\n")+"\n"), 0o600))
	require.NoError(t, a4.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return statusOf(t, a4.api).Peers == n-1 }, 10*time.Second, 10*time.Millisecond)

	second := publishMessages(t, agents[0].api, "e2e.second", 20)
	stream4.waitFor(t, second, 20*time.Second)
	for _, s := range streams[:2] {
		s.waitFor(t, second, 20*time.Second)
	}
	// Its peers offer it the first 100 again: wait until they came, one
	// way or the other, and check that the seen filter refused them.
	require.Eventually(t, func() bool {
		st := statusOf(t, a4.api)
		return st.MessagesDelivered+st.Duplicates >= 120
	}, 20*time.Second, 20*time.Millisecond, "the restarted agent was not offered the first messages again")
	time.Sleep(300 * time.Millisecond)
	stream4.assertExactly(t, second)
	st = statusOf(t, a4.api)
	assert.EqualValues(t, 20, st.MessagesDelivered)
	assert.GreaterOrEqual(t, st.Duplicates, uint64(100))
	for _, s := range streams[:2] {
		s.assertExactly(t, append(append([]string(nil), first...), second...))
	}
	assert.Regexp(t, `msg="SIGHUP: peers reloaded" peers=3`, a4.logs.String())
}

// An agent SIGKILLed while messages keep flowing, restarted 20 s later on
// its data dir: anti-entropy brings it every message it missed (long gone
// from the propagation caches), and a stream resumed with Last-Event-ID
// delivers each exactly once, none twice.
func TestE2EKilledAgentRecoversWhatItMissed(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 30 s (a 20 s outage)")
	}
	hearsayBinary(t)
	const n = 3
	var gossip, api, dirs []string
	for range n {
		gossip = append(gossip, freeUDPAddr(t))
		api = append(api, freeTCPAddr(t))
		dirs = append(dirs, t.TempDir())
	}
	// Caches keep a message 30 rounds of 50ms: what is published more than
	// 1.5 s before the restart can only come back by anti-entropy.
	flags := []string{"--peers", strings.Join(gossip, ","), "--interval", "50ms", "--ae-interval", "1s"}
	agents := make([]*agentProcess, n)
	for i := range n {
		agents[i] = startAgent(t, fmt.Sprintf("agent-%d", i+1), gossip[i], api[i], dirs[i], flags...)
	}
	before := openStream(t, "agent-3", api[2], "flow.>")

	var mu sync.Mutex
	var published []string
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		client := &apiClient{base: &url.URL{Scheme: "http", Host: api[0]}, http: &http.Client{Timeout: 5 * time.Second}}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			id, err := publish(context.Background(), client, "flow.tick", fmt.Appendf(nil, "tick %d", i))
			if err == nil {
				mu.Lock()
				published = append(published, id)
				mu.Unlock()
			}
		}
	}()
	time.Sleep(2 * time.Second)
	agents[2].kill(t)
	time.Sleep(20 * time.Second)
	restarted := startAgent(t, "agent-3-restarted", gossip[2], api[2], dirs[2], flags...)
	before.mu.Lock()
	require.NotEmpty(t, before.order, "agent 3 received messages before it was killed")
	lastSeen := before.order[len(before.order)-1]
	before.mu.Unlock()
	after := openStreamFrom(t, "agent-3 resumed", restarted.api, "flow.>", lastSeen)
	time.Sleep(3 * time.Second)
	close(stop)
	<-stopped

	mu.Lock()
	all := append([]string(nil), published...)
	mu.Unlock()
	require.Greater(t, len(all), 300)
	before.mu.Lock()
	var missed []string
	for _, id := range all {
		if before.counts[id] == 0 {
			missed = append(missed, id)
		}
	}
	beforeCounts := before.counts
	before.mu.Unlock()
	after.waitFor(t, missed, 60*time.Second)
	time.Sleep(500 * time.Millisecond)
	after.mu.Lock()
	defer after.mu.Unlock()
	for id, k := range after.counts {
		assert.Equal(t, 1, k, "delivered twice after the restart: %s", id)
		assert.Zero(t, beforeCounts[id], "delivered before the kill and again after: %s", id)
	}
	for id, k := range beforeCounts {
		assert.Equal(t, 1, k, "delivered twice before the kill: %s", id)
	}
	assert.Len(t, after.counts, len(missed), "exactly the missed messages")
	st := statusOf(t, restarted.api)
	t.Logf("%d published; %d before the kill, %d after the restart; status delivered=%d",
		len(all), len(beforeCounts), len(after.counts), st.MessagesDelivered)
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

// The client commands as built binaries against a running agent.
func TestE2EClientCommands(t *testing.T) {
	a := startAgent(t, "solo", freeUDPAddr(t), freeTCPAddr(t), t.TempDir(), "--interval", "50ms")

	// subscribe runs until interrupted; its output is read line by line.
	sub := exec.Command(hearsayBinary(t), "subscribe", "--api", a.api, "--topic", "cli.>", "--format", "raw")
	sub.Env = agentEnv()
	subOut, err := sub.StdoutPipe()
	require.NoError(t, err)
	var subErr syncBuffer
	sub.Stderr = &subErr
	require.NoError(t, sub.Start())
	t.Cleanup(func() { sub.Process.Kill() })
	lines := make(chan string, 10)
	go func() {
		scanner := bufio.NewScanner(subOut)
		for scanner.Scan() {
			lines <- scanner.Text()
		}
		close(lines)
	}()
	require.Eventually(t, func() bool { return statusOf(t, a.api).Subscribers == 1 }, 10*time.Second, 10*time.Millisecond)

	hexID := regexp.MustCompile(`^[0-9a-f]{32}\n$`)
	code, out, errOut := runBinary(t, "", "push", "--api", a.api, "--topic", "cli.one", "hello")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, hexID, out)
	code, out, errOut = runBinary(t, "from stdin", "push", "--api", "http://"+a.api, "--topic", "cli.two")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, hexID, out)
	// The API address from the environment.
	cmd := exec.Command(hearsayBinary(t), "push", "--topic", "cli.three", "-")
	cmd.Env = append(agentEnv(), "HEARSAY_API="+a.api)
	cmd.Stdin = strings.NewReader("from env")
	out2, err := cmd.Output()
	require.NoError(t, err)
	assert.Regexp(t, hexID, string(out2))

	for _, want := range []string{"hello", "from stdin", "from env"} {
		select {
		case line := <-lines:
			assert.Equal(t, want, line)
		case <-time.After(10 * time.Second):
			t.Fatalf("subscribe printed nothing for %q; stderr: %s", want, subErr.String())
		}
	}
	require.NoError(t, sub.Process.Signal(os.Interrupt))
	assert.NoError(t, sub.Wait(), "subscribe exits 0 on SIGINT; stderr: %s", subErr.String())

	code, out, errOut = runBinary(t, "", "status", "--api", a.api)
	require.Equal(t, 0, code, errOut)
	var st agentStatus
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	assert.Equal(t, "solo", st.Name)
	assert.EqualValues(t, 3, st.MessagesPublished)
	assert.Contains(t, out, "\n  \"name\": \"solo\",\n", "indented")

	code, out, errOut = runBinary(t, "", "peers", "--api", a.api)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "{\n  \"registry\": \"static\",\n  \"peers\": [],\n  \"suspects\": []\n}\n", out)

	// Errors: the agent's, and usage.
	code, _, errOut = runBinary(t, strings.Repeat("x", 1<<20+1), "push", "--api", a.api, "--topic", "cli.big")
	assert.Equal(t, exitFailure, code)
	assert.Regexp(t, `^hearsay: agent answered 413: payload larger than \d+ bytes`, errOut)
	assert.Equal(t, 1, strings.Count(errOut, "\n"))

	code, out, errOut = runBinary(t, "", "agent", "--max-packet-size", "100")
	assert.Equal(t, exitUsage, code)
	assert.Empty(t, out)
	assert.Equal(t, "hearsay: --max-packet-size: must be between 512 and 65507, got 100\n", errOut)

	code, _, errOut = runBinary(t, "", "agent", "--no-such-flag")
	assert.Equal(t, exitUsage, code)
	assert.Equal(t, "hearsay: unknown flag --no-such-flag (see hearsay agent --help)\n", errOut)

	code, _, errOut = runBinary(t, "", "no-such-command")
	assert.Equal(t, exitUsage, code)
	assert.Equal(t, "hearsay: unknown command \"no-such-command\" (see hearsay --help)\n", errOut)

	// SIGTERM stops the agent gracefully, with exit status 0.
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-a.exited:
		assert.NoError(t, a.exitErr)
		assert.Contains(t, a.logs.String(), `msg="node stopped"`)
	case <-time.After(2 * shutdownTimeout):
		t.Fatal("the agent did not stop on SIGTERM")
	}
}

// A 1 MiB message pushed from the command line travels as chunks between
// agent processes and reaches every stream once, whole.
func TestE2ELargeMessage(t *testing.T) {
	hearsayBinary(t)
	const n = 3
	var gossip []string
	for range n {
		gossip = append(gossip, freeUDPAddr(t))
	}
	var agents []*agentProcess
	for i := range n {
		agents = append(agents, startAgent(t, fmt.Sprintf("large-%d", i+1), gossip[i], freeTCPAddr(t), t.TempDir(),
			"--peers", strings.Join(gossip, ","), "--interval", "50ms"))
	}
	var streams []*testStream
	for _, a := range agents[1:] {
		streams = append(streams, openStream(t, a.name, a.api, "large"))
	}
	payload := make([]byte, 1<<20)
	for i := range payload {
		payload[i] = byte(i*31 + i>>10)
	}
	code, out, errOut := runBinary(t, string(payload), "push", "--api", agents[0].api, "--topic", "large")
	require.Equal(t, 0, code, errOut)
	id := strings.TrimSpace(out)
	for _, s := range streams {
		s.waitFor(t, []string{id}, 30*time.Second)
		s.assertExactly(t, []string{id})
	}
	st := statusOf(t, agents[2].api)
	assert.EqualValues(t, 1, st.MessagesDelivered, "chunks are not messages to the application")
}
