package ui

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func get(t *testing.T, method, p string) *httptest.ResponseRecorder {
	t.Helper()
	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	rec := httptest.NewRecorder()
	Handler(notFound).ServeHTTP(rec, httptest.NewRequest(method, p, nil))
	return rec
}

// Every asset is served with its content type and the strict policy;
// anything else goes to the not-found handler.
func TestAssetsServedWithTypesAndPolicy(t *testing.T) {
	names, err := fs.Glob(assets, "assets/*")
	require.NoError(t, err)
	require.NotEmpty(t, names)
	for _, name := range names {
		base := path.Base(name)
		rec := get(t, http.MethodGet, Prefix+base)
		require.Equal(t, http.StatusOK, rec.Code, base)
		assert.Equal(t, contentTypes[path.Ext(base)], rec.Header().Get("Content-Type"), base)
		assert.Equal(t, ContentSecurityPolicy, rec.Header().Get("Content-Security-Policy"), base)
		assert.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"), base)
		want, _ := assets.ReadFile(name)
		assert.Equal(t, want, rec.Body.Bytes(), base)
	}
	page := get(t, http.MethodGet, Prefix)
	require.Equal(t, http.StatusOK, page.Code)
	assert.Equal(t, "text/html; charset=utf-8", page.Header().Get("Content-Type"))
	head := get(t, http.MethodHead, Prefix+"app.js")
	assert.Equal(t, http.StatusOK, head.Code)
	assert.Empty(t, head.Body.Bytes())

	for _, p := range []string{Prefix + "nope.js", Prefix + "assets/app.js", Prefix + "../ui.go", Prefix + "README"} {
		assert.Equal(t, http.StatusTeapot, get(t, http.MethodGet, p).Code, p)
	}
	post := get(t, http.MethodPost, Prefix)
	assert.Equal(t, http.StatusMethodNotAllowed, post.Code)
}

var refRE = regexp.MustCompile(`(?:src|href)="([^"]+)"`)

// The page loads only its own assets, and nothing from elsewhere: no CDN,
// no web fonts, no inline script or style for the policy to refuse.
func TestPageIsSelfContained(t *testing.T) {
	index, err := assets.ReadFile("assets/index.html")
	require.NoError(t, err)
	for _, m := range refRE.FindAllStringSubmatch(string(index), -1) {
		_, err := assets.ReadFile("assets/" + m[1])
		assert.NoError(t, err, "index.html refers to %s", m[1])
	}
	assert.NotRegexp(t, `<script>|<style|\sstyle="|\son[a-z]+="`, string(index), "inline code the policy refuses")
	names, _ := fs.Glob(assets, "assets/*")
	for _, name := range names {
		b, _ := assets.ReadFile(name)
		text := strings.ReplaceAll(string(b), "http://www.w3.org/2000/svg", "")
		assert.NotRegexp(t, `https?://|@import|@font-face|url\(`, text, "%s loads something from elsewhere", name)
	}
}
