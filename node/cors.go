package node

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// CORS, so that browser applications served from another origin can use
// the API with fetch and EventSource. Only the origins listed get CORS
// headers; the browser keeps every other origin out.

// Headers and methods a browser may use across origins. Authorization
// carries the token, Last-Event-ID resumes a stream, Content-Type is set
// by fetch on a POST body.
const (
	corsAllowMethods  = "GET, HEAD, POST, DELETE"
	corsAllowHeaders  = "Authorization, Last-Event-ID, Content-Type"
	corsExposeHeaders = "Retry-After, X-Hearsay-Resumed"
	corsMaxAge        = "600" // seconds a browser may cache a preflight's answer
)

// AnyOrigin in APIConfig.AllowOrigins allows every origin. It is refused
// with a token: a page on any site could then use a token it got hold of.
const AnyOrigin = "*"

// ErrAnyOriginWithToken reports AnyOrigin with APIConfig.Token set.
var ErrAnyOriginWithToken = errors.New(`"*" allows every origin, which a token-protected API must not: list the origins`)

// CheckAllowOrigins checks APIConfig.AllowOrigins: each an origin as
// browsers send it (scheme://host[:port], no path) or AnyOrigin alone, and
// AnyOrigin only without a token.
func CheckAllowOrigins(origins []string, token string) error {
	for _, o := range origins {
		if o == AnyOrigin {
			if token != "" {
				return ErrAnyOriginWithToken
			}
			if len(origins) > 1 {
				return errors.New(`"*" already allows every origin: give it alone`)
			}
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(o, "/") {
			return fmt.Errorf("%q is not an origin: want scheme://host[:port], as in https://app.example.com", o)
		}
		if strings.ToLower(o) != o {
			return fmt.Errorf("%q: browsers send origins in lower case", o)
		}
	}
	return nil
}

// corsOrigin returns the value of Access-Control-Allow-Origin for the
// request's Origin, or "" if it gets no CORS headers.
func (a *API) corsOrigin(r *http.Request) string {
	origin := r.Header.Get("Origin")
	if origin == "" || len(a.cfg.AllowOrigins) == 0 {
		return ""
	}
	if slices.Contains(a.cfg.AllowOrigins, AnyOrigin) && a.cfg.Token == "" {
		return AnyOrigin
	}
	if slices.Contains(a.cfg.AllowOrigins, origin) {
		return origin
	}
	return ""
}

// cors sets the CORS headers of an allowed origin and answers a preflight,
// which carries no token. It reports whether the request is answered.
func (a *API) cors(w http.ResponseWriter, r *http.Request) (answered bool) {
	allowed := a.corsOrigin(r)
	if len(a.cfg.AllowOrigins) > 0 {
		w.Header().Add("Vary", "Origin") // the answer depends on it: caches must know
	}
	if allowed == "" {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", allowed)
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	if !preflight {
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		return false
	}
	h.Set("Access-Control-Allow-Methods", corsAllowMethods)
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", corsMaxAge)
	w.WriteHeader(http.StatusNoContent)
	return true
}
