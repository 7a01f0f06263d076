package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Message is a message delivered by the agent.
type Message struct {
	ID      string    // 32 hex digits
	Topic   string    // the topic it was published on
	Origin  string    // ID of the node that published it, 32 hex digits
	Created time.Time // when it was published, by the origin's clock (millisecond precision)
	Payload []byte
}

// SubscribeOption configures a subscription.
type SubscribeOption func(*subscribeConfig)

type subscribeConfig struct {
	after       string
	reconnect   bool
	minBackoff  time.Duration
	maxBackoff  time.Duration
	idleTimeout time.Duration
	onRetry     func(err error, wait time.Duration)
}

// Defaults of a subscription.
const (
	// DefaultMinBackoff is the first wait before reconnecting; each failed
	// attempt doubles it, up to DefaultMaxBackoff.
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
	// DefaultIdleTimeout ends a connection that brought nothing for that
	// long: an agent sends a keep-alive comment every 15 s, so the
	// connection is dead.
	DefaultIdleTimeout = 60 * time.Second
)

// After starts the subscription after the message with this ID: first
// every message the agent still keeps in its log (the last 10 minutes by
// default) that was accepted after it and matches, then the live ones.
func After(id string) SubscribeOption {
	return func(c *subscribeConfig) { c.after = id }
}

// WithoutReconnect makes Next return the error that ended the stream
// (the agent stopped, the connection broke) instead of reconnecting.
func WithoutReconnect() SubscribeOption {
	return func(c *subscribeConfig) { c.reconnect = false }
}

// WithBackoff sets the first and the longest wait between reconnection
// attempts (defaults DefaultMinBackoff and DefaultMaxBackoff). Each wait is
// jittered down by up to a half.
func WithBackoff(first, longest time.Duration) SubscribeOption {
	return func(c *subscribeConfig) {
		if first > 0 {
			c.minBackoff = first
		}
		if longest >= c.minBackoff {
			c.maxBackoff = longest
		}
	}
}

// WithIdleTimeout sets how long a connection may bring nothing, not even
// a keep-alive, before it counts as lost. Default DefaultIdleTimeout.
func WithIdleTimeout(d time.Duration) SubscribeOption {
	return func(c *subscribeConfig) {
		if d > 0 {
			c.idleTimeout = d
		}
	}
}

// OnRetry has f called, from Next, before each wait to reconnect, with
// why the stream was lost (or why the last attempt failed) and the wait;
// and with ErrNotResumed and 0 when a reconnection could not resume.
// For logging: f must not block.
func OnRetry(f func(err error, wait time.Duration)) SubscribeOption {
	return func(c *subscribeConfig) { c.onRetry = f }
}

// Errors of a subscription.
var (
	// ErrSubscriptionClosed is what Next returns after Close.
	ErrSubscriptionClosed = errors.New("subscription closed")
	// ErrStreamClosed is a stream the agent closed without an error event.
	ErrStreamClosed = errors.New("the agent closed the stream")
	// ErrStreamIdle is a connection that brought nothing, not even a
	// keep-alive, for the idle timeout.
	ErrStreamIdle = errors.New("the stream was silent, not even a keep-alive: connection lost")
	// ErrNotResumed reports a reconnection after which the agent did not
	// find the last message seen in its log (pruned, or never there): the
	// stream goes on live, and messages in between may be missed.
	ErrNotResumed = errors.New("the agent no longer keeps the last message seen: resumed live, messages in between may be missed")
)

// StreamError is the error event by which the agent ended a stream, as
// "node shutting down", or "subscriber too slow".
type StreamError struct {
	Reason string
}

func (e *StreamError) Error() string { return "the agent ended the stream: " + e.Reason }

// Subscription is an open subscription. Next is meant for one goroutine;
// Close may be called from any.
type Subscription struct {
	client  *Client
	pattern string
	cfg     subscribeConfig
	ctx     context.Context
	cancel  context.CancelFunc
	closed  chan struct{} // closed by Close
	close   sync.Once
	lastID  string      // the Last-Event-ID to resume after
	conn    *streamConn // nil between connections
	lost    error       // why the last connection ended
	err     error       // the error that ended the subscription
}

// Subscribe opens an event stream of the messages matching pattern
// (docs/api.md: "orders.*" one token, "orders.>" one or more, ">" or ""
// everything). When it returns, the agent holds the subscription: every
// message it delivers afterwards reaches Next.
//
// Errors of the first connection are returned at once: the agent is not
// reachable, refuses the token (401) or the pattern (400). Later, when the
// stream is lost, Next reconnects by itself as a browser's EventSource
// does, with backoff and Last-Event-ID, so that it sees every message the
// agent delivered, once, as long as the agent kept it in its log. ctx
// bounds the whole subscription.
func (c *Client) Subscribe(ctx context.Context, pattern string, opts ...SubscribeOption) (*Subscription, error) {
	cfg := subscribeConfig{reconnect: true, minBackoff: DefaultMinBackoff, maxBackoff: DefaultMaxBackoff,
		idleTimeout: DefaultIdleTimeout}
	for _, opt := range opts {
		opt(&cfg)
	}
	if pattern == "" {
		pattern = ">"
	}
	s := &Subscription{client: c, pattern: pattern, cfg: cfg, lastID: cfg.after, closed: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(ctx)
	conn, err := s.connect()
	if err != nil {
		s.cancel()
		return nil, err
	}
	s.conn = conn
	return s, nil
}

// LastID is the ID of the last message Next returned, or the After ID if
// none yet: where a later subscription may resume.
func (s *Subscription) LastID() string { return s.lastID }

// Next returns the next message. It blocks until one arrives, the
// subscription ends (Close, its context, an error the agent will not get
// over, such as a 401 on reconnection), or, with WithoutReconnect, the
// stream ends. After an error, every later call returns it.
func (s *Subscription) Next() (Message, error) {
	for s.err == nil {
		if s.conn == nil {
			if err := s.reconnect(); err != nil {
				s.end(err)
				break
			}
		}
		m, err := s.conn.next()
		if err == nil {
			s.lastID = m.ID
			return m, nil
		}
		s.conn.close()
		s.conn = nil
		switch {
		case s.ctx.Err() != nil:
			s.end(s.ctx.Err())
		case errors.Is(err, errBadEvent) || !s.cfg.reconnect:
			s.end(err) // a bad event would come again on reconnection
		default:
			s.lost = err
		}
	}
	return Message{}, s.err
}

// Close ends the subscription; a Next blocked in another goroutine
// returns ErrSubscriptionClosed.
func (s *Subscription) Close() error {
	s.close.Do(func() { close(s.closed) })
	s.cancel()
	return nil
}

func (s *Subscription) end(err error) {
	select {
	case <-s.closed:
		err = ErrSubscriptionClosed
	default:
	}
	if s.conn != nil {
		s.conn.close()
		s.conn = nil
	}
	s.err = err
	s.cancel()
}

// reconnect waits and connects again, with exponential backoff, until it
// succeeds, the error is one retrying cannot mend, or the subscription
// ends.
func (s *Subscription) reconnect() error {
	delay := s.cfg.minBackoff
	cause := s.lost
	for {
		wait := delay/2 + rand.N(delay/2+1) // jitter, so that many clients do not come back at once
		if s.cfg.onRetry != nil {
			s.cfg.onRetry(cause, wait)
		}
		timer := time.NewTimer(wait)
		select {
		case <-s.ctx.Done():
			timer.Stop()
			return s.ctx.Err()
		case <-timer.C:
		}
		conn, err := s.connect()
		if err == nil {
			s.conn = conn
			if conn.resumed == "false" && s.cfg.onRetry != nil {
				s.cfg.onRetry(ErrNotResumed, 0)
			}
			return nil
		}
		if s.ctx.Err() != nil || permanent(err) {
			return err
		}
		cause = err
		delay = min(2*delay, s.cfg.maxBackoff)
	}
}

// permanent reports an answer retrying cannot change: a 4xx but a timeout
// or rate limit.
func permanent(err error) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.StatusCode/100 == 4 &&
		apiErr.StatusCode != http.StatusRequestTimeout && apiErr.StatusCode != http.StatusTooManyRequests
}

// streamConn is one connection of a subscription.
type streamConn struct {
	body    io.ReadCloser
	events  *sseReader
	cancel  context.CancelCauseFunc
	ctx     context.Context
	idle    *time.Timer
	resumed string // the X-Hearsay-Resumed header: "true", "false", or "" (nothing to resume)
}

// connect opens the stream, resuming after s.lastID if set.
func (s *Subscription) connect() (*streamConn, error) {
	ctx, cancel := context.WithCancelCause(s.ctx)
	req, err := s.client.newRequest(ctx, http.MethodGet, "/v1/messages/stream", url.Values{"topic": {s.pattern}}, nil)
	if err != nil {
		cancel(nil)
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if s.lastID != "" {
		req.Header.Set("Last-Event-ID", s.lastID)
	}
	// The answer's headers come once the agent holds the subscription: a
	// request timeout bounds the wait for them, the idle timeout the stream.
	headers := time.AfterFunc(s.client.timeout, func() { cancel(errors.New("no answer within the request timeout")) })
	resp, err := s.client.send(req)
	headers.Stop()
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && s.ctx.Err() == nil {
			err = fmt.Errorf("%w at %s: %w", ErrUnreachable, s.client.display, cause)
		}
		cancel(nil)
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		err := answerError(resp)
		resp.Body.Close()
		cancel(nil)
		return nil, err
	}
	c := &streamConn{ctx: ctx, cancel: cancel, resumed: resp.Header.Get("X-Hearsay-Resumed")}
	c.idle = time.AfterFunc(s.cfg.idleTimeout, func() { cancel(ErrStreamIdle) })
	c.body = resp.Body
	c.events = newSSEReader(&idleReader{r: resp.Body, timer: c.idle, timeout: s.cfg.idleTimeout}, maxEventBytes)
	return c, nil
}

func (c *streamConn) close() {
	c.idle.Stop()
	c.cancel(nil)
	c.body.Close()
}

// maxEventBytes bounds one event: the largest message an agent can be
// configured to take (1 GiB) as base64 in JSON, with room for its other
// fields.
const maxEventBytes = (1<<30)/3*4 + 64<<10

// eventJSON is a message event's data, as the agent writes it.
type eventJSON struct {
	ID      string `json:"id"`
	Topic   string `json:"topic"`
	Origin  string `json:"origin"`
	Created string `json:"created"`
	Payload []byte `json:"payload"`
}

// next returns the next message of the stream, or why it ended: a
// *StreamError, ErrStreamClosed, ErrStreamIdle, or the read error.
func (c *streamConn) next() (Message, error) {
	for {
		ev, err := c.events.Next()
		switch {
		case context.Cause(c.ctx) == ErrStreamIdle:
			return Message{}, ErrStreamIdle
		case c.ctx.Err() != nil:
			return Message{}, c.ctx.Err()
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return Message{}, ErrStreamClosed
		case err != nil:
			return Message{}, fmt.Errorf("reading the stream: %w", err)
		}
		switch ev.Event {
		case "message":
			return decodeMessage(ev)
		case "error":
			return Message{}, &StreamError{Reason: streamErrorText(ev.Data)}
		}
	}
}

// errBadEvent is a message event that does not decode.
var errBadEvent = errors.New("the agent sent a malformed message event")

// decodeMessage reads a message event. A malformed one is an error: the
// agent does not send them.
func decodeMessage(ev sseEvent) (Message, error) {
	var m eventJSON
	if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
		return Message{}, fmt.Errorf("%w: not the JSON expected: %w", errBadEvent, err)
	}
	created, err := time.Parse(time.RFC3339Nano, m.Created)
	if err != nil {
		return Message{}, fmt.Errorf("%w: message %s: bad creation time: %w", errBadEvent, m.ID, err)
	}
	id := ev.ID
	if id == "" {
		id = m.ID
	}
	return Message{ID: id, Topic: m.Topic, Origin: m.Origin, Created: created, Payload: m.Payload}, nil
}

// streamErrorText returns the "error" of an error event's JSON data, or the
// data itself.
func streamErrorText(data string) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(data), &e) == nil && e.Error != "" {
		return e.Error
	}
	return data
}

// idleReader restarts timer whenever data arrives.
type idleReader struct {
	r       io.Reader
	timer   *time.Timer
	timeout time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.timer.Reset(r.timeout)
	}
	return n, err
}
