package node

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
)

func apiServer(t *testing.T, nd *Node, cfg APIConfig) *httptest.Server {
	srv := httptest.NewServer(NewAPI(nd, cfg))
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, base, topic, body string) (*http.Response, map[string]string) {
	resp, err := http.Post(base+"/v1/messages?topic="+topic, "application/octet-stream", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp, out
}

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	id, event, data string
	comment         bool
}

// readEvents parses a stream into a channel until it ends.
func readEvents(t *testing.T, body io.Reader) <-chan sseEvent {
	ch := make(chan sseEvent, 10000)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				ch <- ev
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				ev.comment = true
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data += line[6:]
			}
		}
	}()
	return ch
}

func openStream(t *testing.T, base, pattern string) (*http.Response, <-chan sseEvent) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/messages/stream?topic="+pattern, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp, readEvents(t, resp.Body)
}

func nextMessage(t *testing.T, ch <-chan sseEvent) sseEvent {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			require.True(t, ok, "stream ended")
			if ev.comment {
				continue
			}
			return ev
		case <-timeout:
			t.Fatal("no event within 10s")
		}
	}
}

func TestAPIPublishAndStream(t *testing.T) {
	nd := startCluster(t, 1, func(i int, c *Config) { c.Gossip.MaxPacketSize = 600 })[0]
	srv := apiServer(t, nd, APIConfig{})
	resp, stream := openStream(t, srv.URL, "orders.*")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))

	for _, topic := range []string{"orders.eu.created", "other", "orders.created"} {
		r, body := post(t, srv.URL, topic, "payload of "+topic)
		require.Equal(t, http.StatusAccepted, r.StatusCode)
		require.Len(t, body["id"], 32)
	}
	ev := nextMessage(t, stream)
	require.Equal(t, "message", ev.event)
	var m MessageJSON
	require.NoError(t, json.Unmarshal([]byte(ev.data), &m))
	require.Equal(t, "orders.created", m.Topic, "only the matching topic is streamed")
	require.Equal(t, ev.id, m.ID)
	require.Equal(t, []byte("payload of orders.created"), m.Payload)
	require.Equal(t, nd.ID().String(), m.Origin)
	created, err := time.Parse(time.RFC3339, m.Created)
	require.NoError(t, err)
	require.WithinDuration(t, time.Now(), created, time.Minute)
	require.Contains(t, ev.data, `"payload":"cGF5bG9hZCBvZiBvcmRlcnMuY3JlYXRlZA=="`, "payload is base64")
}

func TestAPIErrors(t *testing.T) {
	nd := startCluster(t, 1, func(i int, c *Config) {
		c.Gossip.MaxPacketSize = 600
		c.Gossip.MaxMessageSize = 1200 // three chunks: more than the cache holds
		c.Gossip.CacheMessages = 2
	})[0]
	srv := apiServer(t, nd, APIConfig{})

	r, body := post(t, srv.URL, "bad..topic", "x")
	require.Equal(t, http.StatusBadRequest, r.StatusCode)
	require.Contains(t, body["error"], "invalid topic")
	r, _ = post(t, srv.URL, "", "x")
	require.Equal(t, http.StatusBadRequest, r.StatusCode)

	r, body = post(t, srv.URL, "big", strings.Repeat("x", 1201))
	require.Equal(t, http.StatusRequestEntityTooLarge, r.StatusCode)
	require.Contains(t, body["error"], "larger than 1200 bytes")
	// The largest payload the API announces is accepted, if the cache can
	// hold its chunks: a cache of 2 messages cannot.
	r, body = post(t, srv.URL, "big", strings.Repeat("x", nd.MaxPayload()))
	require.Equal(t, http.StatusRequestEntityTooLarge, r.StatusCode)
	require.Contains(t, body["error"], "too large")
	r, _ = post(t, srv.URL, "small", strings.Repeat("x", 400))
	require.Equal(t, http.StatusAccepted, r.StatusCode)

	r, _ = post(t, srv.URL, "a", "1")
	require.Equal(t, http.StatusAccepted, r.StatusCode)
	r, body = post(t, srv.URL, "a", "2")
	require.Equal(t, http.StatusServiceUnavailable, r.StatusCode, "cache of 2 is full")
	require.NotEmpty(t, r.Header.Get("Retry-After"))
	require.Contains(t, body["error"], "retry later")

	resp, err := http.Get(srv.URL + "/v1/messages")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	require.Equal(t, http.MethodPost, resp.Header.Get("Allow"))
	resp, err = http.Get(srv.URL + "/v1/nothing")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, err = http.Get(srv.URL + "/v1/messages/stream?topic=a.>.b")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// Every refusal is counted by reason.
	resp, err = http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(text), `hearsay_messages_refused_total{reason="invalid_topic"} 2`)
	require.Contains(t, string(text), `hearsay_messages_refused_total{reason="too_large"} 2`)
	require.Contains(t, string(text), `hearsay_messages_refused_total{reason="backpressure"} 1`)
	require.Contains(t, string(text), `hearsay_messages_published_total 2`)
	require.Contains(t, string(text), `hearsay_round_duration_seconds_bucket`)
	require.Contains(t, string(text), `hearsay_peers_suspect 0`)
	require.Contains(t, string(text), `hearsay_pull_acks_total`)
}

func TestAPIStatusPeersHealth(t *testing.T) {
	cluster := startCluster(t, 3, nil)
	srv := apiServer(t, cluster[0], APIConfig{})
	_, _ = post(t, srv.URL, "s", "x")

	resp, err := http.Get(srv.URL + "/v1/status")
	require.NoError(t, err)
	var st map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	resp.Body.Close()
	for _, k := range []string{"name", "id", "gossip_addr", "peers", "messages_delivered", "cache_messages"} {
		require.Contains(t, st, k)
	}
	require.Equal(t, "n0", st["name"])
	require.Equal(t, cluster[0].ID().String(), st["id"])
	pub, err := base64.StdEncoding.DecodeString(st["public_key"].(string))
	require.NoError(t, err)
	require.Len(t, pub, ed25519.PublicKeySize)
	sum := sha256.Sum256(pub)
	require.Equal(t, hex.EncodeToString(sum[:16]), st["id"], "the ID is the first 16 bytes of the key's SHA-256")
	require.Equal(t, float64(2), st["peers"])
	require.Equal(t, float64(1), st["messages_delivered"])
	require.Equal(t, cluster[0].Addr().String(), st["gossip_addr"])

	resp, err = http.Get(srv.URL + "/v1/peers")
	require.NoError(t, err)
	var peers PeersInfo
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&peers))
	resp.Body.Close()
	require.Equal(t, RegistryCustom, peers.Registry, "the test's own registry")
	require.ElementsMatch(t, []string{cluster[1].Addr().String(), cluster[2].Addr().String()}, peers.Peers)
	require.Empty(t, peers.Suspects)

	resp, err = http.Get(srv.URL + "/healthz")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "ok\n", string(body))
}

func TestAPIKeepAlive(t *testing.T) {
	nd := startCluster(t, 1, nil)[0]
	srv := apiServer(t, nd, APIConfig{KeepAlive: 20 * time.Millisecond})
	_, stream := openStream(t, srv.URL, ">")
	select {
	case ev := <-stream:
		require.True(t, ev.comment, "a keep-alive comment comes first")
	case <-time.After(10 * time.Second):
		t.Fatal("no keep-alive")
	}
}

// A subscriber that stops reading is cut off; the node and the other
// subscribers carry on and lose nothing.
func TestAPISlowSubscriberIsolation(t *testing.T) {
	nd := startCluster(t, 1, func(i int, c *Config) { c.SubscriberBuffer = 16 })[0]
	srv := apiServer(t, nd, APIConfig{WriteTimeout: 100 * time.Millisecond})

	// The slow client reads the headers and then nothing.
	slowResp, err := http.Get(srv.URL + "/v1/messages/stream?topic=>")
	require.NoError(t, err)
	defer slowResp.Body.Close()
	_, fast := openStream(t, srv.URL, ">")
	require.Eventually(t, func() bool { return nd.Stats().Subscribers == 2 }, 10*time.Second, time.Millisecond)

	const n = 3000
	payload := strings.Repeat("p", 1000)
	got := map[string]bool{}
	for i := 0; i < n; i++ {
		_, err := nd.Publish(context.Background(), "load", []byte(payload))
		require.NoError(t, err, "publishing never blocks or fails because of a slow subscriber")
		// Keep pace with the fast reader so only the slow one falls behind.
		for len(got) < i+1-8 {
			ev := nextMessage(t, fast)
			got[ev.id] = true
		}
	}
	for len(got) < n {
		ev := nextMessage(t, fast)
		require.Equal(t, "message", ev.event)
		got[ev.id] = true
	}
	require.Len(t, got, n)
	require.Eventually(t, func() bool { return nd.Stats().Subscribers == 1 }, 10*time.Second, 5*time.Millisecond,
		"the slow subscriber was cut off")
}

func TestMessageJSONFormat(t *testing.T) {
	m := gossip.Message{Topic: "a.b", Created: time.UnixMilli(1_700_000_000_123), Payload: []byte{0, 1, 2}}
	b, err := json.Marshal(NewMessageJSON(m))
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf(`{"id":"%s","topic":"a.b","origin":"%s","created":"2023-11-14T22:13:20.123Z","payload":"AAEC"}`,
		m.ID, m.Origin), string(b))
}

// A subscriber that disconnects and resumes with Last-Event-ID sees every
// message exactly once, including those published while it was away and
// while its replay ran.
func TestAPIResumeWithLastEventID(t *testing.T) {
	nd := startCluster(t, 1, nil)[0]
	srv := apiServer(t, nd, APIConfig{})
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			topic := "resume.a"
			if i%4 == 3 {
				topic = "other" // not matched: skipped by the replay too
			}
			_, err := nd.Publish(context.Background(), topic, []byte(fmt.Sprint(i)))
			require.NoError(t, err)
		}
	}
	publish(0, 8)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/messages/stream?topic=resume.>", nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	stream := readEvents(t, resp.Body)
	publish(8, 16)
	var got []string
	var lastID string
	for len(got) < 3 {
		ev := nextMessage(t, stream)
		var m MessageJSON
		require.NoError(t, json.Unmarshal([]byte(ev.data), &m))
		got = append(got, string(m.Payload))
		lastID = ev.id
	}
	cancel()
	resp.Body.Close()
	publish(16, 1000) // while away: 740 matching, more than a replay batch

	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/v1/messages/stream?topic=resume.>", nil)
	req.Header.Set("Last-Event-ID", lastID)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "true", resp.Header.Get("X-Hearsay-Resumed"))
	stream = readEvents(t, resp.Body)
	go publish(1000, 1100) // during the replay
	want := 0
	for i := 8; i < 1100; i++ {
		if i%4 != 3 {
			want++
		}
	}
	seen := map[string]bool{}
	for _, p := range got { // read before the disconnection: not replayed
		seen[p] = true
	}
	for len(seen) < want {
		ev := nextMessage(t, stream)
		var m MessageJSON
		require.NoError(t, json.Unmarshal([]byte(ev.data), &m))
		p := string(m.Payload)
		require.False(t, seen[p], "message %s twice", p)
		seen[p] = true
	}
	for i := 8; i < 1100; i++ {
		if i%4 != 3 {
			require.True(t, seen[fmt.Sprint(i)], "message %d missing", i)
		}
	}
	select {
	case ev := <-stream:
		require.True(t, ev.comment, "nothing more: %+v", ev)
	case <-time.After(100 * time.Millisecond):
	}

	// An unknown resume point: live from now, said in the stream.
	_, stream = openStream(t, srv.URL, "resume.>&after=00000000000000000000000000000001")
	ev := <-stream
	require.True(t, ev.comment)
	r, _ := http.Get(srv.URL + "/v1/messages/stream?after=zz")
	require.Equal(t, http.StatusBadRequest, r.StatusCode)
	r.Body.Close()
}

// nextEvent returns the next event that is not a comment, or ok false when
// the stream ended first.
func nextEvent(t *testing.T, ch <-chan sseEvent) (ev sseEvent, ok bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if ok && ev.comment {
				continue
			}
			return ev, ok
		case <-timeout:
			t.Fatal("no event within 10s")
		}
	}
}

// requireShutdownEvent checks that a stream ends with the shutdown event.
func requireShutdownEvent(t *testing.T, stream <-chan sseEvent) {
	t.Helper()
	ev, ok := nextEvent(t, stream)
	require.True(t, ok, "the stream ended without an event")
	require.Equal(t, "error", ev.event)
	require.JSONEq(t, `{"error":"node shutting down"}`, ev.data)
	_, ok = nextEvent(t, stream)
	require.False(t, ok, "the stream ends after the error event")
}

// A server from NewAPIServer ends its open streams, live or resumed, with
// the shutdown event when it shuts down, rather than waiting for their
// clients to hang up.
func TestAPIServerShutdownEndsStreams(t *testing.T) {
	nd := startCluster(t, 1, nil)[0]
	ln, err := ListenAPI("127.0.0.1:0")
	require.NoError(t, err)
	srv := NewAPIServer(NewAPI(nd, APIConfig{}), APIServerConfig{})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	base := "http://" + ln.Addr().String()
	id, err := nd.Publish(context.Background(), "a", []byte("before"))
	require.NoError(t, err)
	_, live := openStream(t, base, ">")
	resp, resumed := openStream(t, base, ">&after="+id.String())
	require.Equal(t, "true", resp.Header.Get("X-Hearsay-Resumed"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx), "open streams must not hold the shutdown up")
	requireShutdownEvent(t, live)
	requireShutdownEvent(t, resumed)
}

// Closing the node ends the streams of its API with the same event, however
// the API is served.
func TestAPINodeCloseEndsStreams(t *testing.T) {
	nd := startCluster(t, 1, nil)[0]
	srv := apiServer(t, nd, APIConfig{})
	_, stream := openStream(t, srv.URL, ">")
	require.NoError(t, nd.Close())
	requireShutdownEvent(t, stream)
}
