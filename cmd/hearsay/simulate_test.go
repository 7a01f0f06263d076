package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/simulations"
)

// runSimulateCLI runs "hearsay simulate args..." in a small app holding
// only the simulate command, as main's app sets commands up. Neither has
// the help and version flags, urfave/cli's globals that two apps parsing
// at once would race on: simulations can run in parallel.
func runSimulateCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := simulateCommand()
	cmd.OnUsageError = onUsageError
	cmd.HideHelp = true
	app := &cli.App{
		Name:           "hearsay",
		Writer:         &out,
		ErrWriter:      &errOut,
		Commands:       []*cli.Command{cmd},
		ExitErrHandler: func(*cli.Context, error) {},
		HideHelp:       true,
		HideVersion:    true,
	}
	err = app.Run(append([]string{"hearsay", "simulate"}, args...))
	return out.String(), errOut.String(), err
}

func TestSimulateFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nodes", "1"}, "--nodes: must be between 2 and"},
		{[]string{"--nodes", "many"}, "--nodes: want a whole number"},
		{[]string{"--fanout", "0"}, "--fanout: must be between 1 and 64"},
		{[]string{"--interval", "2ms"}, "--interval: must be at least 3ms"},
		{[]string{"--loss", "1.5"}, "--loss: want a fraction from 0 to 1"},
		{[]string{"--loss", "lots"}, "--loss: want a fraction such as 0.2 or 20%"},
		{[]string{"--latency", "uniform:5ms"}, "--latency: want uniform:MIN-MAX"},
		{[]string{"--latency", "uniform:5ms-1ms"}, "--latency: uniform latency maximum 1ms is below its minimum 5ms"},
		{[]string{"--latency", "gamma:1ms"}, `--latency: unknown latency model "gamma"`},
		{[]string{"--latency", "fast"}, "--latency: want a duration"},
		{[]string{"--partition", "at=5s,heal=1s"}, "--partition: heal=1s is not after at=5s"},
		{[]string{"--partition", "at=5s,when=1s"}, `--partition: unknown key "when" (want at, heal, split)`},
		{[]string{"--partition", "split=1.5"}, "--partition: split: want a fraction from 0 to 1"},
		{[]string{"--partition", "10s-70s"}, "--partition: want KEY=VALUE"},
		{[]string{"--churn", "crash=10%"}, `--churn: crash: want FRACTION@TIME such as 10%@5s, got "10%"`},
		{[]string{"--churn", "restart=stateless@5s"}, "--churn: restart needs a crash=FRACTION@TIME"},
		{[]string{"--churn", "crash=10%@5s,restart=forgetful@9s"}, `--churn: restart: restart must be stateless or stateful, got "forgetful"`},
		{[]string{"--churn", "crash=10%@5s,restart=stateful@1s"}, "--churn: restart@1s is not after crash@5s"},
		{[]string{"--peers", "dht:bootstrap=0"}, "--peers: bootstrap: want a whole number from 1 to 64"},
		{[]string{"--peers", "dht:bootstrap=2000"}, "--peers: bootstrap: want a whole number from 1 to 64"},
		{[]string{"--peers", "dht:bootstrap=20", "--nodes", "10"}, "--peers: bootstrap=20 is more than the 10 nodes"},
		{[]string{"--peers", "dht:pool=lots"}, "--peers: pool: want a whole number from 1 to 10000"},
		{[]string{"--peers", "dht:alpha=3"}, `--peers: unknown key "alpha" (want bootstrap, warmup, spread, pool, ping, k)`},
		{[]string{"--peers", "dht:"}, "--peers: want dht or dht:KEY=VALUE"},
		{[]string{"--peers", "graph:0"}, "--peers: want graph:DEGREE"},
		{[]string{"--peers", "mesh"}, `--peers: unknown peer model "mesh"`},
		{[]string{"--skew", "-1s"}, "--skew: must not be negative"},
		{[]string{"--messages", "0"}, "--messages: must be between 1 and 1000"},
		{[]string{"--seed", "-1"}, "--seed: want a whole number"},
		{[]string{"--duration", "soon"}, "--duration: want a duration"},
		{[]string{"--out", " "}, "--out: needs a directory"},
		{[]string{"--nodse", "10"}, "unknown flag --nodse"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, _, err := runSimulateCLI(t, tc.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "\n", "one line")
			var usage usageError
			assert.True(t, errors.As(err, &usage), "a usage error (exit status 2): %v", err)
		})
	}
}

func TestSimulateWritesSummaryCSVAndChart(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "out")
	stdout, stderr, err := runSimulateCLI(t, "--nodes", "100", "--loss", "10%", "--latency", "uniform:1ms-5ms",
		"--churn", "join=10%@400ms", "--seed", "3", "--out", dir)
	require.NoError(t, err)
	assert.Contains(t, stdout, "100 nodes: every node up had every message after")
	assert.Contains(t, stdout, "wrote "+filepath.Join(dir, simulations.SummaryFile))
	assert.Contains(t, stderr, "building nodes 100/100")
	assert.Contains(t, stderr, "100.00% delivered")

	var summary simulations.Summary
	raw, err := os.ReadFile(filepath.Join(dir, simulations.SummaryFile))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &summary))
	assert.Equal(t, 100, summary.Nodes)
	assert.Equal(t, "uniform:1ms-5ms", summary.Latency)
	assert.Equal(t, "join=10%@400ms", summary.Churn)
	assert.Equal(t, "delivered", summary.Ended)
	assert.Positive(t, summary.RoundsToFull)
	assert.Equal(t, 1.0, summary.DeliveredFraction)
	require.NotNil(t, summary.Memory)
	assert.Positive(t, summary.Memory.PeakHeapInuse)

	f, err := os.Open(filepath.Join(dir, simulations.RoundsFile))
	require.NoError(t, err)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	require.Equal(t, simulations.CSVHeader, rows[0])
	assert.Equal(t, []string{"round", "time_s", "delivered_fraction", "nodes_up", "messages_sent", "bytes_sent",
		"datagrams_sent", "duplicates", "theory_subrounds", "theory_classic", "theory_async"}, rows[0])
	assert.Len(t, rows, summary.RoundsRun+2, "a header, round 0, and one line per round")

	requirePNG(t, filepath.Join(dir, simulations.ChartFile)) // latency.png: TestSimulateLatency
}

// requirePNG checks that path holds a chart: a PNG at least 400 pixels wide.
func requirePNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err, path)
	assert.Greater(t, img.Bounds().Dx(), 400, path)
}

// TestSimulateLatency: with --latency normal:20ms,5ms, simulate prints the
// delivery latency in milliseconds beside the rounds, consistent with
// them, and writes it into summary.json, latency.csv and latency.png.
func TestSimulateLatency(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	stdout, _, err := runSimulateCLI(t, "--nodes", "100", "--latency", "normal:20ms,5ms", "--messages", "2", "--seed", "5", "--out", dir)
	require.NoError(t, err)
	var summary simulations.Summary
	raw, err := os.ReadFile(filepath.Join(dir, simulations.SummaryFile))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &summary))
	assert.Equal(t, "normal:20ms,5ms", summary.Latency)
	require.Equal(t, "delivered", summary.Ended)
	assert.Equal(t, 2*99, summary.LatencyPairs)
	assert.Equal(t, summary.LatencyPairs, summary.LatencyDelivered)
	l := summary.LatencyMs
	assert.Positive(t, l.P50)
	assert.True(t, l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max, "%+v", l)
	assert.Equal(t, l.Max, summary.FullDeliveryMs)
	interval := int64(200) // the default --interval, in milliseconds
	assert.Greater(t, summary.FullDeliveryMs, int64(summary.RoundsToFull-1)*interval)
	assert.LessOrEqual(t, summary.FullDeliveryMs, int64(summary.RoundsToFull)*interval)
	require.Len(t, summary.MessageFullDeliveryMs, 2)
	fastest, slowest := min(summary.MessageFullDeliveryMs[0], summary.MessageFullDeliveryMs[1]), max(summary.MessageFullDeliveryMs[0], summary.MessageFullDeliveryMs[1])
	assert.Equal(t, summary.FullDeliveryMs, slowest)

	assert.Contains(t, stdout, fmt.Sprintf("latency from the publication, over 198 deliveries to other nodes: p50 %d ms, p90 %d ms, p99 %d ms, max %d ms; every node up had every message %d ms after the publication\n",
		l.P50, l.P90, l.P99, l.Max, summary.FullDeliveryMs))
	assert.Contains(t, stdout, fmt.Sprintf("per message, time to every node up: fastest %d ms, median %d ms, slowest %d ms\n", fastest, fastest, slowest))
	assert.Contains(t, stdout, filepath.Join(dir, simulations.LatencyFile))

	f, err := os.Open(filepath.Join(dir, simulations.LatencyFile))
	require.NoError(t, err)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	require.Equal(t, simulations.LatencyCSVHeader, rows[0])
	require.Greater(t, len(rows), 2)
	assert.Equal(t, []string{strconv.FormatInt(summary.FullDeliveryMs, 10), rows[len(rows)-1][1], "1.000000"}, rows[len(rows)-1], "the CDF ends at 1 at the last delivery")
	requirePNG(t, filepath.Join(dir, simulations.LatencyChartFile))
}

func TestSimulateReadsItsOwnEnvironment(t *testing.T) {
	t.Setenv("HEARSAY_PEERS", "127.0.0.1:7600") // an agent's: must not reach simulate
	t.Setenv("HEARSAY_SIMULATE_PEERS", "dht:pool=lots")
	_, _, err := runSimulateCLI(t, "--out", t.TempDir())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--peers: pool: want a whole number")
}

// TestSimulateDHT: --peers dht runs the DHT registry on every node, says
// how long the tables filled before the publication, and writes the
// tables' figures into summary.json.
func TestSimulateDHT(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	stdout, stderr, err := runSimulateCLI(t, "--nodes", "50", "--peers", "dht:warmup=2s,k=8,pool=16", "--seed", "2", "--out", dir)
	require.NoError(t, err)
	assert.Contains(t, stdout, "50 nodes: every node up had every message after")
	assert.Contains(t, stdout, "DHT: the nodes ran 2s before the publication, from which rounds count; then 50 of 50 tables had joined")
	assert.Contains(t, stderr, "warm-up 2s/2s virtual")

	var summary simulations.Summary
	raw, err := os.ReadFile(filepath.Join(dir, simulations.SummaryFile))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &summary))
	assert.Equal(t, "dht:bootstrap=1,warmup=2s,pool=16,ping=30s,k=8", summary.Peers)
	assert.Equal(t, 2.0, summary.WarmupSeconds)
	assert.Equal(t, "delivered", summary.Ended)
	require.NotNil(t, summary.DHT)
	assert.Equal(t, 50, summary.DHT.Joined)
	assert.GreaterOrEqual(t, summary.DHT.PeersMin, 8)
	assert.Positive(t, summary.DHT.WarmupDatagramsPerNode)
}

// TestSimulatePartitionPublishesInTheFirstGroup also checks that without
// their flags, simulate runs the core's and the simulator's defaults,
// which its flags take from there.
func TestSimulatePartitionPublishesInTheFirstGroup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, _, err := runSimulateCLI(t, "--nodes", "100", "--partition", "heal=1s,split=25%", "--seed", "8", "--out", dir)
	require.NoError(t, err)
	raw, err := os.ReadFile(filepath.Join(dir, simulations.SummaryFile))
	require.NoError(t, err)
	var summary simulations.Summary
	require.NoError(t, json.Unmarshal(raw, &summary))
	assert.Equal(t, "at=0s,heal=1s,split=0.25", summary.Partition)
	require.Len(t, summary.Publishers, 1)
	assert.Less(t, summary.Publishers[0], 25, "published in the first group")
	assert.Equal(t, "delivered", summary.Ended)
	assert.Positive(t, summary.Network.Partitioned)

	def := gossip.DefaultConfig(gossip.NodeID{}, nil)
	assert.Equal(t, def.Fanout, summary.Fanout)
	assert.Equal(t, def.Interval.String(), summary.Interval)
	assert.Equal(t, def.CacheRounds, summary.CacheRounds)
	assert.Equal(t, simulations.DefaultPayloadSize, summary.PayloadBytes)
	assert.Equal(t, simulations.DefaultLatency.String(), summary.Latency)
	assert.Equal(t, "full", summary.Peers)
	assert.Zero(t, summary.Totals.AESessions, "anti-entropy is off unless --ae-interval asks for it")
}
