package node

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	vmetrics "github.com/VictoriaMetrics/metrics"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/node/ui"
	"github.com/hearsay-io/hearsay/security"
)

// Version is the hearsay version shown in status; the command sets it.
var Version = "devel"

// APIConfig configures the local HTTP API. docs/api.md documents it.
type APIConfig struct {
	// KeepAlive is the interval of SSE keep-alive comments. Default 15s.
	KeepAlive time.Duration
	// WriteTimeout bounds each write to a stream, so that a client that
	// stopped reading is let go. Default 30s.
	WriteTimeout time.Duration
	// ProcessMetrics adds the Go runtime's and the process's metrics to
	// /metrics (VictoriaMetrics/metrics writes them; docs/api.md lists them).
	// Leave it off when several nodes share a process.
	ProcessMetrics bool
	// Token, if set, is required as "Authorization: Bearer TOKEN" on every
	// endpoint but the probes, /healthz and /readyz, and the status page's
	// assets (/ui/).
	Token string
	// BodyTimeout bounds the time to read a request body. Default 10s.
	BodyTimeout time.Duration
	// AllowOrigins are the browser origins (scheme://host[:port]) given
	// CORS headers, or AnyOrigin, which is ignored with a Token
	// (CheckAllowOrigins reports it). Default none: same origin only.
	AllowOrigins []string
	// Debug, if set, serves everything under /debug/, behind the Token if
	// one is set: the agent's --api-debug gives it net/http/pprof's
	// handlers. Default nil: /debug/ is not found.
	Debug http.Handler
}

// API serves a node's local HTTP API. It is an http.Handler.
type API struct {
	node *Node
	cfg  APIConfig
	mux  *http.ServeMux

	ending    chan struct{} // closed by EndStreams
	endStream sync.Once
}

// NewAPI returns the HTTP API of n.
func NewAPI(n *Node, cfg APIConfig) *API {
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = 10 * time.Second
	}
	a := &API{node: n, cfg: cfg, mux: http.NewServeMux(), ending: make(chan struct{})}
	if cfg.ProcessMetrics {
		vmetrics.ExposeMetadata(true) // TYPE lines for the runtime's and process's metrics
	}
	a.mux.HandleFunc("/v1/messages", a.only(http.MethodPost, a.publish))
	a.mux.HandleFunc("/v1/messages/stream", a.only(http.MethodGet, a.stream))
	a.mux.HandleFunc("/v1/status", a.only(http.MethodGet, a.status))
	a.mux.HandleFunc("/v1/peers", a.only(http.MethodGet, a.peers))
	a.mux.HandleFunc("/healthz", a.only(http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	}))
	a.mux.HandleFunc("/readyz", a.only(http.MethodGet, a.readyz))
	a.mux.HandleFunc("/metrics", a.only(http.MethodGet, a.serveMetrics))
	a.mux.HandleFunc("/v1/keys", a.keys)
	a.mux.HandleFunc("/v1/keys/", a.key)
	if cfg.Debug != nil {
		a.mux.Handle("/debug/", cfg.Debug)
	}
	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s", r.URL.Path))
	})
	a.mux.Handle(ui.Prefix, ui.Handler(notFound)) // the status page; "/ui" redirects to it
	a.mux.Handle("/", notFound)
	return a
}

// probePaths need no token: liveness and readiness probes (Kubernetes,
// Docker's HEALTHCHECK) carry none, and they tell nothing of the messages.
var probePaths = map[string]bool{"/healthz": true, "/readyz": true}

// readyz answers 200 "ready" once the node is ready (Node.Ready), else 503
// with the reason.
func (a *API) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if ok, reason := a.node.Ready(); !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "not ready: "+reason+"\n")
		return
	}
	io.WriteString(w, "ready\n")
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.cors(w, r) {
		return // a preflight, which carries no token
	}
	if a.cfg.Token != "" && !public(r.URL.Path) && !a.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hearsay"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong API token (Authorization: Bearer TOKEN)")
		return
	}
	a.mux.ServeHTTP(w, r)
}

// public reports the paths served without the token: the probes, and the
// status page's assets, which hold nothing secret (the page sends the
// token on its own requests).
func public(path string) bool {
	return probePaths[path] || path == strings.TrimSuffix(ui.Prefix, "/") || strings.HasPrefix(path, ui.Prefix)
}

// EndStreams ends every open event stream, and any opened after it, with
// the error event "node shutting down". http.Server.Shutdown waits for
// handlers but does not end them, and a stream's handler runs as long as
// its client reads: call EndStreams first. A server from NewAPIServer does
// so in its Shutdown.
func (a *API) EndStreams() {
	a.endStream.Do(func() { close(a.ending) })
}

func (a *API) ended() bool {
	select {
	case <-a.ending:
		return true
	default:
		return false
	}
}

func (a *API) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	// Compare hashes: ConstantTimeCompare leaks the length of its inputs.
	want := sha256.Sum256([]byte(a.cfg.Token))
	have := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(want[:], have[:]) == 1 && ok
}

// readBody reads a request body of at most limit bytes within BodyTimeout.
// tooLarge reports a body over the limit.
func (a *API) readBody(w http.ResponseWriter, r *http.Request, limit int) (body []byte, tooLarge bool, err error) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(a.cfg.BodyTimeout))
	body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, int64(limit)+1))
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) || len(body) > limit {
		return nil, true, nil
	}
	return body, false, err
}

func (a *API) only(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", method)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, method))
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// publish: POST /v1/messages?topic=T with the raw payload as body.
func (a *API) publish(w http.ResponseWriter, r *http.Request) {
	topic := r.URL.Query().Get("topic")
	if err := gossip.ValidateTopic(topic); err != nil {
		a.node.countRefusal(refusedInvalidTopic)
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	limit := a.node.MaxPayload()
	payload, tooLarge, err := a.readBody(w, r, limit)
	switch {
	case tooLarge:
		a.node.countRefusal(refusedTooLarge)
		writeError(w, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("payload larger than %d bytes, the max message size", limit))
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("reading body: %v", err))
		return
	}
	id, err := a.node.Publish(r.Context(), topic, payload)
	switch {
	case err == nil:
		writeJSON(w, http.StatusAccepted, map[string]string{"id": id.String()})
	case errors.Is(err, gossip.ErrInvalidTopic):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, gossip.ErrMessageTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, err.Error())
	case errors.Is(err, gossip.ErrBackpressure):
		// The core says when its backlog will have spread; HTTP counts
		// whole seconds.
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(err)))
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, ErrClosed), errors.Is(err, ErrValidatorUnavailable):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, ErrRejected):
		writeError(w, http.StatusUnprocessableEntity, err.Error())
	case errors.Is(err, ErrIgnored):
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// retryAfterSeconds is a backpressure refusal's wait rounded up to whole
// seconds, never less than one.
func retryAfterSeconds(err error) int {
	d, _ := gossip.RetryAfterOf(err)
	return max(1, int(math.Ceil(d.Seconds())))
}

// MessageJSON is a message as the API shows it.
type MessageJSON struct {
	ID      string `json:"id"`
	Topic   string `json:"topic"`
	Origin  string `json:"origin"`
	Created string `json:"created"` // RFC 3339 with milliseconds
	Payload []byte `json:"payload"` // base64 (standard encoding, as encoding/json writes []byte)
}

// CreatedFormat is the layout of MessageJSON.Created.
const CreatedFormat = "2006-01-02T15:04:05.000Z07:00"

// NewMessageJSON converts a message for the API.
func NewMessageJSON(m gossip.Message) MessageJSON {
	return MessageJSON{
		ID: m.ID.String(), Topic: m.Topic, Origin: m.Origin.String(),
		Created: m.Created.UTC().Format(CreatedFormat),
		Payload: m.Payload,
	}
}

// stream: GET /v1/messages/stream?topic=PATTERN, as Server-Sent Events.
func (a *API) stream(w http.ResponseWriter, r *http.Request) {
	pattern := r.URL.Query().Get("topic")
	// Resume after the last event the client saw: Last-Event-ID, as
	// browsers send it on reconnection, or ?after=ID.
	after := r.Header.Get("Last-Event-ID")
	if q := r.URL.Query().Get("after"); q != "" {
		after = q
	}
	var sub *Subscription
	var replay *Replay
	var err error
	if after != "" {
		id, perr := gossip.ParseMessageID(after)
		if perr != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("bad resume point (Last-Event-ID or after): %v", perr))
			return
		}
		sub, replay, err = a.node.SubscribeAfter(pattern, id)
	} else {
		sub, err = a.node.Subscribe(pattern)
	}
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, ErrClosed) {
			code = http.StatusServiceUnavailable
		}
		writeError(w, code, err.Error())
		return
	}
	defer sub.Close()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // no proxy buffering
	if replay != nil {
		h.Set("X-Hearsay-Resumed", strconv.FormatBool(replay.Found()))
	}
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	keepAlive := time.NewTicker(a.cfg.KeepAlive)
	defer keepAlive.Stop()
	write := func(chunk []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(a.cfg.WriteTimeout))
		if _, err := w.Write(chunk); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	var buf []byte
	if replay != nil {
		if !replay.Found() {
			if !write([]byte(": resume point not in the message log (pruned or unknown): live from now\n\n")) {
				return
			}
		}
		for batch := replay.Next(); batch != nil; batch = replay.Next() {
			if a.ended() {
				write(errorEvent(reasonShutdown))
				return
			}
			buf = buf[:0]
			for _, m := range batch {
				buf = appendEvent(buf, m)
			}
			if !write(buf) {
				return
			}
		}
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepAlive.C:
			if !write([]byte(": keep-alive\n\n")) {
				return
			}
		case <-a.ending:
			write(errorEvent(reasonShutdown))
			return
		case m, ok := <-sub.C:
			if !ok {
				reason := reasonShutdown
				if errors.Is(sub.Err(), ErrSlowSubscriber) {
					reason = "subscriber too slow: more than the buffer of messages behind; reconnect"
				}
				write(errorEvent(reason))
				return
			}
			buf = appendEvent(buf[:0], m)
			// Send whatever else is already queued in the same write.
			for more := true; more && len(buf) < 64<<10; {
				select {
				case m2, ok := <-sub.C:
					if !ok {
						more = false
						break
					}
					buf = appendEvent(buf, m2)
				default:
					more = false
				}
			}
			if !write(buf) {
				return
			}
		}
	}
}

// reasonShutdown is the error event that ends a stream when the node stops.
const reasonShutdown = "node shutting down"

// errorEvent is the event that ends a stream, saying why.
func errorEvent(reason string) []byte {
	data, _ := json.Marshal(map[string]string{"error": reason})
	return fmt.Appendf(nil, "event: error\ndata: %s\n\n", data)
}

func appendEvent(buf []byte, m gossip.Message) []byte {
	data, _ := json.Marshal(NewMessageJSON(m))
	buf = append(buf, "id: "...)
	buf = append(buf, m.ID.String()...)
	buf = append(buf, "\nevent: message\ndata: "...)
	buf = append(buf, data...)
	return append(buf, "\n\n"...)
}

func (a *API) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.node.Status())
}

func (a *API) peers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.node.PeersInfo())
}

// keys: GET /v1/keys lists the keyring; POST /v1/keys installs the key of
// the passphrase in the body.
func (a *API) keys(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		writeJSON(w, http.StatusOK, map[string]any{"encrypted": a.node.Encrypted(), "keys": a.node.Keys()})
	case http.MethodPost:
		passphrase, tooLarge, err := a.readBody(w, r, 4096)
		if tooLarge {
			writeError(w, http.StatusRequestEntityTooLarge, "passphrase longer than 4096 bytes")
			return
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("reading body: %v", err))
			return
		}
		id, err := a.node.InstallPassphrase(bytes.TrimRight(passphrase, "\r\n"))
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"id": id.String()})
	default:
		w.Header().Set("Allow", "GET, POST")
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: use GET or POST", r.Method, r.URL.Path))
	}
}

// key: POST /v1/keys/ID/use makes a key primary; DELETE /v1/keys/ID
// removes it.
func (a *API) key(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/v1/keys/")
	idText, action, _ := strings.Cut(rest, "/")
	id, err := keyIDFromPath(idText)
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	switch {
	case action == "use" && r.Method == http.MethodPost:
		err = a.node.UseKey(id)
	case action == "" && r.Method == http.MethodDelete:
		err = a.node.RemoveKey(id)
	case action == "use" || action == "":
		allow := map[string]string{"use": "POST", "": "DELETE"}[action]
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, allow))
		return
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s", r.URL.Path))
		return
	}
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]any{"encrypted": a.node.Encrypted(), "keys": a.node.Keys()})
	case errors.Is(err, security.ErrUnknownKey):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, security.ErrRemovePrimary):
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}
