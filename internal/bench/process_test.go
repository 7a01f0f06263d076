package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nodeProcessEnv makes the test binary a node process instead of running
// the tests: "serve" serves ServeNode; "crash N" serves, but node N exits
// with status 3 at once; "die N" serves, but node N exits with status 4
// on its first publish command; "garbage N" serves, but node N writes a
// malformed report first.
const nodeProcessEnv = "HEARSAY_BENCH_TEST_NODE_PROCESS"

func TestMain(m *testing.M) {
	if mode := os.Getenv(nodeProcessEnv); mode != "" {
		os.Exit(testNodeProcess(mode))
	}
	os.Exit(m.Run())
}

// testNodeProcess is main of a node process run by the tests.
func testNodeProcess(mode string) int {
	var misbehave string
	victim := -1
	if mode != "serve" {
		if _, err := fmt.Sscanf(mode, "%s %d", &misbehave, &victim); err != nil {
			fmt.Fprintf(os.Stderr, "bad %s %q\n", nodeProcessEnv, mode)
			return 2
		}
	}
	in := bufio.NewReader(os.Stdin)
	first, err := in.ReadBytes('\n')
	if err != nil {
		return 0
	}
	var spec nodeSpec
	if c, err := parseCommand(bytes.TrimSuffix(first, []byte("\n"))); err == nil {
		spec = c.spec
	}
	rest := io.Reader(in)
	if spec.Index == victim {
		switch misbehave {
		case "crash":
			fmt.Fprintln(os.Stderr, "boom: node process crashed on purpose")
			return 3
		case "die":
			rest = dieOnPublish{in}
		case "garbage":
			fmt.Fprintln(os.Stdout, "hello, parent")
		}
	}
	if err := ServeNode(context.Background(), io.MultiReader(bytes.NewReader(first), rest), os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "hearsay: %v\n", err)
		return 1
	}
	return 0
}

// dieOnPublish ends the process when a publish command comes.
type dieOnPublish struct{ r io.Reader }

func (d dieOnPublish) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if bytes.Contains(p[:n], []byte("publish ")) {
		fmt.Fprintln(os.Stderr, "boom: died while publishing")
		os.Exit(4)
	}
	return n, err
}

// processConfig is a small run with a node process per node, the test
// binary serving as the node program in mode.
func processConfig(t *testing.T, mode string, systems ...System) Config {
	t.Setenv(nodeProcessEnv, mode) // the node processes inherit it
	// A race-enabled program sleeps a second when it exits, by default, in
	// case another goroutine has a race to report: not the node processes.
	t.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	exe, err := os.Executable()
	require.NoError(t, err)
	return Config{Nodes: 4, Messages: 50, Size: 64, Rate: 500, Interval: 50 * time.Millisecond,
		Timeout: 20 * time.Second, Systems: systems, Processes: true, NodeCommand: []string{exe}}
}

// assertNoChildren checks that no process started by this one is left.
func assertNoChildren(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		return
	}
	tasks, err := filepath.Glob("/proc/self/task/*/children")
	require.NoError(t, err)
	for _, f := range tasks {
		children, err := os.ReadFile(f)
		if err == nil {
			assert.Empty(t, strings.TrimSpace(string(children)), "child processes left: %s", f)
		}
	}
}

func TestBenchProcessesHearsay(t *testing.T) {
	rep, err := Run(context.Background(), processConfig(t, "serve", Hearsay))
	assertNoChildren(t)
	require.NoError(t, err)
	res := rep.Results[0]
	assert.Equal(t, 50, res.Published)
	assert.True(t, res.Complete(), "%d of %d delivered", res.Deliveries, res.Expected())
	assert.Equal(t, 4*50-50, res.LatencySamples)
	assert.Greater(t, res.LatencyP50, time.Duration(0))
	assert.LessOrEqual(t, res.LatencyP50, res.LatencyP99)
	assert.LessOrEqual(t, res.LatencyP99, res.LatencyMax)
	assert.Greater(t, res.TimeToFull, time.Duration(0))
	assert.Greater(t, res.BytesOut, uint64(0))
	assert.True(t, res.HeadersKnown, "the node processes report their datagrams' headers")
	assert.Greater(t, res.HeaderBytes, uint64(0))
	assert.True(t, res.CPUKnown, "the node processes report their CPU")
	assert.Greater(t, res.CPU, time.Duration(0))

	var table bytes.Buffer
	require.NoError(t, rep.WriteTable(&table))
	t.Log("\n" + table.String())
	assert.True(t, strings.HasPrefix(table.String(), "4 nodes, 50 messages of 64 bytes at 500/s from 1 origin(s), interval 50ms, fanout 3, long-poll 1s, encrypted, processes\n"), table.String())
	var js bytes.Buffer
	require.NoError(t, rep.WriteJSON(&js))
	var decoded jsonReport
	require.NoError(t, json.Unmarshal(js.Bytes(), &decoded))
	assert.Equal(t, "processes", decoded.Config.Mode)
	assert.Equal(t, 4*50-50, decoded.Results[0].LatencySamples)
}

// Memberlist may miss a delivery or two (see runSmall), and two origins
// take turns: what is checked is that node processes of memberlist are
// joined, publish and forward.
func TestBenchProcessesMemberlistTwoOrigins(t *testing.T) {
	cfg := processConfig(t, "serve", Memberlist)
	cfg.Origins, cfg.Timeout = 2, 5*time.Second
	rep, err := Run(context.Background(), cfg)
	assertNoChildren(t)
	require.NoError(t, err)
	res := rep.Results[0]
	assert.Equal(t, 50, res.Published)
	assert.Greater(t, res.Deliveries, int64(2*cfg.Messages), "%d of %d delivered", res.Deliveries, res.Expected())
	assert.Positive(t, res.LatencySamples)
	assert.Greater(t, res.BytesOut, uint64(0))
	assert.True(t, res.CPUKnown)
}

func TestBenchProcessesNodeCrashes(t *testing.T) {
	_, err := Run(context.Background(), processConfig(t, "crash 2", Hearsay))
	assertNoChildren(t)
	require.Error(t, err)
	assert.Regexp(t, `^bench: hearsay node 2 \(pid \d+\) exited: exit status 3: boom: node process crashed on purpose$`, err.Error())
}

// A node process dying in the middle of the run ends it (Timeout is an
// hour here) with an error naming the node.
func TestBenchProcessesNodeDiesWhilePublishing(t *testing.T) {
	for _, system := range Systems {
		t.Run(string(system), func(t *testing.T) {
			cfg := processConfig(t, "die 0", system)
			cfg.Timeout = time.Hour
			_, err := Run(context.Background(), cfg)
			assertNoChildren(t)
			require.Error(t, err)
			assert.Regexp(t, `^bench: `+string(system)+` node 0 \(pid \d+\) exited: exit status 4: boom: died while publishing$`, err.Error())
		})
	}
}

func TestBenchProcessesBadReport(t *testing.T) {
	_, err := Run(context.Background(), processConfig(t, "garbage 1", Memberlist))
	assertNoChildren(t)
	require.Error(t, err)
	assert.Regexp(t, `^bench: memberlist node 1 \(pid \d+\) sent a bad report: .*unknown report "hello, parent"$`, err.Error())
}

func TestBenchProcessesNoProgram(t *testing.T) {
	cfg := processConfig(t, "serve", Hearsay)
	cfg.NodeCommand = []string{filepath.Join(t.TempDir(), "no-such-program")}
	_, err := Run(context.Background(), cfg)
	assertNoChildren(t)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bench: hearsay node 0: starting ")
	assert.Contains(t, err.Error(), "no-such-program")

	cfg.NodeCommand = nil
	_, err = Run(context.Background(), cfg)
	require.ErrorIs(t, err, ErrConfig)
	assert.Contains(t, err.Error(), "Processes needs a NodeCommand")
}

// Cancelling the run stops the node processes too.
func TestBenchProcessesCancelled(t *testing.T) {
	cfg := processConfig(t, "serve", Hearsay)
	cfg.Messages, cfg.Rate, cfg.Timeout = 1000, 10, time.Hour // would publish for 100 s
	ctx, cancel := context.WithCancel(context.Background())
	var progress syncBuffer
	cfg.Progress = &progress
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, cfg)
		done <- err
	}()
	require.Eventually(t, func() bool { return strings.Contains(progress.String(), "publishing") }, time.Minute, 10*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(2 * shutdownGrace):
		t.Fatal("the run did not stop once cancelled")
	}
	assertNoChildren(t)
}
