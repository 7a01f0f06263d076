package node

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/msglog"
	"github.com/hearsay-io/hearsay/node/ui"
)

// With a token, the status page's assets are served without it (they hold
// nothing secret), and everything the page reads still needs it; /ui
// redirects to /ui/, and an unknown asset is the API's JSON 404.
func TestAPIServesTheStatusPage(t *testing.T) {
	nd := startCluster(t, 1, nil)[0]
	srv := apiServer(t, nd, APIConfig{Token: "t0ken"})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) *http.Response {
		t.Helper()
		resp, err := noRedirect.Get(srv.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	page := get("/ui/")
	require.Equal(t, http.StatusOK, page.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", page.Header.Get("Content-Type"))
	assert.Equal(t, ui.ContentSecurityPolicy, page.Header.Get("Content-Security-Policy"))
	assert.Equal(t, http.StatusOK, get("/ui/app.js").StatusCode)
	redirect := get("/ui")
	assert.Equal(t, http.StatusTemporaryRedirect, redirect.StatusCode)
	assert.Equal(t, "/ui/", redirect.Header.Get("Location"))
	missing := get("/ui/missing.js")
	assert.Equal(t, http.StatusNotFound, missing.StatusCode)
	assert.Equal(t, "application/json", missing.Header.Get("Content-Type"))
	for _, p := range []string{"/v1/status", "/v1/peers", "/v1/keys", "/metrics", "/v1/messages/stream", "/uix"} {
		assert.Equal(t, http.StatusUnauthorized, get(p).StatusCode, p)
	}
}

// Status gives the bounds the page shows fill against: the cache's, and
// the log's when the node opened it.
func TestStatusGivesTheBounds(t *testing.T) {
	st := startCluster(t, 1, nil)[0].Status()
	def := DefaultConfig()
	assert.Equal(t, def.Gossip.CacheMessages, st.CacheMaxMessages)
	assert.Equal(t, def.Gossip.CacheBytes, st.CacheMaxBytes)
	assert.Equal(t, def.LogMaxBytes, st.LogMaxBytes)
	b, err := json.Marshal(st)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"log_max_bytes":1073741824`)

	given := startCluster(t, 1, func(_ int, c *Config) { c.Log = msglog.NewMemory(1 << 20) })[0].Status()
	assert.Zero(t, given.LogMaxBytes, "a log given by the embedder: its bound is not the node's to tell")
}
