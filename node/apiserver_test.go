package node

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/internal/testcert"
)

// Debug is served under /debug/ only when set, behind the token.
func TestAPIDebugHandler(t *testing.T) {
	nd := startCluster(t, 1, nil)[0]
	debug := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("profile of " + r.URL.Path)) })

	w := request(t, NewAPI(nd, APIConfig{}), http.MethodGet, "/debug/pprof/")
	assert.Equal(t, http.StatusNotFound, w.Code)

	api := NewAPI(nd, APIConfig{Debug: debug, Token: "s3cret"})
	w = request(t, api, http.MethodGet, "/debug/pprof/heap")
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	w = request(t, api, http.MethodGet, "/debug/pprof/heap", "Authorization", "Bearer s3cret")
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "profile of /debug/pprof/heap", w.Body.String())
}

func TestAPITLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := APITLSConfig(dir+"/missing-cert.pem", dir+"/missing-key.pem")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing-cert.pem")

	cert1, key1 := testcert.Write(t)
	_, key2 := testcert.Write(t)
	_, err = APITLSConfig(cert1, key2)
	assert.ErrorContains(t, err, "private key does not match public key")
	_, err = APITLSConfig(key1, cert1)
	assert.Error(t, err, "the files swapped")
	cfg, err := APITLSConfig(cert1, key1)
	require.NoError(t, err)
	assert.Len(t, cfg.Certificates, 1)
}
