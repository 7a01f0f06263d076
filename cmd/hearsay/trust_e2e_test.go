package main

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/client"
)

// Three signing agents, two of them validating through a validator on
// 127.0.0.1 that accepts topics trust.ok.*, rejects trust.bad.* and
// ignores the rest: a rejected publish gets 422, an ignored one 409; the
// validating agents deliver only what it accepts, count the others, and
// penalise the agent that published them; every agent signs.
func TestE2ESignAndValidate(t *testing.T) {
	t.Parallel()
	hearsayBinary(t)
	var calls atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var m struct{ Topic string }
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		switch {
		case strings.HasPrefix(m.Topic, "trust.ok."):
			w.WriteHeader(http.StatusOK)
		case strings.HasPrefix(m.Topic, "trust.bad."):
			w.WriteHeader(http.StatusUnprocessableEntity)
		default:
			w.WriteHeader(http.StatusConflict)
		}
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	validateURL := "http://" + ln.Addr().String() + "/validate"

	c := newCluster(t, 3)
	flags := append(c.peersFlag(), "--interval", "20ms", "--sign")
	plain := c.start(t, 0, "plain", flags...)
	var validating []*agentProcess
	for i := 1; i < 3; i++ {
		validating = append(validating, c.start(t, i, "validating", append(flags, "--validate-url", validateURL)...))
	}
	var streams []*testStream
	for _, a := range validating {
		streams = append(streams, openStream(t, a.name, a.api, "trust.>"))
	}

	agent, err := client.New(validating[0].api)
	require.NoError(t, err)
	var apiErr *client.APIError
	_, err = agent.Publish(t.Context(), "trust.bad.local", []byte("x"))
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusUnprocessableEntity, apiErr.StatusCode)
	_, err = agent.Publish(t.Context(), "trust.meh.local", []byte("x"))
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusConflict, apiErr.StatusCode)

	ok := publishMessages(t, plain.api, "trust.ok.a", 20)
	publishMessages(t, plain.api, "trust.bad.a", 10)
	publishMessages(t, plain.api, "trust.meh.a", 5)
	for i, s := range streams {
		s.waitFor(t, ok, 20*time.Second)
		a := validating[i]
		require.Eventually(t, func() bool {
			return metric(t, a.api, "hearsay_messages_rejected_total") >= 10 && metric(t, a.api, "hearsay_messages_ignored_total") >= 5
		}, 20*time.Second, 20*time.Millisecond, a.name)
		a.settle(t, s, 5)
		s.assertExactly(t, ok)
		require.Positive(t, metric(t, a.api, "hearsay_messages_verified_total"), "signatures verified")
	}
	require.Positive(t, metric(t, plain.api, `hearsay_statements_total{direction="out"}`))
	require.GreaterOrEqual(t, calls.Load(), int64(2+2*35))
}
