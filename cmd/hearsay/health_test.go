package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hearsay health against real agents: alive as soon as the API answers;
// ready only once the agent has peers and anti-entropy compared logs with
// one; a token-protected API's probes need no token; a stopped agent fails
// with the reason on one line.
func TestHealthAgainstAgents(t *testing.T) {
	t.Parallel()
	hearsayBinary(t)
	lone := startAgent(t, "health-lone", freeUDPAddr(t), freeTCPAddr(t), t.TempDir(), "--api-token", "s3cret")
	res := runCLI(t, "", "health", "--api", lone.api)
	require.Equal(t, exitOK, res.code, res.stderr)
	assert.Equal(t, "ok\n", res.stdout)
	res = runCLI(t, "", "health", "--ready", "--api", lone.api)
	require.Equal(t, exitFailure, res.code)
	assert.Equal(t, "hearsay: GET /readyz: 503: not ready: no peers (see --peers, --join, --registry)\n", res.stderr)

	c := newCluster(t, 2)
	agents := c.startAll(t, "health", "--interval", "50ms", "--ae-interval", "200ms")
	require.Eventually(t, func() bool { return runCLI(t, "", "health", "--ready", "--api", agents[0].api).code == exitOK },
		20*time.Second, 20*time.Millisecond)
	res = runCLI(t, "", "health", "--ready", "--api", agents[0].api)
	assert.Equal(t, "ready\n", res.stdout)

	agents[1].kill(t)
	res = runCLI(t, "", "health", "--api", agents[1].api, "--timeout", "2s")
	require.Equal(t, exitFailure, res.code)
	assert.Contains(t, res.stderr, "cannot reach the agent at "+agents[1].api)
	assert.Equal(t, 1, strings.Count(res.stderr, "\n"))

	// A listener that never answers: the probe gives up in time.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { silent.Close() })
	res = runCLI(t, "", "health", "--api", silent.Addr().String(), "--timeout", "100ms")
	require.Equal(t, exitFailure, res.code)
	assert.Equal(t, "hearsay: GET /healthz: no answer within 100ms\n", res.stderr)

	res = runCLI(t, "", "health", "--timeout", "0s")
	require.Equal(t, exitUsage, res.code)
	assert.Equal(t, "hearsay: --timeout: must be at least 1ms, got 0s\n", res.stderr)
}
