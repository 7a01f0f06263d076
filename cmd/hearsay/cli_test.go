package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
)

// changes wakes whoever waits for a condition on some state each time
// that state changes, so that tests wait on the state itself, not on a
// clock.
type changes struct {
	mu sync.Mutex
	ch chan struct{} // closed by the next notify
}

// next returns a channel closed at the next change.
func (c *changes) next() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	return c.ch
}

func (c *changes) notify() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch != nil {
		close(c.ch)
		c.ch = nil
	}
}

// await checks cond at every change until it holds (true), timeout passes
// or stop is closed (false, unless cond holds by then).
func (c *changes) await(cond func() bool, stop <-chan struct{}, timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		next := c.next() // before the check: a change during it is not missed
		if cond() {
			return true
		}
		select {
		case <-next:
		case <-stop:
			return cond()
		case <-timer.C:
			return false
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use: the program's
// goroutines write while the test reads.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changes changes
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.changes.notify()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// awaitText waits until the buffer holds text; see changes.await.
func (b *syncBuffer) awaitText(text string, stop <-chan struct{}, timeout time.Duration) bool {
	return b.changes.await(func() bool { return strings.Contains(b.String(), text) }, stop, timeout)
}

// cliResult is what an in-process run printed and returned.
type cliResult struct {
	code           int
	stdout, stderr string
	agent          *agentConfig // what agent would have run with; nil if it was not reached
}

// runCLI runs the program in-process with args (without the program name)
// and standard input stdin. The agent is not started: its configuration is
// captured instead.
func runCLI(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	var stdout, stderr syncBuffer
	var res cliResult
	p := &program{stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr}
	p.runAgent = func(_ context.Context, cfg agentConfig) error {
		res.agent = &cfg
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res.code = p.run(ctx, append([]string{"hearsay"}, args...))
	res.stdout, res.stderr = stdout.String(), stderr.String()
	return res
}

// clearEnv unsets every HEARSAY_ variable the commands read, so that the
// environment of whoever runs the tests does not leak in.
func clearEnv(t *testing.T) {
	for _, cmd := range (&program{}).newApp().Commands {
		for _, f := range cmd.Flags {
			for _, name := range f.Names() {
				t.Setenv(envVar(name), "") // restored after the test
				os.Unsetenv(envVar(name))
			}
		}
	}
}

func TestAgentDefaults(t *testing.T) {
	clearEnv(t)
	res := runCLI(t, "", "agent")
	require.Equal(t, exitOK, res.code, res.stderr)
	require.NotNil(t, res.agent)
	cfg := *res.agent
	assert.Equal(t, "", cfg.Name)
	assert.Equal(t, "0.0.0.0:7600", cfg.Bind)
	assert.Equal(t, "", cfg.Advertise)
	assert.Equal(t, "127.0.0.1:7601", cfg.API)
	assert.Empty(t, cfg.Peers)
	assert.Equal(t, "", cfg.PeersFile)
	assert.Equal(t, registryStatic, cfg.Registry)
	assert.Equal(t, "./hearsay-data", cfg.DataDir)
	assert.Equal(t, "leveldb", cfg.Filter)
	assert.Equal(t, 3, cfg.Gossip.Fanout)
	assert.Equal(t, 200*time.Millisecond, cfg.Gossip.Interval)
	assert.Equal(t, 1400, cfg.Gossip.MaxPacketSize)
	assert.Equal(t, 30, cfg.Gossip.CacheRounds)
	assert.Equal(t, slog.LevelInfo, cfg.LogLevel)
	assert.Equal(t, "text", cfg.LogFormat)
}

func TestAgentReadsEnvironment(t *testing.T) {
	clearEnv(t)
	t.Setenv("HEARSAY_FANOUT", "5")
	t.Setenv("HEARSAY_PEERS", "127.0.0.1:7600, 10.0.0.2:7600")
	t.Setenv("HEARSAY_JOIN", "seed.example:7600")
	t.Setenv("HEARSAY_DATA_DIR", "/var/lib/hearsay")
	t.Setenv("HEARSAY_INTERVAL", "50ms")
	t.Setenv("HEARSAY_MAX_PACKET_SIZE", "9000")
	t.Setenv("HEARSAY_LOG_LEVEL", "DEBUG")
	t.Setenv("HEARSAY_LOG_FORMAT", "json")
	t.Setenv("HEARSAY_FILTER", "memory")
	t.Setenv("HEARSAY_NAME", "alpha")
	t.Setenv("HEARSAY_API", "") // empty disables the API

	res := runCLI(t, "", "agent")
	require.Equal(t, exitOK, res.code, res.stderr)
	cfg := *res.agent
	assert.Equal(t, 5, cfg.Gossip.Fanout)
	assert.Equal(t, []string{"127.0.0.1:7600", "10.0.0.2:7600", "seed.example:7600"}, cfg.Peers)
	assert.Equal(t, "/var/lib/hearsay", cfg.DataDir)
	assert.Equal(t, 50*time.Millisecond, cfg.Gossip.Interval)
	assert.Equal(t, 9000, cfg.Gossip.MaxPacketSize)
	assert.Equal(t, slog.LevelDebug, cfg.LogLevel)
	assert.Equal(t, "json", cfg.LogFormat)
	assert.Equal(t, "memory", cfg.Filter)
	assert.Equal(t, "alpha", cfg.Name)
	assert.Equal(t, "", cfg.API)
}

func TestFlagBeatsEnvironment(t *testing.T) {
	clearEnv(t)
	t.Setenv("HEARSAY_FANOUT", "5")
	t.Setenv("HEARSAY_BIND", "127.0.0.1:9000")
	res := runCLI(t, "", "agent", "--fanout", "7", "--bind=127.0.0.1:9100")
	require.Equal(t, exitOK, res.code, res.stderr)
	assert.Equal(t, 7, res.agent.Gossip.Fanout)
	assert.Equal(t, "127.0.0.1:9100", res.agent.Bind)

	// A bad environment value does not matter when the flag overrides it...
	t.Setenv("HEARSAY_FANOUT", "lots")
	res = runCLI(t, "", "agent", "--fanout", "4")
	require.Equal(t, exitOK, res.code, res.stderr)
	assert.Equal(t, 4, res.agent.Gossip.Fanout)
	// ...and is reported, naming the flag, when it does not.
	res = runCLI(t, "", "agent")
	assert.Equal(t, exitUsage, res.code)
	assert.Equal(t, "hearsay: --fanout: want a whole number, got \"lots\"\n", res.stderr)
}

// commandEnvVar is the variable a command's flag reads. A simulation's knobs
// share names with the agent's (--peers, --fanout): HEARSAY_SIMULATE_<FLAG>
// keeps an agent's environment from changing a simulation.
func commandEnvVar(command, flag string) string {
	if command == "simulate" {
		return simulateEnvPrefix + envVar(flag)[len(envPrefix):]
	}
	return envVar(flag)
}

func TestEveryFlagHasItsEnvironmentVariable(t *testing.T) {
	assert.Equal(t, "HEARSAY_DATA_DIR", envVar("data-dir"))
	assert.Equal(t, "HEARSAY_MAX_PACKET_SIZE", envVar("max-packet-size"))
	for _, cmd := range (&program{}).newApp().Commands {
		for _, f := range cmd.Flags {
			ef, ok := f.(cli.DocGenerationFlag)
			require.True(t, ok)
			assert.Equal(t, []string{commandEnvVar(cmd.Name, f.Names()[0])}, ef.GetEnvVars(), "%s --%s", cmd.Name, f.Names()[0])
		}
	}
}

// Every bad value stops the program before it starts anything, with exit
// status 2 and one line on stderr naming the flag.
func TestValidationErrors(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string // expected in the error line
	}{
		{args: []string{"agent", "--fanout", "0"}, want: "--fanout: must be between 1 and 64, got 0"},
		{args: []string{"agent", "--cipher", "aes-128-cbc"}, want: `--cipher: unknown cipher "aes-128-cbc": want xchacha20-poly1305 or aes-256-gcm`},
		{args: []string{"agent", "--fanout", "65"}, want: "--fanout: must be between 1 and 64, got 65"},
		{args: []string{"agent", "--fanout", "three"}, want: `--fanout: want a whole number, got "three"`},
		{args: []string{"agent"}, env: map[string]string{"HEARSAY_FANOUT": "0"}, want: "--fanout: must be between 1 and 64, got 0"},
		{args: []string{"agent", "--interval", "0"}, want: "--interval: must be at least 1ms, got 0s"},
		{args: []string{"agent", "--interval", "-1s"}, want: "--interval: must be at least 1ms, got -1s"},
		{args: []string{"agent", "--interval", "200"}, want: `--interval: want a duration such as 200ms, 5s or 1m30s, got "200"`},
		{args: []string{"agent", "--max-packet-size", "511"}, want: "--max-packet-size: must be between 512 and 65507, got 511"},
		{args: []string{"agent", "--max-packet-size", "65508"}, want: "--max-packet-size: must be between 512 and 65507, got 65508"},
		{args: []string{"agent"}, env: map[string]string{"HEARSAY_MAX_PACKET_SIZE": "100"}, want: "--max-packet-size: must be between 512 and 65507, got 100"},
		{args: []string{"agent", "--cache-rounds", "0"}, want: "--cache-rounds: must be between 1 and 100000, got 0"},
		{args: []string{"agent", "--filter", "redis"}, want: `--filter: must be one of leveldb, memory, got "redis"`},
		{args: []string{"agent", "--log-level", "verbose"}, want: `--log-level: must be one of debug, info, warn, error, got "verbose"`},
		{args: []string{"agent", "--log-format", "xml"}, want: `--log-format: must be one of text, json, got "xml"`},
		{args: []string{"agent", "--registry", "consul"}, want: `--registry: must be one of static, dht, memberlist, dns, got "consul"`},
		{args: []string{"agent", "--registry", "dns"}, want: `--join: --registry dns needs names to resolve`},
		{args: []string{"agent", "--registry", "dns", "--join", "svc"}, want: `--join: dns: "svc": address svc: missing port in address`},
		{args: []string{"agent", "--registry", "dns", "--join", "_svc._udp"}, want: `--join: dns: "_svc._udp": SRV name must be _service._proto.name`},
		{args: []string{"agent", "--registry", "dns", "--join", "svc:7600", "--dns-interval", "10ms"}, want: `--dns-interval: must be at least 100ms, got 10ms`},
		{args: []string{"agent", "--registry", "dns", "--join", "svc:7600", "--dns-server", "nope"}, want: `--dns-server: want host:port, got "nope"`},
		{args: []string{"agent", "--registry", "dht", "--peers", "127.0.0.1:7600"}, want: `--peers: is for the static registry; with --registry dht, give --join`},
		{args: []string{"agent", "--registry", "memberlist", "--peers-file", "p"}, want: `--peers-file: is for the static registry; with --registry memberlist, give --join`},
		{args: []string{"agent", "--memberlist-port", "70000"}, want: `--memberlist-port`},
		{args: []string{"agent", "--max-message-size", "0"}, want: `--max-message-size`},
		{args: []string{"agent", "--memberlist-profile", "fast"}, want: `--memberlist-profile: must be one of lan, wan, local, got "fast"`},
		{args: []string{"agent", "--bind", "7600"}, want: `--bind: want host:port, got "7600"`},
		{args: []string{"agent", "--bind", "127.0.0.1:0"}, want: `--bind: port must be between 1 and 65535, got "0"`},
		{args: []string{"agent", "--bind", "127.0.0.1:70000"}, want: `--bind: port must be between 1 and 65535, got "70000"`},
		{args: []string{"agent", "--advertise", "example.com"}, want: `--advertise: want host:port, got "example.com"`},
		{args: []string{"agent", "--api", "localhost"}, want: `--api: want host:port, got "localhost"`},
		{args: []string{"agent", "--peers", "10.0.0.1:7600,10.0.0.2"}, want: `--peers: want host:port, got "10.0.0.2"`},
		{args: []string{"agent"}, env: map[string]string{"HEARSAY_PEERS": "10.0.0.1:http"}, want: `--peers: port must be between 1 and 65535, got "http"`},
		{args: []string{"agent", "--join", "seed"}, want: `--join: want host:port, got "seed"`},
		{args: []string{"agent", "--data-dir", ""}, want: "--data-dir: the leveldb filter keeps its data in --data-dir"},
		{args: []string{"agent", "--name", "a\tb"}, want: `--name: must be printable, got "a\tb"`},
		{args: []string{"agent", "--nope"}, want: "unknown flag --nope (see hearsay agent --help)"},
		{args: []string{"agent", "-x"}, want: "unknown flag --x"},
		{args: []string{"agent", "--fanout"}, want: "--fanout: needs a value"},
		{args: []string{"agent", "extra"}, want: `agent: unexpected argument "extra"`},
		{args: []string{"push", "hi"}, want: "--topic: required"},
		{args: []string{"push", "--topic", "a..b", "hi"}, want: "--topic: gossip: invalid topic"},
		{args: []string{"push", "--topic", "a.>", "hi"}, want: "--topic: gossip: invalid topic"},
		{args: []string{"push", "--topic", "a", "--api", "ftp://host:1", "hi"}, want: `--api: bad agent address "ftp://host:1": want HOST:PORT, an http:// or https:// URL, or unix:/PATH`},
		{args: []string{"push", "--topic", "a", "--api", "host", "hi"}, want: `--api: bad agent address "host": want HOST:PORT`},
		{args: []string{"push", "--topic", "a", "one", "two"}, want: "push: want at most one DATA argument, got 2"},
		{args: []string{"subscribe", "--format", "xml"}, want: `--format: must be one of json, raw, got "xml"`},
		{args: []string{"subscribe", "--topic", "a.>.b"}, want: "--topic: pattern \"a.>.b\": '>' must be the last token"},
		{args: []string{"status", "--api", "127.0.0.1:99999"}, want: `--api: bad agent address "127.0.0.1:99999": port must be between 1 and 65535`},
		{args: []string{"status", "extra"}, want: `status: unexpected argument "extra"`},
		{args: []string{"peers", "--topic", "x"}, want: "unknown flag --topic (see hearsay peers --help)"},
		{args: []string{"demo", "--nodes", "0"}, want: "--nodes: must be between 1 and 50, got 0"},
		{args: []string{"demo", "--duration", "-1s"}, want: "--duration: must not be negative, got -1s"},
		{args: []string{"demo", "--base-port", "65530"}, want: "--base-port: must be between 0 and 65526, got 65530"},
		{args: []string{"demo", "--log-level", "loud"}, want: `--log-level: must be one of debug, info, warn, error, got "loud"`},
		{args: []string{"frobnicate"}, want: `unknown command "frobnicate" (see hearsay --help)`},
		{args: []string{"--nope"}, want: "unknown flag --nope (see hearsay --help)"},
		{args: []string{"help", "frobnicate"}, want: "No help topic for 'frobnicate'"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			res := runCLI(t, "", tt.args...)
			assert.Equal(t, exitUsage, res.code)
			assert.Nil(t, res.agent, "the agent must not start")
			assert.Equal(t, 1, strings.Count(res.stderr, "\n"), "one line: %q", res.stderr)
			assert.True(t, strings.HasPrefix(res.stderr, "hearsay: "), res.stderr)
			assert.Contains(t, res.stderr, tt.want)
		})
	}
}

func TestHelpOfEveryCommand(t *testing.T) {
	clearEnv(t)
	res := runCLI(t, "", "--help")
	require.Equal(t, exitOK, res.code)
	for _, cmd := range (&program{}).newApp().Commands {
		assert.Contains(t, res.stdout, cmd.Name)

		for _, help := range [][]string{{cmd.Name, "--help"}, {cmd.Name, "-h"}, {"help", cmd.Name}} {
			res := runCLI(t, "", help...)
			require.Equal(t, exitOK, res.code, "%v: %s", help, res.stderr)
			assert.Contains(t, res.stdout, "hearsay "+cmd.Name, help)
			for _, f := range cmd.Flags {
				assert.Contains(t, res.stdout, "--"+f.Names()[0], help)
				assert.Contains(t, res.stdout, "[$"+commandEnvVar(cmd.Name, f.Names()[0])+"]", help)
			}
		}
	}
	// No command: the overview, successfully.
	res = runCLI(t, "")
	assert.Equal(t, exitOK, res.code)
	assert.Contains(t, res.stdout, "COMMANDS")
}

func TestVersion(t *testing.T) {
	res := runCLI(t, "", "version")
	require.Equal(t, exitOK, res.code)
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	require.Len(t, lines, 3)
	assert.Regexp(t, `^hearsay \S+`, lines[0])
	assert.Regexp(t, `^go1\.`, lines[1])
	assert.Equal(t, "wire version 1", lines[2])
}

func TestFindSelf(t *testing.T) {
	peers := []netip.AddrPort{
		netip.MustParseAddrPort("10.0.0.1:7600"),
		netip.MustParseAddrPort("10.0.0.2:7601"),
		netip.MustParseAddrPort("10.0.0.2:7600"),
	}
	local := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.0.0.2")}
	self, ok := findSelf(peers, 7600, local)
	assert.True(t, ok)
	assert.Equal(t, netip.MustParseAddrPort("10.0.0.2:7600"), self)
	_, ok = findSelf(peers, 7602, local)
	assert.False(t, ok)
	_, ok = findSelf(peers, 7600, nil)
	assert.False(t, ok)
}

func TestSelfHint(t *testing.T) {
	assert.Equal(t, netip.MustParseAddrPort("127.0.0.1:7600"), selfHint(agentConfig{Bind: "127.0.0.1:7600"}))
	assert.Equal(t, netip.MustParseAddrPort("10.1.2.3:9000"), selfHint(agentConfig{Bind: "0.0.0.0:7600", Advertise: "10.1.2.3:9000"}))
	assert.Equal(t, netip.MustParseAddrPort("0.0.0.0:7600"), selfHint(agentConfig{Bind: ":7600"}))
	assert.True(t, selfHint(agentConfig{Bind: "localhost:7600"}).Addr().IsLoopback())
}

// fakeAgent serves handler as an agent's API.
func fakeAgent(t *testing.T, handler http.HandlerFunc) string {
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestPushRetriesWhileBackpressured(t *testing.T) {
	var attempts atomic.Int32
	api := fakeAgent(t, func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "/v1/messages", r.URL.Path)
		assert.Equal(t, "t.x", r.URL.Query().Get("topic"))
		if attempts.Add(1) < 3 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":"gossip: propagation cache full, retry later"}`))
			return
		}
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"id":"00112233445566778899aabbccddeeff"}`))
	})
	res := runCLI(t, "", "push", "--api", api, "--topic", "t.x", "hi")
	assert.Equal(t, exitOK, res.code, res.stderr)
	assert.Equal(t, "00112233445566778899aabbccddeeff\n", res.stdout)
	assert.EqualValues(t, 3, attempts.Load())
}

func TestPushGivesUpAfterRetries(t *testing.T) {
	var attempts atomic.Int32
	api := fakeAgent(t, func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":"gossip: propagation cache full, retry later"}`))
	})
	res := runCLI(t, "", "push", "--api", api, "--topic", "t.x", "hi")
	assert.Equal(t, exitFailure, res.code)
	assert.Equal(t, "hearsay: agent answered 503: gossip: propagation cache full, retry later\n", res.stderr)
	assert.EqualValues(t, pushRetries+1, attempts.Load())
}

func TestPushShowsTheAgentsError(t *testing.T) {
	var attempts atomic.Int32
	api := fakeAgent(t, func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		w.Write([]byte("{\n  \"error\": \"payload larger than 1350 bytes\"\n}\n"))
	})
	res := runCLI(t, "", "push", "--api", api, "--topic", "t.x", "hi")
	assert.Equal(t, exitFailure, res.code)
	assert.Equal(t, "hearsay: agent answered 413: payload larger than 1350 bytes\n", res.stderr)
	assert.EqualValues(t, 1, attempts.Load(), "only 503 is retried")
}

func TestPushReadsStandardInput(t *testing.T) {
	var got []string
	var mu sync.Mutex
	api := fakeAgent(t, func(w http.ResponseWriter, r *http.Request) {
		var body bytes.Buffer
		body.ReadFrom(r.Body)
		mu.Lock()
		got = append(got, body.String())
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"id":"00112233445566778899aabbccddeeff"}`))
	})
	for _, args := range [][]string{{}, {"-"}} {
		res := runCLI(t, "line one\nline two\n", append([]string{"push", "--api", api, "--topic", "t"}, args...)...)
		assert.Equal(t, exitOK, res.code, res.stderr)
	}
	res := runCLI(t, "not read", "push", "--api", api, "--topic", "t", "")
	assert.Equal(t, exitOK, res.code, res.stderr)
	assert.Equal(t, []string{"line one\nline two\n", "line one\nline two\n", ""}, got, "an empty DATA is an empty payload")

	// Larger than a datagram: the agent sends it as chunks.
	res = runCLI(t, strings.Repeat("x", 100_000), "push", "--api", api, "--topic", "t")
	assert.Equal(t, exitOK, res.code, res.stderr)
	assert.Len(t, got[len(got)-1], 100_000)
}

func TestClientsReportAnUnreachableAgent(t *testing.T) {
	// A port nothing listens on: a closed test server's.
	srv := httptest.NewServer(http.NotFoundHandler())
	api := srv.URL
	srv.Close()
	for _, args := range [][]string{{"status"}, {"peers"}, {"push", "--topic", "t", "x"}, {"subscribe"}} {
		res := runCLI(t, "", append([]string{args[0], "--api", api}, args[1:]...)...)
		assert.Equal(t, exitFailure, res.code, args)
		assert.Equal(t, 1, strings.Count(res.stderr, "\n"), res.stderr)
		assert.Contains(t, res.stderr, "cannot reach the agent at "+api, args)
	}
}

func TestStatusAndPeersPrintIndentedJSON(t *testing.T) {
	api := fakeAgent(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/status":
			w.Write([]byte(`{"name":"a","peers":2}`))
		case "/v1/peers":
			w.Write([]byte(`{"registry":"static","peers":["127.0.0.1:1"],"suspects":[]}`))
		default:
			http.Error(w, `{"error":"no such endpoint"}`, http.StatusNotFound)
		}
	})
	res := runCLI(t, "", "status", "--api", api)
	assert.Equal(t, exitOK, res.code, res.stderr)
	assert.Contains(t, res.stdout, "{\n  \"name\": \"a\",\n  \"id\": \"\",\n")
	assert.Contains(t, res.stdout, "\n  \"peers\": 2,\n")
	res = runCLI(t, "", "peers", "--api", api)
	assert.Equal(t, exitOK, res.code, res.stderr)
	assert.Equal(t, "{\n  \"registry\": \"static\",\n  \"peers\": [\n    \"127.0.0.1:1\"\n  ],\n  \"suspects\": []\n}\n", res.stdout)
	// A URL with a path prefix, as behind a reverse proxy.
	res = runCLI(t, "", "status", "--api", api+"/proxy/")
	assert.Equal(t, exitFailure, res.code)
	assert.Equal(t, "hearsay: agent answered 404: no such endpoint\n", res.stderr)
}

// sseHandler serves a fixed event stream, as the agent would.
func sseHandler(t *testing.T, stream string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "/v1/messages/stream", r.URL.Path)
		assert.Equal(t, "orders.>", r.URL.Query().Get("topic"))
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte(stream))
	}
}

const (
	sseMessage1 = "id: 0a\nevent: message\ndata: " +
		`{"id":"0a","topic":"orders.new","origin":"9b","created":"2026-11-22T19:40:00.123Z","payload":"aGVsbG8="}` + "\n\n"
	sseMessage2 = "id: 0b\nevent: message\ndata: {\n" +
		`data:  "id": "0b", "topic": "orders.old", "origin": "9b", "created": "2026-11-22T19:40:00.5Z", "payload": "d29ybGQ="` + "\ndata: }\n\n"
	sseErrorEv = "event: error\ndata: {\"error\":\"subscriber too slow: more than the buffer of messages behind; reconnect\"}\n\n"
)

func TestSubscribePrintsJSONLines(t *testing.T) {
	api := fakeAgent(t, sseHandler(t, ": keep-alive\n\n"+sseMessage1+sseMessage2+sseErrorEv))
	res := runCLI(t, "", "subscribe", "--api", api, "--topic", "orders.>")
	assert.Equal(t, exitFailure, res.code)
	assert.Equal(t, `{"id":"0a","topic":"orders.new","origin":"9b","created":"2026-11-22T19:40:00.123Z","payload":"aGVsbG8="}`+"\n"+
		`{"id":"0b","topic":"orders.old","origin":"9b","created":"2026-11-22T19:40:00.500Z","payload":"d29ybGQ="}`+"\n", res.stdout)
	assert.Equal(t, "hearsay: the agent ended the stream: subscriber too slow: more than the buffer of messages behind; reconnect\n", res.stderr)
}

func TestSubscribePrintsRawPayloads(t *testing.T) {
	api := fakeAgent(t, sseHandler(t, sseMessage1+sseMessage2))
	res := runCLI(t, "", "subscribe", "--api", api, "--topic", "orders.>", "--format", "raw")
	assert.Equal(t, exitFailure, res.code)
	assert.Equal(t, "hello\nworld\n", res.stdout)
	assert.Equal(t, "hearsay: the agent closed the stream (did it stop?)\n", res.stderr)
}

func TestSubscribeEndsCleanlyWhenInterrupted(t *testing.T) {
	api := fakeAgent(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte(sseMessage1))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	var stdout, stderr syncBuffer
	p := &program{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- p.run(ctx, []string{"hearsay", "subscribe", "--api", api}) }()
	require.Eventually(t, func() bool { return stdout.String() != "" }, 10*time.Second, 5*time.Millisecond)
	cancel() // what SIGINT does
	select {
	case code := <-done:
		assert.Equal(t, exitOK, code, stderr.String())
		assert.Empty(t, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("subscribe did not stop")
	}
}
