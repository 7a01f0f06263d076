package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/transport"
)

// validatingCluster starts n nodes on an in-memory network, every one
// validating with v.
func validatingCluster(t *testing.T, n int, v Validator) *memCluster {
	c := newMemNetwork(t, transport.NetworkConfig{})
	for i := range n {
		nd := c.newNode(i, Config{Name: fmt.Sprintf("n%d", i), Registry: c.peersBut(i, n), Validator: v})
		nd.validation.events = make(chan error, 1024)
		c.nodes = append(c.nodes, nd)
	}
	for _, nd := range c.nodes {
		require.NoError(t, nd.Start())
	}
	return c
}

// settle waits until no node has a validation queued or running: each call
// ends with an event. The outcomes reach the core at the node's next tick;
// retries wait on the virtual clock.
func (c *memCluster) settle() {
	c.t.Helper()
	for _, nd := range c.nodes {
		for nd.validation.calls.Load() > 0 {
			select {
			case <-nd.validation.events:
			case <-time.After(10 * time.Second):
				c.t.Fatal("a validation did not end within 10s")
			}
		}
	}
}

// runValidating runs d of virtual time in steps, settling validations
// after each.
func (c *memCluster) runValidating(d time.Duration) {
	for end := c.net.Now().Add(d); c.net.Now().Before(end); {
		c.run(10 * time.Millisecond)
		c.settle()
	}
}

func byTopic(ctx context.Context, m gossip.Message) (gossip.Verdict, error) {
	switch m.Topic {
	case "ok":
		return gossip.VerdictAccept, nil
	case "bad":
		return gossip.VerdictReject, nil
	case "meh":
		return gossip.VerdictIgnore, nil
	}
	return 0, errors.New("no verdict")
}

// A validator's accepted messages reach every node; a rejected or ignored
// local publish is refused with its error and never published.
func TestValidatorVerdicts(t *testing.T) {
	c := validatingCluster(t, 3, byTopic)
	boxes := c.inboxes()
	ok, err := c.nodes[0].Publish(context.Background(), "ok", []byte("1"))
	require.NoError(t, err)
	_, err = c.nodes[0].Publish(context.Background(), "bad", []byte("2"))
	require.ErrorIs(t, err, ErrRejected)
	_, err = c.nodes[0].Publish(context.Background(), "meh", []byte("3"))
	require.ErrorIs(t, err, ErrIgnored)
	_, err = c.nodes[0].Publish(context.Background(), "none", []byte("4"))
	require.ErrorIs(t, err, ErrValidatorUnavailable)
	c.runValidating(3 * time.Second)
	for i, b := range boxes {
		b.requireOnce(t, map[gossip.MessageID]bool{ok: true}, "node %d", i)
	}
	st := c.nodes[0].Stats()
	require.Equal(t, uint64(1), st.Rejected)
	require.Equal(t, uint64(1), st.Ignored)
	require.Equal(t, uint64(1), st.Gossip.Published)
}

// Messages a validator rejects or ignores, from a node that does not
// validate, are delivered by none of the validating nodes, not relayed and
// counted; the sender of rejected ones is penalised.
func TestValidatorRefusesWhatOthersPublish(t *testing.T) {
	c := newMemNetwork(t, transport.NetworkConfig{})
	for i := range 3 {
		cfg := Config{Name: fmt.Sprintf("n%d", i), Registry: c.peersBut(i, 3)}
		if i > 0 {
			cfg.Validator = byTopic
		}
		nd := c.newNode(i, cfg)
		nd.validation.events = make(chan error, 1024)
		c.nodes = append(c.nodes, nd)
	}
	for _, nd := range c.nodes {
		require.NoError(t, nd.Start())
	}
	boxes := c.inboxes()
	ok, err := c.nodes[0].Publish(context.Background(), "ok", []byte("1"))
	require.NoError(t, err)
	for i := range 10 {
		_, err = c.nodes[0].Publish(context.Background(), "bad", []byte{byte(i)})
		require.NoError(t, err)
	}
	_, err = c.nodes[0].Publish(context.Background(), "meh", []byte("3"))
	require.NoError(t, err)
	c.runValidating(5 * time.Second)
	for i := 1; i < 3; i++ {
		boxes[i].requireOnce(t, map[gossip.MessageID]bool{ok: true}, "node %d", i)
		st := c.nodes[i].Stats()
		require.Equal(t, uint64(10), st.Rejected, "node %d", i)
		require.Equal(t, uint64(1), st.Ignored, "node %d", i)
		ps := c.nodes[i].PeersInfo().Penalised
		require.Len(t, ps, 1, "node %d", i)
		require.Equal(t, memAddr(0).String(), ps[0].Addr)
		require.Equal(t, uint64(10), ps[0].Offences)
		require.NotEmpty(t, ps[0].BannedFor)
	}
}

// While the validator gives no verdict the message waits, delivered
// nowhere; when it answers again, the retry delivers it.
func TestValidatorUnreachableHoldsBack(t *testing.T) {
	var up atomic.Bool
	c := validatingCluster(t, 2, func(ctx context.Context, m gossip.Message) (gossip.Verdict, error) {
		if !up.Load() && m.ID != (gossip.MessageID{}) {
			return 0, errors.New("connection refused")
		}
		return gossip.VerdictAccept, nil
	})
	boxes := c.inboxes()
	id, err := c.nodes[0].Publish(context.Background(), "ok", []byte("1"))
	require.NoError(t, err)
	c.runValidating(10 * time.Second)
	require.Zero(t, boxes[1].distinct())
	st := c.nodes[1].Stats()
	require.Equal(t, 1, st.Trust.AwaitingNow)
	require.Greater(t, st.ValidatorErrors, uint64(3), "asked again, backing off")
	up.Store(true)
	c.runValidating(10 * time.Second)
	boxes[1].requireOnce(t, map[gossip.MessageID]bool{id: true})
	require.Zero(t, c.nodes[1].Stats().Trust.AwaitingNow)
}

// HTTPValidator reads the verdict from the status, and takes any other
// status, or a timeout, as no verdict.
func TestHTTPValidator(t *testing.T) {
	var got MessageJSON
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, http.MethodPost, r.Method)
		require.Equal(t, "application/json", r.Header.Get("Content-Type"))
		require.NoError(t, json.NewDecoder(r.Body).Decode(&got))
		switch got.Topic {
		case "ok":
			w.WriteHeader(http.StatusNoContent)
		case "bad":
			w.WriteHeader(http.StatusUnprocessableEntity)
		case "meh":
			w.WriteHeader(http.StatusConflict)
		case "slow":
			<-r.Context().Done()
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	v := HTTPValidator(srv.URL, srv.Client())
	m := gossip.Message{ID: gossip.MessageID{1}, Origin: gossip.NodeID{2}, Created: time.UnixMilli(1_700_000_000_123), Payload: []byte("hi")}
	for topic, want := range map[string]gossip.Verdict{"ok": gossip.VerdictAccept, "bad": gossip.VerdictReject, "meh": gossip.VerdictIgnore} {
		m.Topic = topic
		verdict, err := v(context.Background(), m)
		require.NoError(t, err, topic)
		require.Equal(t, want, verdict, topic)
	}
	require.Equal(t, NewMessageJSON(m), got, "the JSON of an SSE event's data")
	m.Topic = "other"
	_, err := v(context.Background(), m)
	require.ErrorContains(t, err, "500")
	m.Topic = "slow"
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = v(ctx, m)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	_, err = HTTPValidator("http://127.0.0.1:1/none", nil)(context.Background(), m)
	require.Error(t, err, "unreachable")
}

// BenchmarkHTTPValidator: validator calls through HTTPValidator to a
// validator on 127.0.0.1 that accepts everything, 16 at once (the
// default ValidateConcurrency on 2 cores: parallelism 8); ns/op is the
// wall time per call over all of them.
func BenchmarkHTTPValidator(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	v := HTTPValidator(srv.URL, client)
	m := gossip.Message{ID: gossip.MessageID{1}, Origin: gossip.NodeID{2}, Created: time.UnixMilli(1_700_000_000_123),
		Topic: "bench", Payload: make([]byte, 256)}
	b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if verdict, err := v(context.Background(), m); err != nil || verdict != gossip.VerdictAccept {
				b.Error(verdict, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "validations/s")
}
