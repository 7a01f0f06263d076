package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gossipSubProgram returns the built gossipsub program, from the
// repository's dist/ or PATH, or skips the test.
func gossipSubProgram(t *testing.T) string {
	t.Helper()
	if p, err := filepath.Abs(filepath.Join("..", "..", "dist", GossipSubProgram)); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath(GossipSubProgram); err == nil {
		return p
	}
	t.Skipf("%s is not built: run `%s` at the repository's root to run this test", GossipSubProgram, GossipSubBuild)
	return ""
}

func TestBenchRunsGossipSubProgram(t *testing.T) {
	cfg := smallConfig()
	cfg.Systems = []System{Hearsay, GossipSub}
	cfg.GossipSubCommand = []string{gossipSubProgram(t)}
	var progress strings.Builder
	cfg.Progress = &progress
	rep, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	require.Len(t, rep.Results, 2)
	res := rep.Results[1]
	assert.Equal(t, GossipSub, res.System)
	assert.True(t, res.Complete(), "%d of %d delivered", res.Deliveries, res.Expected())
	assert.Equal(t, 50, res.Published)
	assert.Equal(t, 4*50-50, res.LatencySamples)
	assert.Positive(t, res.LatencyP50)
	assert.LessOrEqual(t, res.LatencyP50, res.LatencyP99)
	assert.LessOrEqual(t, res.LatencyP99, res.LatencyMax)
	assert.Positive(t, res.TimeToFull)
	assert.Greater(t, res.OverheadRatio(), 0.75, "3 of 4 nodes receive every payload over TCP")
	_, ok := res.PublishRate()
	assert.True(t, ok)
	assert.Contains(t, progress.String(), "gossipsub: every host holds every message")

	var table strings.Builder
	require.NoError(t, rep.WriteTable(&table))
	assert.Contains(t, table.String(), "gossipsub")
}

// A shell script stands in for the program: what is passed to it, what is
// read back, and how its failures are reported.
func TestBenchReadsGossipSubReport(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh to stand in for the gossipsub program")
	}
	dir := t.TempDir()
	argsFile := filepath.Join(dir, "args")
	report := `{"config": {"nodes": 4, "messages": 50, "size": 64, "rate": 100},
	 "results": [{"system": "gossipsub", "published": 50, "publish_rate": 100, "backpressure_waits": 0,
	  "deliveries": 200, "expected": 200, "delivered_fraction": 1, "time_to_full_ms": 500.5,
	  "latency_p50_ms": 1.5, "latency_p99_ms": 7, "latency_max_ms": 9, "latency_samples": 150,
	  "bytes_out": 40000, "overhead_ratio": 3.1, "duplicates": 250, "duplicate_ratio": 1.25,
	  "drops": {"rpc_queue_full": 2}, "cpu_ms": 85, "cpu_us_per_delivery": 425, "window_ms": 501,
	  "publish_time_ms": 490, "bytes_out_with_headers": 45200}]}`
	script := func(body string) []string {
		return []string{"sh", "-c", `echo "$@" > "` + argsFile + `"; ` + body, "gossipsub"}
	}
	cfg := smallConfig().WithDefaults()
	cfg.Systems = []System{GossipSub}
	cfg.GossipSubCommand = script("echo progress >&2; cat <<'EOF'\n" + report + "\nEOF")
	var progress strings.Builder
	cfg.Progress = &progress
	rep, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	args, err := os.ReadFile(argsFile)
	require.NoError(t, err)
	assert.Equal(t, "--nodes 4 --messages 50 --size 64 --rate 100 --origins 1 --timeout 20s --json\n", string(args))
	assert.Contains(t, progress.String(), "progress\n")

	require.Len(t, rep.Results, 1)
	res := rep.Results[0]
	assert.Equal(t, Result{
		System: GossipSub, Nodes: 4, Messages: 50, Size: 64,
		Published: 50, PublishTime: 490 * time.Millisecond, Deliveries: 200,
		TimeToFull: 500500 * time.Microsecond, LatencyP50: 1500 * time.Microsecond,
		LatencyP99: 7 * time.Millisecond, LatencyMax: 9 * time.Millisecond, LatencySamples: 150,
		BytesOut: 40000, HeaderBytes: 5200, HeadersKnown: true, Duplicates: 250, Drops: map[string]uint64{"rpc_queue_full": 2},
		CPU: 85 * time.Millisecond, CPUKnown: true, Window: 501 * time.Millisecond,
	}, res)

	for _, tc := range []struct{ body, want string }{
		{"echo boom >&2; exit 3", "exit status 3: boom"},
		{"echo 'not json'", "reading its report"},
		{`echo '{"config": {"nodes": 4, "messages": 50, "size": 64}, "results": []}'`, "no single gossipsub result"},
		{`echo '{"config": {"nodes": 5, "messages": 50, "size": 64}, "results": [{"system": "gossipsub"}]}'`, "it ran 5 nodes"},
		{`echo '{"config": {"nodes": 4, "messages": 50, "size": 64}, "results": [{"system": "gossipsub", "deliveries": 201}]}'`, "more than the workload holds"},
		{`echo '{"config": {"nodes": 4, "messages": 50, "size": 64}, "results": [{"system": "gossipsub", "latency_samples": 3}]}'`, "no latencies"},
		{`echo '{"config": {"nodes": 4, "messages": 50, "size": 64}, "results": [{"system": "gossipsub", "bytes_out": 9, "bytes_out_with_headers": 8}]}'`, "fewer bytes with headers"},
	} {
		cfg.GossipSubCommand = script(tc.body)
		_, err := Run(context.Background(), cfg)
		assert.ErrorContains(t, err, tc.want, tc.body)
		assert.ErrorContains(t, err, "bench: gossipsub: sh", tc.body)
	}
}

func TestFindGossipSub(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("PATH", "")
	_, err := FindGossipSub("")
	require.ErrorIs(t, err, ErrNoGossipSub)
	assert.ErrorContains(t, err, GossipSubBuild, "the error says how to build it")

	_, err = FindGossipSub("no-such-program")
	assert.ErrorContains(t, err, "no-such-program")

	require.NoError(t, os.Mkdir("dist", 0o755))
	require.NoError(t, os.WriteFile(filepath.Join("dist", GossipSubProgram), []byte("#!/bin/sh\n"), 0o755))
	p, err := FindGossipSub("")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join("dist", GossipSubProgram), p)
	p, err = FindGossipSub("dist/" + GossipSubProgram)
	require.NoError(t, err)
	assert.Equal(t, "dist/"+GossipSubProgram, p)
}

func TestValidateGossipSubNeedsItsProgram(t *testing.T) {
	cfg := Config{Systems: []System{Hearsay, GossipSub}}.WithDefaults()
	err := cfg.Validate()
	require.ErrorIs(t, err, ErrConfig)
	assert.ErrorContains(t, err, GossipSubBuild)
	cfg.GossipSubCommand = []string{"/bin/true"}
	assert.NoError(t, cfg.Validate())
}
