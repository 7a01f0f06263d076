package bench

import (
	"context"
	crand "crypto/rand"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/security"
)

// TestIdleTraffic measures, without asserting anything about it, what a
// quiet cluster sends: 20 encrypted hearsay nodes as the benchmark runs
// them, with long-poll off and on, over 10 s in which nothing is
// published, first in a fresh cluster, then after 100 messages (once their
// subscriptions have formed). Bytes count IP and UDP headers. It takes
// about 90 s and runs only when asked:
//
//	HEARSAY_IDLE=1 go test -run TestIdleTraffic -v ./internal/bench
func TestIdleTraffic(t *testing.T) {
	if os.Getenv("HEARSAY_IDLE") == "" || testing.Short() {
		t.Skip("a measurement, not a test: run with HEARSAY_IDLE=1 go test -run TestIdleTraffic -v ./internal/bench")
	}
	const (
		nodes    = 20
		messages = 100
		window   = 10 * time.Second
	)
	key := new(security.Key)
	_, err := crand.Read(key[:])
	require.NoError(t, err)
	for _, longPoll := range []time.Duration{-1, DefaultLongPoll} {
		cfg := Config{Nodes: nodes, Messages: messages, LongPoll: longPoll}.WithDefaults()
		rec := newRecorder(nodes, messages)
		var ns []*hearsayNode
		var addrs []string
		for i := range nodes {
			n, err := newHearsayNode(cfg, key, i, rec)
			require.NoError(t, err)
			t.Cleanup(func() { _ = n.close() })
			ns = append(ns, n)
			addrs = append(addrs, n.addr())
		}
		for _, n := range ns {
			require.NoError(t, n.connect(addrs))
		}
		wire := func() uint64 {
			var sum uint64
			for _, n := range ns {
				c := n.counters()
				sum += c.bytesOut + c.headerBytes
			}
			return sum
		}
		measure := func(phase string) {
			before := wire()
			time.Sleep(window) // idle is what happens over time
			perNode := float64(wire()-before) / nodes / window.Seconds()
			t.Logf("long-poll %v, %s: %.0f bytes/s per node on the wire", max(longPoll, 0), phase, perNode)
		}
		time.Sleep(2 * time.Second) // past the first rounds' random phases
		measure("fresh cluster")
		for i := range messages {
			require.NoError(t, ns[0].publish(context.Background(), newPayload(i, rec.now(), DefaultSize)))
			time.Sleep(10 * time.Millisecond) // 100 messages/s
		}
		select {
		case <-rec.complete:
		case <-time.After(30 * time.Second):
			t.Fatal("the messages did not reach every node within 30 s")
		}
		measure("after 100 messages")
		for _, n := range ns {
			require.NoError(t, n.close())
		}
	}
}
