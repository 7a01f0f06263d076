package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/client"
	"github.com/hearsay-io/hearsay/internal/testcert"
)

// An agent process serving its API over HTTPS with a token from a file,
// CORS for one origin and the profiler: the client commands reach it with
// --api-ca and --api-token-file, the token is not on its command line.
func TestE2EAPIOverTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile := testcert.Write(t)
	tokenFile := writeFile(t, "token", "s3cret-token\n")
	const app = "https://app.example.com"
	a := startAgent(t, "tls", freeUDPAddr(t), freeTCPAddr(t), t.TempDir(), "--api-tls-cert", certFile, "--api-tls-key", keyFile,
		"--api-token-file", tokenFile, "--api-allow-origin", app, "--api-debug")
	url := "https://" + a.api
	assert.Contains(t, a.logs.String(), "api="+url)
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(a.cmd.Process.Pid) + "/cmdline")
	if err == nil {
		assert.NotContains(t, string(cmdline), "s3cret-token", "the token stays out of ps")
	}

	code, out, errOut := runBinary(t, "", "status", "--api", url, "--api-ca", certFile, "--api-token-file", tokenFile)
	require.Equal(t, exitOK, code, errOut)
	var st agentStatus
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	assert.Equal(t, "tls", st.Name)
	code, out, errOut = runBinary(t, "", "push", "--api", url, "--api-ca", certFile, "--api-token-file", tokenFile, "--topic", "tls.t", "hi")
	require.Equal(t, exitOK, code, errOut)
	assert.Len(t, strings.TrimSpace(out), 32)

	code, _, errOut = runBinary(t, "", "status", "--api", url, "--api-token-file", tokenFile)
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, errOut, "cannot reach the agent at "+url)
	assert.Contains(t, errOut, "certificate signed by unknown authority", "without --api-ca, the system's roots do not know it")
	code, _, errOut = runBinary(t, "", "status", "--api", url, "--api-ca", certFile, "--api-token", "wrong")
	assert.Equal(t, exitFailure, code)
	assert.Equal(t, "hearsay: agent answered 401: missing or wrong API token (Authorization: Bearer TOKEN)\n", errOut)
	code, _, errOut = runBinary(t, "", "status", "--api", "http://"+a.api, "--api-token-file", tokenFile)
	assert.Equal(t, exitFailure, code, "plain HTTP to the HTTPS port")
	assert.Contains(t, errOut, "agent answered 400")

	agent, err := client.New(url, client.WithCAFile(certFile), client.WithToken("s3cret-token"))
	require.NoError(t, err)
	pem, err := os.ReadFile(certFile)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(pem))
	trusting := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	get := func(path string, headers ...string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url+path, nil)
		require.NoError(t, err)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := trusting.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	require.NoError(t, agent.Health(t.Context()))
	assert.Equal(t, http.StatusOK, get("/debug/pprof/", "Authorization", "Bearer s3cret-token").StatusCode)
	assert.Equal(t, http.StatusOK, get("/debug/pprof/heap?debug=1", "Authorization", "Bearer s3cret-token").StatusCode)
	assert.Equal(t, http.StatusUnauthorized, get("/debug/pprof/").StatusCode, "the profiler is behind the token")
	resp := get("/v1/status", "Origin", app)
	assert.Equal(t, app, resp.Header.Get("Access-Control-Allow-Origin"))
	resp = get("/v1/status", "Origin", "https://other.example")
	assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))

	// Without --api-debug there is no profiler.
	plain := startAgent(t, "plain", freeUDPAddr(t), freeTCPAddr(t), t.TempDir())
	resp, err = http.Get("http://" + plain.api + "/debug/pprof/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// hearsay subscribe --reconnect against an agent process that is killed
// and started again on the same data dir while another agent takes
// messages: every message is printed once, those published during the
// outage included.
func TestE2ESubscribeReconnectsAcrossARestart(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	flags := []string{"--interval", "20ms", "--cache-rounds", "1000"}
	agents := c.startAll(t, "agent", flags...)

	lines, subErr, _ := startSubscriber(t, "--api", agents[1].api, "--topic", "re.>", "--reconnect")
	ids := make(chan string, 1000)
	go func() {
		for line := range lines {
			var m struct {
				ID string `json:"id"`
			}
			if json.Unmarshal([]byte(line), &m) == nil {
				ids <- m.ID
			}
		}
		close(ids)
	}()
	require.Eventually(t, func() bool { return statusOf(t, agents[1].api).Subscribers == 1 }, 10*time.Second, 10*time.Millisecond)

	counts := map[string]int{}
	receive := func(n int) {
		t.Helper()
		for range n {
			select {
			case id, ok := <-ids:
				require.True(t, ok, "subscribe exited; stderr: %s", subErr.String())
				counts[id]++
			case <-time.After(30 * time.Second):
				t.Fatalf("subscribe printed %d messages; stderr: %s", len(counts), subErr.String())
			}
		}
	}
	before := publishMessages(t, agents[1].api, "re.before", 5)
	receive(len(before))
	agents[1].kill(t) // SIGKILL: the connection breaks without the shutdown event
	during := publishMessages(t, agents[0].api, "re.during", 20)
	restarted := c.start(t, 1, "agent-2-restarted", append(c.peersFlag(), flags...)...)
	after := publishMessages(t, restarted.api, "re.after", 5)
	receive(len(during) + len(after))

	want := map[string]int{}
	for _, id := range append(append(before, during...), after...) {
		want[id] = 1
	}
	assert.Equal(t, want, counts, "each message once")
	assert.Contains(t, subErr.String(), "reconnecting in")
	assert.NotContains(t, subErr.String(), "may be missed")
	t.Logf("%d messages, %d of them published on agent 1 while agent 2 was down, printed once each by hearsay subscribe --reconnect on agent 2",
		len(want), len(during))
}
