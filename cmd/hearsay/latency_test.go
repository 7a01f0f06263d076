package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/client"
)

// TestLatencyTenAgents measures, without asserting anything about it, how
// long a message takes from a publish on agent 1 to its receipt on agent 10's
// event stream, with ten agents at the default round of 200ms. It takes
// about 25 s and runs only when asked:
//
//	HEARSAY_LATENCY=1 go test -run TestLatencyTenAgents -v ./cmd/hearsay
func TestLatencyTenAgents(t *testing.T) {
	if os.Getenv("HEARSAY_LATENCY") == "" || testing.Short() {
		t.Skip("a measurement, not a test: run with HEARSAY_LATENCY=1 go test -run TestLatencyTenAgents -v ./cmd/hearsay")
	}
	const (
		agents   = 10
		messages = 1000
		perSec   = 50
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var gossip, api []string
	for range agents {
		gossip = append(gossip, freeUDPAddr(t))
		api = append(api, freeTCPAddr(t))
	}
	peers := strings.Join(gossip, ",")
	for i := range agents {
		startAgent(t, fmt.Sprintf("agent-%d", i+1), gossip[i], api[i], t.TempDir(), "--peers", peers)
	}
	stream := openStream(t, "agent-10", api[agents-1], "latency.>")

	agent, err := client.New(api[0], client.WithPublishRetries(pushRetries))
	require.NoError(t, err)
	published := make(map[string]time.Time, messages)
	var ids []string
	ticker := time.NewTicker(time.Second / perSec)
	defer ticker.Stop()
	for i := range messages {
		select {
		case <-ticker.C:
		case <-ctx.Done():
			t.Fatalf("published only %d messages in time", i)
		}
		start := time.Now()
		id, err := agent.Publish(ctx, "latency.test", fmt.Appendf(nil, "message %d", i))
		require.NoError(t, err)
		published[id] = start
		ids = append(ids, id)
	}
	stream.waitFor(t, ids, 30*time.Second)

	stream.mu.Lock()
	latencies := make([]time.Duration, 0, len(ids))
	for _, id := range ids {
		latencies = append(latencies, stream.times[id].Sub(published[id]))
	}
	stream.mu.Unlock()
	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		return latencies[int(p*float64(len(latencies)-1))].Round(time.Millisecond)
	}
	t.Logf("%d agents, round 200ms, fanout 3: %d messages at %d/s from agent 1, received on agent 10: p50 %s, p90 %s, p99 %s, max %s",
		agents, len(latencies), perSec, pct(0.50), pct(0.90), pct(0.99), pct(1))
}
