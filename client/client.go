// Package client is the Go client of a hearsay agent's local HTTP API
// (docs/api.md): publish, subscribe with automatic resumption, status,
// peers, health and the cluster keyring. The hearsay command uses it too.
//
// A Client is safe for concurrent use. It talks to one agent, over TCP
// (http:// or https:// URLs, or host:port) or a Unix socket (unix:/PATH).
package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Client talks to one agent's API.
type Client struct {
	base    *url.URL // scheme and host; a path prefix, without its final /
	display string   // the address as given, for errors
	http    *http.Client
	token   string
	// publishRetries is how many times Publish tries again after a 503
	// with Retry-After.
	publishRetries int
	timeout        time.Duration
}

// Option configures a Client.
type Option func(*options) error

type options struct {
	token          string
	httpClient     *http.Client
	tlsConfig      *tls.Config
	caFile         string
	publishRetries int
	timeout        time.Duration
}

// WithToken sends "Authorization: Bearer TOKEN" on every request, as an
// agent started with --api-token or --api-token-file requires.
func WithToken(token string) Option {
	return func(o *options) error {
		if strings.ContainsAny(token, "\r\n") {
			return errors.New("the API token must not contain line breaks")
		}
		o.token = token
		return nil
	}
}

// WithHTTPClient sends requests with c instead of a client of the
// package's own. Its Timeout, if any, also cuts event streams: leave it 0.
// With a unix: address or a TLS option, a copy of c with its transport
// adapted is used.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("WithHTTPClient: nil *http.Client")
		}
		o.httpClient = c
		return nil
	}
}

// WithCAFile trusts the PEM certificates in path for https:// addresses,
// in place of the system's roots: the agent's own certificate
// (--api-tls-cert) or the CA that signed it.
func WithCAFile(path string) Option {
	return func(o *options) error {
		o.caFile = path
		return nil
	}
}

// WithTLSConfig uses cfg for https:// addresses (a client certificate, a
// server name, a pool of roots). WithCAFile adds its roots to a copy of it.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(o *options) error {
		o.tlsConfig = cfg
		return nil
	}
}

// WithPublishRetries makes Publish try again, up to retries times, when
// the agent refuses a message for backpressure (503 with Retry-After),
// waiting as long as the agent asks (between 100 ms and 10 s). Default 0:
// the *APIError is returned at once.
func WithPublishRetries(retries int) Option {
	return func(o *options) error {
		if retries < 0 {
			return fmt.Errorf("WithPublishRetries: negative count %d", retries)
		}
		o.publishRetries = retries
		return nil
	}
}

// WithRequestTimeout bounds every request but event streams. Default 30s.
func WithRequestTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("WithRequestTimeout: %s is not positive", d)
		}
		o.timeout = d
		return nil
	}
}

// DefaultRequestTimeout bounds every request but event streams unless
// WithRequestTimeout says otherwise.
const DefaultRequestTimeout = 30 * time.Second

// maxAnswerBytes bounds what is read of an answer other than a stream.
const maxAnswerBytes = 16 << 20

// New returns a client of the agent at baseURL: "http://HOST:PORT" or
// "https://HOST:PORT" (a path prefix is kept, for an agent behind a
// proxy), "HOST:PORT" (http), or "unix:/PATH" for an agent listening on a
// Unix socket.
func New(baseURL string, opts ...Option) (*Client, error) {
	var o options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	c := &Client{display: baseURL, token: o.token, publishRetries: o.publishRetries, timeout: o.timeout}
	if c.timeout == 0 {
		c.timeout = DefaultRequestTimeout
	}
	// No client timeout by default: it would cut event streams. Requests
	// carry their own deadline instead.
	hc := &http.Client{}
	if o.httpClient != nil {
		copied := *o.httpClient
		hc = &copied
	}
	c.http = hc

	if path, ok := strings.CutPrefix(baseURL, "unix:"); ok {
		if path == "" || strings.HasPrefix(path, "//") {
			return nil, fmt.Errorf("%w %q: want unix:/PATH, as in unix:/run/hearsay.sock", ErrBadAddress, baseURL)
		}
		c.base = &url.URL{Scheme: "http", Host: "hearsay"}
		tr, err := transportOf(hc)
		if err != nil {
			return nil, err
		}
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}
		hc.Transport = tr
		return c, nil
	}
	base, err := parseBaseURL(baseURL)
	if err != nil {
		return nil, err
	}
	c.base = base
	if o.tlsConfig != nil || o.caFile != "" {
		tlsCfg, err := tlsConfig(o)
		if err != nil {
			return nil, err
		}
		tr, err := transportOf(hc)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = tlsCfg
		hc.Transport = tr
	}
	return c, nil
}

// ErrBadAddress is what New's error wraps when baseURL is not an agent's
// address.
var ErrBadAddress = errors.New("bad agent address")

// parseBaseURL checks an http(s) URL or a host:port.
func parseBaseURL(s string) (*url.URL, error) {
	raw := s
	if !strings.Contains(s, "://") {
		raw = "http://" + s
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w %q: want HOST:PORT, an http:// or https:// URL, or unix:/PATH", ErrBadAddress, s)
	}
	if port := u.Port(); port != "" {
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("%w %q: port must be between 1 and 65535", ErrBadAddress, s)
		}
	} else if !strings.Contains(s, "://") {
		return nil, fmt.Errorf("%w %q: want HOST:PORT", ErrBadAddress, s)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// transportOf returns a copy of the client's transport to adapt.
func transportOf(hc *http.Client) (*http.Transport, error) {
	switch tr := hc.Transport.(type) {
	case nil:
		return http.DefaultTransport.(*http.Transport).Clone(), nil
	case *http.Transport:
		return tr.Clone(), nil
	default:
		return nil, fmt.Errorf("the HTTP client's transport is a %T, not an *http.Transport: cannot set its dialer or TLS", tr)
	}
}

func tlsConfig(o options) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.tlsConfig != nil {
		cfg = o.tlsConfig.Clone()
	}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("reading the CA file: %w", err)
		}
		pool := cfg.RootCAs
		if pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the CA file %s holds no PEM certificate", o.caFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// String is the agent's address as given to New.
func (c *Client) String() string { return c.display }

func (c *Client) url(path string, query url.Values) string {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	return u.String()
}

func (c *Client) newRequest(ctx context.Context, method, path string, query url.Values, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, query), body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// ErrUnreachable is what an error wraps when the agent could not be
// reached at all: nothing listens, a TLS handshake failed, the connection
// broke before an answer.
var ErrUnreachable = errors.New("cannot reach the agent")

// send sends a request and returns the answer, whatever its status.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, ctxErr
		}
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err // it repeats the URL
		}
		return nil, fmt.Errorf("%w at %s: %w", ErrUnreachable, c.display, err)
	}
	return resp, nil
}

// call sends a request with the client's timeout and decodes a JSON
// answer of status want into out (unless out is nil).
func (c *Client) call(ctx context.Context, method, path string, body io.Reader, want int, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := c.newRequest(ctx, method, path, nil, body)
	if err != nil {
		return err
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return answerError(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswerBytes)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: the agent's answer is not the JSON expected: %w", method, path, err)
	}
	return nil
}

// APIError is an answer of the agent other than success.
type APIError struct {
	// StatusCode is the HTTP status, as 400, 401 or 503.
	StatusCode int
	// Message is the agent's own message: the "error" of its JSON body.
	Message string
	// RetryAfter is how long the agent asked to wait before trying again
	// (the Retry-After of a 503 for backpressure); 0 when it did not ask.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	return fmt.Sprintf("agent answered %d: %s", e.StatusCode, e.Message)
}

// ErrBackpressure matches (errors.Is) an *APIError by which the agent
// refused a message because its propagation cache is full: retry after
// its RetryAfter.
var ErrBackpressure = errors.New("agent busy: retry later")

// Is reports a backpressure refusal as ErrBackpressure.
func (e *APIError) Is(target error) bool {
	return target == ErrBackpressure && e.StatusCode == http.StatusServiceUnavailable && e.RetryAfter > 0
}

// Bounds of a Retry-After the client follows.
const (
	minRetryDelay = 100 * time.Millisecond
	maxRetryDelay = 10 * time.Second
	// defaultRetryDelay is used when a Retry-After does not parse.
	defaultRetryDelay = time.Second
)

// answerError turns an unsuccessful answer into an *APIError carrying the
// agent's message: the "error" of its JSON body, or the body's text.
func answerError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &APIError{StatusCode: resp.StatusCode, Message: msg,
		RetryAfter: retryDelay(resp.Header.Get("Retry-After"), time.Now())}
}

// retryDelay reads a Retry-After header, seconds or an HTTP date, bounded
// to [minRetryDelay, maxRetryDelay]; 0 when there is none.
func retryDelay(header string, now time.Time) time.Duration {
	if header == "" {
		return 0
	}
	d := defaultRetryDelay
	if secs, err := strconv.Atoi(header); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(header); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, minRetryDelay), maxRetryDelay)
}
