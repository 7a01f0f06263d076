package client_test

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/client"
	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/internal/testcert"
	"github.com/hearsay-io/hearsay/node"
	"github.com/hearsay-io/hearsay/registry/static"
)

func newClient(t *testing.T, addr string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(addr, opts...)
	require.NoError(t, err)
	return c
}

func TestNewChecksTheAddress(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:7601", "http://127.0.0.1:7601", "https://agent.example:443/prefix/",
		"[::1]:7601", "unix:/run/hearsay.sock", "http://localhost"} {
		_, err := client.New(ok)
		assert.NoError(t, err, ok)
	}
	for _, bad := range []string{"", "localhost", "127.0.0.1:99999", "127.0.0.1:0", "ftp://host:1", "http://",
		"unix:", "http://user:pw@host:1", "http://host:1/?q=1", "http://host:x"} {
		_, err := client.New(bad)
		assert.ErrorIs(t, err, client.ErrBadAddress, "%q", bad)
	}
	_, err := client.New("127.0.0.1:1", client.WithToken("two\nlines"))
	assert.Error(t, err)
	_, err = client.New("https://127.0.0.1:1", client.WithCAFile(filepath.Join(t.TempDir(), "missing.pem")))
	assert.ErrorIs(t, err, os.ErrNotExist)
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	_, err = client.New("https://127.0.0.1:1", client.WithCAFile(notPEM))
	assert.ErrorContains(t, err, "holds no PEM certificate")
}

func TestUnreachableAgent(t *testing.T) {
	c := newClient(t, freeAddr(t, "tcp"))
	ctx := context.Background()
	_, err := c.Status(ctx)
	assert.ErrorIs(t, err, client.ErrUnreachable)
	assert.ErrorContains(t, err, "cannot reach the agent at 127.0.0.1:")
	_, err = c.Publish(ctx, "t", nil)
	assert.ErrorIs(t, err, client.ErrUnreachable)
	_, err = c.Subscribe(ctx, ">")
	assert.ErrorIs(t, err, client.ErrUnreachable)
	assert.ErrorIs(t, c.Health(ctx), client.ErrUnreachable)
}

// The agent's refusals come back as *APIError with its message.
func TestAgentErrors(t *testing.T) {
	a := runAgent(t, node.Config{}, node.APIConfig{Token: "s3cret"})
	ctx := context.Background()

	var apiErr *client.APIError
	_, err := newClient(t, a.addr).Status(ctx)
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
	_, err = newClient(t, a.addr, client.WithToken("wrong")).Subscribe(ctx, ">")
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusUnauthorized, apiErr.StatusCode, "a bad token fails the subscription at once")
	assert.NoError(t, newClient(t, a.addr).Health(ctx), "/healthz needs no token")

	c := newClient(t, a.addr, client.WithToken("s3cret"))
	_, err = c.Subscribe(ctx, "orders.>.x")
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
	assert.Equal(t, `agent answered 400: pattern "orders.>.x": '>' must be the last token`, err.Error())
	_, err = c.Subscribe(ctx, ">", client.After("not-an-id"))
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
	_, err = c.Publish(ctx, "bad topic", []byte("x"))
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
	_, err = c.UseKey(ctx, "00000001")
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusNotFound, apiErr.StatusCode)
	err = c.Ready(ctx)
	assert.ErrorAs(t, err, &apiErr, "an agent without /readyz answers 404")
}

// A full propagation cache: the agent refuses with 503 and a Retry-After,
// which the error carries.
func TestPublishBackpressure(t *testing.T) {
	a := runAgent(t, node.Config{Gossip: gossip.Config{CacheMessages: 1, CacheRounds: 100_000}}, node.APIConfig{})
	c := newClient(t, a.addr)
	ctx := context.Background()
	_, err := c.Publish(ctx, "t.one", []byte("fills the cache"))
	require.NoError(t, err)
	_, err = c.Publish(ctx, "t.two", []byte("finds it full"))
	require.ErrorIs(t, err, client.ErrBackpressure)
	var apiErr *client.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusServiceUnavailable, apiErr.StatusCode)
	assert.Equal(t, time.Second, apiErr.RetryAfter, "the agent asks for at least a second")
}

// WithPublishRetries waits as asked and tries again, only after 503s with
// Retry-After.
func TestPublishRetries(t *testing.T) {
	var attempts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := attempts.Add(1)
		switch {
		case r.URL.Query().Get("topic") == "closing":
			w.WriteHeader(http.StatusServiceUnavailable) // no Retry-After: shutting down
		case n < 3:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusAccepted)
			w.Write([]byte(`{"id":"00112233445566778899aabbccddeeff"}`))
		}
	}))
	t.Cleanup(srv.Close)
	ctx := context.Background()

	id, err := newClient(t, srv.URL, client.WithPublishRetries(2)).Publish(ctx, "t", nil)
	require.NoError(t, err)
	assert.Equal(t, "00112233445566778899aabbccddeeff", id)
	assert.EqualValues(t, 3, attempts.Load())

	attempts.Store(0)
	_, err = newClient(t, srv.URL, client.WithPublishRetries(1)).Publish(ctx, "t", nil)
	assert.ErrorIs(t, err, client.ErrBackpressure)
	assert.EqualValues(t, 2, attempts.Load())

	attempts.Store(0)
	_, err = newClient(t, srv.URL, client.WithPublishRetries(5)).Publish(ctx, "closing", nil)
	assert.NotErrorIs(t, err, client.ErrBackpressure)
	assert.EqualValues(t, 1, attempts.Load(), "a 503 without Retry-After is not retried")
}

// The client's types hold every field the agent sends, under the same
// names: a field added to the API and not here fails this test.
func TestTypesMatchTheAPI(t *testing.T) {
	pairs := []struct{ api, client any }{
		{node.Status{}, client.Status{}},
		{node.PeersInfo{}, client.Peers{}},
		{node.BucketJSON{}, client.Bucket{}},
		{node.ContactJSON{}, client.Contact{}},
		{node.MemberJSON{}, client.Member{}},
		{node.PenaltyJSON{}, client.Penalty{}},
	}
	for _, p := range pairs {
		assert.Equal(t, fieldNames(reflect.TypeOf(p.api)), fieldNames(reflect.TypeOf(p.client)),
			"%T and %T", p.api, p.client)
	}
	assert.Equal(t, fieldNames(reflect.TypeOf(node.MessageJSON{})), fieldNames(reflect.TypeOf(client.Message{})))
}

// fieldNames are the JSON names of a struct's fields, or their Go names in
// lower case where they have no tag.
func fieldNames(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func TestStatusPeersKeys(t *testing.T) {
	a := runAgent(t, node.Config{Name: "solo", Registry: staticPeers(t, "127.0.0.1:1")}, node.APIConfig{})
	c := newClient(t, a.addr)
	ctx := context.Background()

	st, err := c.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, "solo", st.Name)
	assert.Equal(t, a.node.ID().String(), st.ID)
	assert.Equal(t, 1, st.Peers)

	peers, err := c.Peers(ctx)
	require.NoError(t, err)
	assert.Equal(t, client.Peers{Registry: "static", Peers: []string{"127.0.0.1:1"}, Suspects: []string{}}, peers)

	keys, err := c.Keys(ctx)
	require.NoError(t, err)
	assert.Equal(t, client.Keyring{Encrypted: false, Keys: []client.Key{}}, keys)
	first, err := c.InstallKey(ctx, []byte("correct horse battery staple"))
	require.NoError(t, err)
	second, err := c.InstallKey(ctx, []byte("another passphrase, longer"))
	require.NoError(t, err)
	keys, err = c.UseKey(ctx, second)
	require.NoError(t, err)
	assert.True(t, keys.Encrypted)
	assert.ElementsMatch(t, []client.Key{{ID: first}, {ID: second, Primary: true}}, keys.Keys)
	keys, err = c.RemoveKey(ctx, first)
	require.NoError(t, err)
	assert.Equal(t, []client.Key{{ID: second, Primary: true}}, keys.Keys)
	_, err = c.RemoveKey(ctx, second)
	var apiErr *client.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusConflict, apiErr.StatusCode, "the primary stays")
}

func staticPeers(t *testing.T, peers ...string) *static.Registry {
	reg, err := static.New(static.Config{Peers: peers})
	require.NoError(t, err)
	return reg
}

func TestUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	a, err := startAgent(node.Config{Name: "on-a-socket"}, node.APIConfig{}, "unix:"+path)
	require.NoError(t, err)
	t.Cleanup(a.stop)
	c := newClient(t, "unix:"+path)
	st, err := c.Status(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "on-a-socket", st.Name)
}

// An https:// agent with the test's own certificate: trusted with
// WithCAFile, refused without.
func TestTLS(t *testing.T) {
	certFile, keyFile := testcert.Write(t)
	tlsCfg, err := node.APITLSConfig(certFile, keyFile)
	require.NoError(t, err)
	n, err := node.New(node.Config{Name: "tls", Bind: "127.0.0.1:0", Filter: node.FilterMemory, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { n.Close() })
	require.NoError(t, n.Start())
	srv := httptest.NewUnstartedServer(node.NewAPI(n, node.APIConfig{}))
	srv.TLS = tlsCfg
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshakes refused below
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ctx := context.Background()

	st, err := newClient(t, srv.URL, client.WithCAFile(certFile)).Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, "tls", st.Name)
	_, err = newClient(t, srv.URL).Status(ctx)
	assert.ErrorIs(t, err, client.ErrUnreachable)
	assert.ErrorContains(t, err, "certificate")
	_, err = newClient(t, strings.Replace(srv.URL, "https:", "http:", 1)).Status(ctx)
	var apiErr *client.APIError
	require.ErrorAs(t, err, &apiErr, "plain HTTP to a TLS port")
	assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
}

// Close ends a Next blocked in another goroutine.
func TestCloseEndsNext(t *testing.T) {
	a := runAgent(t, node.Config{}, node.APIConfig{})
	sub, err := newClient(t, a.addr).Subscribe(context.Background(), ">")
	require.NoError(t, err)
	done := make(chan error)
	go func() {
		_, err := sub.Next()
		done <- err
	}()
	require.NoError(t, sub.Close())
	select {
	case err := <-done:
		assert.ErrorIs(t, err, client.ErrSubscriptionClosed)
	case <-time.After(10 * time.Second):
		t.Fatal("Next did not return after Close")
	}
	_, err = sub.Next()
	assert.ErrorIs(t, err, client.ErrSubscriptionClosed, "and keeps saying so")
}

// Without reconnection, Next returns why the stream ended.
func TestWithoutReconnect(t *testing.T) {
	a := runAgent(t, node.Config{}, node.APIConfig{})
	sub, err := newClient(t, a.addr).Subscribe(context.Background(), ">", client.WithoutReconnect())
	require.NoError(t, err)
	defer sub.Close()
	a.stop()
	_, err = sub.Next()
	var streamErr *client.StreamError
	require.ErrorAs(t, err, &streamErr)
	assert.Equal(t, "node shutting down", streamErr.Reason)
}

// A subscription to a node that goes away, misses messages while it is
// down, and comes back on the same data dir and address: Next reconnects
// by itself and returns every message once, in the order the node
// accepted them, those published during the outage included.
func TestSubscriptionResumesAcrossARestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	gossipA, gossipB := freeAddr(t, "udp"), freeAddr(t, "udp")
	apiB, dirB := freeAddr(t, "tcp"), t.TempDir()
	gc := gossip.Config{Interval: 20 * time.Millisecond, CacheRounds: 1000} // messages stay on offer 20 s
	nodeConfig := func(name, bind, peer, dir string) node.Config {
		return node.Config{Name: name, Bind: bind, DataDir: dir, Gossip: gc, Registry: staticPeers(t, peer)}
	}
	a := runAgent(t, nodeConfig("a", gossipA, gossipB, t.TempDir()), node.APIConfig{})
	b, err := startAgent(nodeConfig("b", gossipB, gossipA, dirB), node.APIConfig{}, apiB)
	require.NoError(t, err)
	t.Cleanup(b.stop)

	retries := make(chan error, 1000)
	sub, err := newClient(t, apiB).Subscribe(ctx, "jobs.>", client.WithBackoff(10*time.Millisecond, 100*time.Millisecond),
		client.OnRetry(func(err error, wait time.Duration) { retries <- err }))
	require.NoError(t, err)
	defer sub.Close()
	// Next runs in its own goroutine, so that it keeps reconnecting while
	// the node is down.
	messages := make(chan client.Message)
	go func() {
		for {
			m, err := sub.Next()
			if err != nil {
				close(messages)
				return
			}
			messages <- m
		}
	}()
	pubA, pubB := newClient(t, a.addr), newClient(t, apiB)
	publish := func(c *client.Client, n int, phase string) []string {
		var ids []string
		for i := range n {
			id, err := c.Publish(ctx, "jobs."+phase, []byte{byte(i)})
			require.NoError(t, err)
			ids = append(ids, id)
		}
		return ids
	}
	var received []string
	receive := func(n int) {
		t.Helper()
		for range n {
			select {
			case m, ok := <-messages:
				require.True(t, ok, "the subscription ended")
				received = append(received, m.ID)
			case <-ctx.Done():
				t.Fatalf("%d messages received", len(received))
			}
		}
	}
	var seen []error
	nextRetry := func() error {
		t.Helper()
		select {
		case err := <-retries:
			seen = append(seen, err)
			return err
		case <-ctx.Done():
			t.Fatal("no reconnection attempt")
			return nil
		}
	}

	before := publish(pubB, 5, "before")
	receive(5)
	b.stop()
	var streamErr *client.StreamError
	require.ErrorAs(t, nextRetry(), &streamErr, "the stream ends with the shutdown event")
	during := publish(pubA, 20, "during")
	require.ErrorIs(t, nextRetry(), client.ErrUnreachable, "reconnections are refused while the node is down")
	b, err = startAgent(nodeConfig("b", gossipB, gossipA, dirB), node.APIConfig{}, apiB)
	require.NoError(t, err)
	t.Cleanup(b.stop)
	after := publish(pubB, 5, "after")
	receive(len(during) + len(after))

	sort.Strings(received)
	all := append(append(append([]string(nil), before...), during...), after...)
	sort.Strings(all)
	assert.Equal(t, all, received, "every message once")
	for len(retries) > 0 {
		nextRetry()
	}
	for _, err := range seen {
		assert.NotErrorIs(t, err, client.ErrNotResumed)
	}
	t.Logf("%d messages published, %d of them on the other node while the subscribed one was down; %d received, each once, after %d reconnection attempts",
		len(all), len(during), len(received), len(seen))

	// Nothing more: a last message comes next, not a late copy.
	last := publish(pubB, 1, "last")
	receive(1)
	assert.Equal(t, last[0], received[len(received)-1])
}

func TestMessageFields(t *testing.T) {
	a := runAgent(t, node.Config{}, node.APIConfig{})
	c := newClient(t, a.addr)
	sub, err := c.Subscribe(context.Background(), "")
	require.NoError(t, err)
	defer sub.Close()
	published := time.Now()
	id, err := c.Publish(context.Background(), "fields.test", []byte{0, 1, 2, 255})
	require.NoError(t, err)
	m, err := sub.Next()
	require.NoError(t, err)
	assert.Equal(t, id, m.ID)
	assert.Equal(t, id, sub.LastID())
	assert.Equal(t, "fields.test", m.Topic)
	assert.Equal(t, a.node.ID().String(), m.Origin)
	assert.Equal(t, []byte{0, 1, 2, 255}, m.Payload)
	assert.WithinDuration(t, published, m.Created, time.Minute)
}

// A connection that brings nothing, not even a keep-alive, is lost.
func TestIdleStreamIsLost(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	sub, err := newClient(t, srv.URL).Subscribe(context.Background(), ">",
		client.WithIdleTimeout(50*time.Millisecond), client.WithoutReconnect())
	require.NoError(t, err)
	defer sub.Close()
	_, err = sub.Next()
	assert.ErrorIs(t, err, client.ErrStreamIdle)
}

// A reconnection the agent refuses for good (here the token changed) ends
// the subscription with the agent's answer; a stream the agent ends as too
// slow is resumed.
func TestReconnectionOutcomes(t *testing.T) {
	var connections atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch connections.Add(1) {
		case 1:
			w.Header().Set("Content-Type", "text/event-stream")
			w.Write([]byte("id: 0a\nevent: message\ndata: " +
				`{"id":"0a","topic":"t","origin":"9b","created":"2026-11-22T19:40:00.123Z","payload":"aGk="}` + "\n\n" +
				"event: error\ndata: {\"error\":\"subscriber too slow: more than the buffer of messages behind; reconnect\"}\n\n"))
		case 2:
			assert.Equal(t, "0a", r.Header.Get("Last-Event-ID"), "resumes after the last message")
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("X-Hearsay-Resumed", "false")
			w.Write([]byte(": resume point not in the message log\n\n"))
		default:
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"missing or wrong API token (Authorization: Bearer TOKEN)"}`))
		}
	}))
	t.Cleanup(srv.Close)
	var retries []error
	sub, err := newClient(t, srv.URL).Subscribe(context.Background(), ">", client.WithBackoff(time.Millisecond, time.Millisecond),
		client.OnRetry(func(err error, _ time.Duration) { retries = append(retries, err) }))
	require.NoError(t, err)
	defer sub.Close()
	m, err := sub.Next()
	require.NoError(t, err)
	assert.Equal(t, []byte("hi"), m.Payload)
	_, err = sub.Next()
	var apiErr *client.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
	assert.EqualValues(t, 3, connections.Load())
	require.Len(t, retries, 3)
	var streamErr *client.StreamError
	assert.ErrorAs(t, retries[0], &streamErr)
	assert.ErrorIs(t, retries[1], client.ErrNotResumed, "the agent did not find the resume point")
	assert.ErrorIs(t, retries[2], client.ErrStreamClosed)
}

// countingTransport counts the requests it passes on.
type countingTransport struct {
	n  atomic.Int32
	rt http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

func TestWithHTTPClient(t *testing.T) {
	a := runAgent(t, node.Config{}, node.APIConfig{})
	tr := &countingTransport{rt: http.DefaultTransport}
	c := newClient(t, a.addr, client.WithHTTPClient(&http.Client{Transport: tr}))
	require.NoError(t, c.Health(context.Background()))
	assert.EqualValues(t, 1, tr.n.Load(), "the requests go through the client given")

	_, err := client.New("https://127.0.0.1:1", client.WithHTTPClient(&http.Client{Transport: tr}), client.WithTLSConfig(&tls.Config{}))
	assert.ErrorContains(t, err, "not an *http.Transport", "a TLS option cannot be applied to a transport it does not know")
	_, err = client.New("127.0.0.1:1", client.WithHTTPClient(nil))
	assert.Error(t, err)
}
