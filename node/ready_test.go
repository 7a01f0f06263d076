package node

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A node is ready once it has peers and an anti-entropy session has
// compared its log with a peer's; before, Ready says which is missing.
func TestReadyNeedsPeersAndFirstAntiEntropy(t *testing.T) {
	const aeInterval = 2 * time.Second
	c := newMemCluster(t, 2, func(_ int, c *Config) { c.Gossip.AEInterval = aeInterval })
	lone := c.newNode(2, Config{Name: "lone"})
	ready, reason := lone.Ready()
	require.False(t, ready)
	require.Equal(t, "node not started", reason)
	require.NoError(t, lone.Start())

	ready, reason = c.nodes[0].Ready()
	require.False(t, ready)
	require.Contains(t, reason, "first anti-entropy pass not finished")
	c.waitFor(3*aeInterval, func() bool { ok, _ := c.nodes[0].Ready(); return ok })
	require.NotZero(t, c.nodes[0].Stats().Gossip.AESessions)

	ready, reason = lone.Ready()
	require.False(t, ready)
	require.Contains(t, reason, "no peers")

	require.NoError(t, c.nodes[1].Close())
	ready, reason = c.nodes[1].Ready()
	require.False(t, ready)
	require.Equal(t, "node shutting down", reason)
}

// With anti-entropy off, peers are enough.
func TestReadyWithoutAntiEntropy(t *testing.T) {
	c := newMemCluster(t, 2, func(_ int, c *Config) { c.Gossip.AEInterval = -1 })
	ready, reason := c.nodes[0].Ready()
	require.True(t, ready, reason)
}

// /readyz and /healthz answer probes without the API token; /readyz says
// why it is not ready.
func TestAPIProbesNeedNoToken(t *testing.T) {
	nd := startCluster(t, 1, nil)[0]
	srv := apiServer(t, nd, APIConfig{Token: "secret"})
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}
	code, body := get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "not ready: no peers (see --peers, --join, --registry)\n", body)
	code, body = get("/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)
	code, _ = get("/v1/status")
	require.Equal(t, http.StatusUnauthorized, code, "the rest still wants the token")
}
