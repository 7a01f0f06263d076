package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// freeUDPAddr returns a 127.0.0.1 UDP address that was free a moment ago.
func freeUDPAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	return c.LocalAddr().String()
}

// freeTCPAddr returns a 127.0.0.1 TCP address that was free a moment ago.
func freeTCPAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// waitRunning waits until the agent with API api logs that it runs, failing
// the test if it does not within 20 s or if exited is closed first; then its
// API must be healthy. The log line comes once the API listens.
func waitRunning(t *testing.T, logs *syncBuffer, api string, exited <-chan struct{}) {
	t.Helper()
	if !logs.awaitText(`msg="hearsay agent running"`, exited, 20*time.Second) {
		select {
		case <-exited:
			t.Fatalf("the agent with API %s exited before it ran", api)
		default:
			t.Fatalf("the agent with API %s was not running within 20s", api)
		}
	}
	client := &http.Client{Timeout: 5 * time.Second}
	healthz := "http://" + api + "/healthz"
	if strings.Contains(logs.String(), "api=https://"+api) {
		// The tests that start an HTTPS agent check its certificate.
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
		healthz = "https://" + api + "/healthz"
	}
	resp, err := client.Get(healthz)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// getJSON GETs an agent's API path into v.
func getJSON(t *testing.T, api, path string, v any) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + api + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

type agentStatus struct {
	Name              string `json:"name"`
	ID                string `json:"id"`
	Peers             int    `json:"peers"`
	MessagesPublished uint64 `json:"messages_published"`
	MessagesDelivered uint64 `json:"messages_delivered"`
	Duplicates        uint64 `json:"duplicates"`
	Subscribers       int    `json:"subscribers"`
	Interval          string `json:"interval"`
	Encrypted         bool   `json:"encrypted"`
	Rounds            uint64 `json:"rounds"`
	CacheMessages     int    `json:"cache_messages"`
	MerkleRoot        string `json:"merkle_root"`
}

func statusOf(t *testing.T, api string) agentStatus {
	var st agentStatus
	getJSON(t, api, "/v1/status", &st)
	return st
}

// The agent runs in-process here, so that the race detector watches it and
// the client commands talking to it.
func TestAgentInProcess(t *testing.T) {
	clearEnv(t)
	gossipAddr, apiAddr := freeUDPAddr(t), freeTCPAddr(t)
	var agentLog syncBuffer
	ctx, stopAgent := context.WithCancel(context.Background())
	defer stopAgent()
	agentExit := make(chan int, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		agentExit <- run(ctx, []string{"hearsay", "agent", "--name", "inproc", "--bind", gossipAddr, "--api", apiAddr,
			"--data-dir", t.TempDir(), "--interval", "20ms", "--peers", gossipAddr + ", 127.0.0.1:1"},
			strings.NewReader(""), io.Discard, &agentLog)
	}()
	defer func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", agentLog.String())
		}
	}()
	waitRunning(t, &agentLog, apiAddr, exited)

	// The server's limits are the library's: headers of at most 64 KiB.
	// First: the server lingers half a second on a connection it refuses
	// (net/http's rstAvoidanceDelay), which would hold up the shutdown.
	req, err := http.NewRequest(http.MethodGet, "http://"+apiAddr+"/healthz", nil)
	require.NoError(t, err)
	req.Header.Set("X-Large", strings.Repeat("x", 100<<10))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)

	// subscribe, in the background until interrupted
	subscribe := func(pattern string) (out, errOut *syncBuffer, interrupt func(), exit <-chan int) {
		var stdout, stderr syncBuffer
		ctx, cancel := context.WithCancel(context.Background())
		code := make(chan int, 1)
		go func() {
			code <- run(ctx, []string{"hearsay", "subscribe", "--api", apiAddr, "--topic", pattern, "--format", "raw"},
				strings.NewReader(""), &stdout, &stderr)
		}()
		return &stdout, &stderr, cancel, code
	}
	subOut, _, interrupt, subExit := subscribe("inproc.>")
	require.Eventually(t, func() bool { return statusOf(t, apiAddr).Subscribers == 1 }, 10*time.Second, 10*time.Millisecond)

	res := runCLI(t, "", "push", "--api", apiAddr, "--topic", "inproc.a", "hello")
	require.Equal(t, exitOK, res.code, res.stderr)
	assert.Regexp(t, regexp.MustCompile(`^[0-9a-f]{32}\n$`), res.stdout)
	res = runCLI(t, "from stdin", "push", "--api", apiAddr, "--topic", "inproc.b")
	require.Equal(t, exitOK, res.code, res.stderr)
	res = runCLI(t, "", "push", "--api", apiAddr, "--topic", "other", "not for the subscriber")
	require.Equal(t, exitOK, res.code, res.stderr)
	require.Eventually(t, func() bool { return subOut.String() == "hello\nfrom stdin\n" }, 10*time.Second, 10*time.Millisecond,
		"got %q", subOut.String())
	interrupt()
	assert.Equal(t, exitOK, <-subExit)

	res = runCLI(t, "", "status", "--api", apiAddr)
	require.Equal(t, exitOK, res.code, res.stderr)
	var st agentStatus
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &st))
	assert.Equal(t, "inproc", st.Name)
	assert.EqualValues(t, 3, st.MessagesPublished)
	assert.Equal(t, "20ms", st.Interval)

	res = runCLI(t, "", "peers", "--api", apiAddr)
	require.Equal(t, exitOK, res.code, res.stderr)
	assert.JSONEq(t, `{"registry":"static","peers":["127.0.0.1:1"],"suspects":[]}`, res.stdout, "the agent leaves itself out of --peers")

	// Stopping with a stream open: the stream ends with the shutdown event,
	// and the agent exits.
	_, subErr, _, subExit := subscribe(">")
	require.Eventually(t, func() bool { return statusOf(t, apiAddr).Subscribers == 1 }, 10*time.Second, 10*time.Millisecond)
	stopAgent()
	select {
	case code := <-agentExit:
		assert.Equal(t, exitOK, code)
	case <-time.After(2 * shutdownTimeout):
		t.Fatal("the agent did not stop")
	}
	// The event, not a closed connection: the server ended the stream
	// rather than waiting for it until its shutdown timed out.
	assert.Equal(t, exitFailure, <-subExit, "the subscriber sees the agent end its stream")
	assert.Equal(t, "hearsay: the agent ended the stream: node shutting down\n", subErr.String())
	log := agentLog.String()
	assert.Contains(t, log, `msg="hearsay agent running" name=inproc`)
	assert.Contains(t, log, "api=http://"+apiAddr)
	assert.Contains(t, log, `msg="node stopped"`)
}

func TestAgentReportsABusyAPIPort(t *testing.T) {
	clearEnv(t)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	var stderr syncBuffer
	code := run(context.Background(), []string{"hearsay", "agent", "--bind", freeUDPAddr(t), "--api", l.Addr().String(),
		"--filter", "memory", "--data-dir", ""}, strings.NewReader(""), io.Discard, &stderr)
	assert.Equal(t, exitFailure, code)
	assert.Regexp(t, `^hearsay: --api: listen tcp4? 127\.0\.0\.1:\d+: bind: address already in use\n$`, stderr.String())
}

func TestAgentReportsABadPeersFile(t *testing.T) {
	clearEnv(t)
	var stderr syncBuffer
	code := run(context.Background(), []string{"hearsay", "agent", "--bind", freeUDPAddr(t), "--api", "",
		"--filter", "memory", "--data-dir", "", "--peers-file", t.TempDir() + "/missing"}, strings.NewReader(""), io.Discard, &stderr)
	assert.Equal(t, exitFailure, code)
	assert.Regexp(t, `^hearsay: --peers-file: static: peers file: stat .*/missing: no such file or directory\n$`, stderr.String())
}

func TestDemo(t *testing.T) {
	t.Parallel() // the only test running the program in-process in parallel: urfave/cli's globals allow one
	res := runCLI(t, "", "demo", "--nodes", "3", "--duration", "2500ms", "--base-port", "0")
	require.Equal(t, exitOK, res.code, res.stderr)
	out := res.stdout
	assert.Contains(t, out, "hearsay demo: 3 nodes gossiping on 127.0.0.1")
	assert.Regexp(t, `node-3\s+127\.0\.0\.1:\d+\s+http://127\.0\.0\.1:\d+`, out)
	assert.Regexp(t, `curl -X POST 'http://127\.0\.0\.1:\d+/v1/messages\?topic=demo\.hello' -d 'hi'`, out)
	assert.Regexp(t, `curl -N 'http://127\.0\.0\.1:\d+/v1/messages/stream\?topic=demo\.>'`, out)
	assert.Regexp(t, `curl http://127\.0\.0\.1:\d+/v1/status`, out)
	assert.Regexp(t, `msg 1 from node-1 \(id [0-9a-f]{8}…\): arrived on 3/3 nodes in \d+\.\dms`, out)
	assert.Regexp(t, `msg 2 from node-2 \(id [0-9a-f]{8}…\): arrived on 3/3 nodes in \d+\.\dms`, out)
	assert.Regexp(t, `stopped: 3 sample messages published, [23] arrived on all 3 nodes`, out)
}
