package node

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCheckAllowOrigins(t *testing.T) {
	for _, ok := range [][]string{nil, {"https://app.example.com"}, {"http://localhost:3000", "https://a.example"}} {
		assert.NoError(t, CheckAllowOrigins(ok, "token"), ok)
	}
	assert.NoError(t, CheckAllowOrigins([]string{"*"}, ""))
	assert.ErrorIs(t, CheckAllowOrigins([]string{"*"}, "token"), ErrAnyOriginWithToken)
	for _, bad := range []string{"app.example.com", "https://app.example.com/", "https://app.example.com/path",
		"ftp://host", "https://", "https://App.Example.com", "https://u@host"} {
		assert.Error(t, CheckAllowOrigins([]string{bad}, ""), bad)
	}
	assert.Error(t, CheckAllowOrigins([]string{"*", "https://a.example"}, ""))
}

// request sends method to path of h with headers, as a browser would.
func request(t *testing.T, h http.Handler, method, path string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(""))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestCORS(t *testing.T) {
	nd := startCluster(t, 1, nil)[0]
	const app = "https://app.example.com"
	api := NewAPI(nd, APIConfig{Token: "s3cret", AllowOrigins: []string{app, "http://localhost:3000"}})

	// A preflight from an allowed origin is answered without the token.
	w := request(t, api, http.MethodOptions, "/v1/messages?topic=t", "Origin", app,
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization,content-type")
	assert.Equal(t, http.StatusNoContent, w.Code)
	assert.Equal(t, app, w.Header().Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "GET, HEAD, POST, DELETE", w.Header().Get("Access-Control-Allow-Methods"))
	assert.Equal(t, "Authorization, Last-Event-ID, Content-Type", w.Header().Get("Access-Control-Allow-Headers"))
	assert.Equal(t, "Origin", w.Header().Get("Vary"))

	// The request itself still needs the token, and carries the headers.
	w = request(t, api, http.MethodGet, "/v1/status", "Origin", app)
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Equal(t, app, w.Header().Get("Access-Control-Allow-Origin"), "so that the page can read the 401")
	w = request(t, api, http.MethodGet, "/v1/status", "Origin", app, "Authorization", "Bearer s3cret")
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, app, w.Header().Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "Retry-After, X-Hearsay-Resumed", w.Header().Get("Access-Control-Expose-Headers"))

	// Another origin gets no CORS headers: the browser keeps it out.
	for _, method := range []string{http.MethodOptions, http.MethodGet} {
		w = request(t, api, method, "/v1/status", "Origin", "https://evil.example",
			"Access-Control-Request-Method", "GET", "Authorization", "Bearer s3cret")
		for name := range w.Header() {
			assert.NotContains(t, name, "Access-Control-", method)
		}
	}
	// No Origin: not a cross-origin request.
	w = request(t, api, http.MethodGet, "/v1/status", "Authorization", "Bearer s3cret")
	assert.Empty(t, w.Header().Get("Access-Control-Allow-Origin"))
}

func TestCORSAnyOrigin(t *testing.T) {
	nd := startCluster(t, 1, nil)[0]
	w := request(t, NewAPI(nd, APIConfig{AllowOrigins: []string{AnyOrigin}}), http.MethodGet, "/v1/status",
		"Origin", "https://anywhere.example")
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "*", w.Header().Get("Access-Control-Allow-Origin"))

	// With a token, "*" is not honoured, even by a library user who did
	// not call CheckAllowOrigins.
	w = request(t, NewAPI(nd, APIConfig{Token: "t", AllowOrigins: []string{AnyOrigin}}), http.MethodOptions, "/v1/status",
		"Origin", "https://anywhere.example", "Access-Control-Request-Method", "GET")
	assert.Empty(t, w.Header().Get("Access-Control-Allow-Origin"))
	assert.Equal(t, http.StatusUnauthorized, w.Code)

	// Without AllowOrigins, nothing changes.
	w = request(t, NewAPI(nd, APIConfig{}), http.MethodGet, "/v1/status", "Origin", "https://anywhere.example")
	assert.Empty(t, w.Header().Get("Access-Control-Allow-Origin"))
	assert.Empty(t, w.Header().Get("Vary"))
}
