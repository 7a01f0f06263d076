// Package ui is the node's web status page, served at /ui/ by the node's
// HTTP API: plain HTML, CSS and JavaScript embedded in the binary, with no
// build step and nothing loaded from elsewhere. The page reads the API
// (/v1/status, /v1/peers, /v1/keys, /metrics) and tails
// /v1/messages/stream; the assets themselves hold nothing secret, so they
// are served without the API token, which the page sends on its own
// requests.
package ui

import (
	"embed"
	"net/http"
	"path"
	"strings"
)

//go:embed assets
var assets embed.FS

// contentTypes are the types of the assets, by extension: set here rather
// than guessed from the system's MIME tables.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// ContentSecurityPolicy is the policy of every asset: scripts, styles and
// images from the page's own origin only, requests only to it, no inline
// code, no framing, no forms, no plugins.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Prefix is where the page is served.
const Prefix = "/ui/"

// Handler serves the page's assets under Prefix; Prefix itself is the page.
// Other paths under Prefix go to notFound.
func Handler(notFound http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serve(w, r, notFound) })
}

func serve(w http.ResponseWriter, r *http.Request, notFound http.Handler) {
	h := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, Prefix)
	if name == "" {
		name = "index.html"
	}
	ctype, known := contentTypes[path.Ext(name)]
	if !known || strings.Contains(name, "/") {
		notFound.ServeHTTP(w, r)
		return
	}
	body, err := assets.ReadFile("assets/" + name)
	if err != nil {
		notFound.ServeHTTP(w, r)
		return
	}
	h.Set("Content-Type", ctype)
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	// Revalidate: the assets change with the binary.
	h.Set("Cache-Control", "no-cache")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}
