package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tiny is the workload of the tests: 4 hosts, 20 messages.
func tiny() Config {
	return Config{Nodes: 4, Messages: 20, Rate: 200, Timeout: 30 * time.Second}
}

func TestRunDeliversEverythingWithSaneFigures(t *testing.T) {
	cfg := tiny().WithDefaults()
	res, err := Run(context.Background(), cfg, nil)
	require.NoError(t, err)

	require.True(t, res.Complete(), "delivered %d of %d", res.Deliveries, res.Expected())
	assert.Equal(t, cfg.Messages, res.Published)
	assert.Equal(t, 3*cfg.Messages, res.LatencySamples, "every host but the origin, every message")
	assert.Positive(t, res.LatencyP50)
	assert.LessOrEqual(t, res.LatencyP50, res.LatencyP99)
	assert.LessOrEqual(t, res.LatencyP99, res.LatencyMax)
	assert.LessOrEqual(t, res.LatencyMax, res.TimeToFull)
	assert.LessOrEqual(t, res.TimeToFull, res.Window)

	// Every host but the origin received each payload at least once, and
	// nothing on the way compresses it.
	assert.GreaterOrEqual(t, res.BytesOut, uint64(3*cfg.Messages*cfg.Size))
	assert.Greater(t, res.OverheadRatio(), 0.75)
	if res.SegmentsKnown {
		assert.Positive(t, res.Segments)
		perSegment := res.HeaderBytes / res.Segments
		assert.Contains(t, []uint64{40, 52}, perSegment, "IPv4 and TCP headers, with or without timestamps")
		assert.Zero(t, res.HeaderBytes%res.Segments)
	}
	// A host gets at most one copy from each of its 3 neighbours: gossip
	// retransmits only what was lost, and nothing is on loopback.
	assert.LessOrEqual(t, res.Duplicates, uint64(2*res.Deliveries))
	assert.Empty(t, res.Drops)
	if res.CPUKnown {
		assert.Positive(t, res.CPU)
	}
}

// hearsayResultFields are the fields of internal/bench's jsonResult, which
// `hearsay bench` reads back from this program.
var hearsayResultFields = []string{
	"system", "published", "publish_rate", "backpressure_waits", "deliveries", "expected",
	"delivered_fraction", "time_to_full_ms", "latency_p50_ms", "latency_p99_ms", "latency_max_ms",
	"latency_samples", "bytes_out", "overhead_ratio", "duplicates", "duplicate_ratio", "drops",
	"cpu_ms", "cpu_us_per_delivery", "window_ms",
}

func TestCommandPrintsHearsayBenchJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"--nodes", "4", "--messages", "20", "--rate", "0", "--json"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())

	var out struct {
		Config  map[string]any   `json:"config"`
		Results []map[string]any `json:"results"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &out), stdout.String())
	assert.Equal(t, []any{"gossipsub"}, out.Config["systems"])
	assert.EqualValues(t, 4, out.Config["nodes"])
	assert.EqualValues(t, 0, out.Config["rate"], "as fast as possible, as hearsay bench writes it")
	require.Len(t, out.Results, 1)
	res := out.Results[0]
	for _, field := range hearsayResultFields {
		assert.Contains(t, res, field)
	}
	assert.Equal(t, "gossipsub", res["system"])
	assert.EqualValues(t, 1, res["delivered_fraction"])
	assert.EqualValues(t, 80, res["deliveries"])
	assert.NotNil(t, res["time_to_full_ms"])
	assert.Contains(t, stderr.String(), "every host holds every message")
}

func TestCommandRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--nodes", "1"},
		{"--size", "8"},
		{"--rate", "-5"},
		{"--origins", "5", "--nodes", "4"},
		{"--peers", "4", "--nodes", "4"},
		{"--messages", "1000", "--rate", "10", "--timeout", "5s"},
		{"--no-such-flag"},
		{"extra"},
	} {
		var stdout, stderr bytes.Buffer
		assert.Equal(t, 2, run(args, &stdout, &stderr), "%v", args)
		assert.Empty(t, stdout.String(), "%v", args)
		assert.NotEmpty(t, stderr.String(), "%v", args)
	}
}

func TestNeighboursConnectEachPairOnce(t *testing.T) {
	degrees := func(cfg Config) []int {
		d := make([]int, cfg.Nodes)
		seen := map[[2]int]bool{}
		for i, js := range cfg.neighbours() {
			for _, j := range js {
				require.NotEqual(t, i, j)
				pair := [2]int{min(i, j), max(i, j)}
				require.False(t, seen[pair], "pair %v dialed twice", pair)
				seen[pair] = true
				d[i]++
				d[j]++
			}
		}
		return d
	}
	assert.Equal(t, []int{4, 4, 4, 4, 4}, degrees(Config{Nodes: 5}), "all")
	assert.Equal(t, []int{4, 4, 4, 4, 4}, degrees(Config{Nodes: 5, Peers: 3}), "wrapping onto every other host")
	assert.Equal(t, []int{4, 4, 4, 4, 4, 4, 4, 4, 4, 4}, degrees(Config{Nodes: 10, Peers: 2}))
	assert.Equal(t, []int{2, 2, 2}, degrees(Config{Nodes: 3, Peers: 1}))
}
