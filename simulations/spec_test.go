package simulations

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseLatency(t *testing.T) {
	for spec, want := range map[string]Latency{
		"1ms":                FixedLatency(time.Millisecond),
		" fixed:0s ":         FixedLatency(0),
		"uniform:1ms-20ms":   UniformLatency{Min: time.Millisecond, Max: 20 * time.Millisecond},
		"normal:20ms,5ms":    NormalLatency{Mean: 20 * time.Millisecond, StdDev: 5 * time.Millisecond},
		"lognormal:20ms,0.5": LogNormalLatency{Median: 20 * time.Millisecond, Sigma: 0.5},
	} {
		got, err := ParseLatency(spec)
		require.NoError(t, err, spec)
		assert.Equal(t, want, got, spec)
		again, err := ParseLatency(got.String())
		require.NoError(t, err, "String() reads back: %s", got)
		assert.Equal(t, got, again)
	}
	for _, spec := range []string{"", "-1ms", "uniform:2ms", "uniform:5ms-1ms", "normal:1ms", "lognormal:1ms,x", "lognormal:1ms,-1", "pareto:1ms"} {
		_, err := ParseLatency(spec)
		assert.Error(t, err, spec)
	}
}

func TestParsePartition(t *testing.T) {
	p, err := ParsePartition("at=10s, heal=70s, split=30%")
	require.NoError(t, err)
	assert.Equal(t, &Partition{At: 10 * time.Second, Heal: 70 * time.Second, Split: 0.3}, p)
	assert.Equal(t, "at=10s,heal=1m10s,split=0.3", p.String())
	p, err = ParsePartition("heal=2s")
	require.NoError(t, err)
	assert.Equal(t, "at=0s,heal=2s,split=0.5", p.String(), "defaults: at the publication, half the nodes")
	for _, spec := range []string{"", "none"} {
		p, err := ParsePartition(spec)
		require.NoError(t, err)
		assert.Nil(t, p)
	}
	for spec, want := range map[string]string{
		"at=5s,heal=5s":   "heal=5s is not after at=5s",
		"at=5s,at=6s":     "at given twice",
		"split=0":         "split must be above 0 and below 1",
		"split=100%":      "split must be above 0 and below 1",
		"at=soon":         "at: want a duration",
		"heal":            "want KEY=VALUE",
		"at=1s,duration=": `unknown key "duration"`,
	} {
		_, err := ParsePartition(spec)
		require.Error(t, err, spec)
		assert.Contains(t, err.Error(), want, spec)
	}
}

func TestParseChurn(t *testing.T) {
	c, err := ParseChurn("crash=10%@5s,restart=stateless@20s,join=0.05@3s")
	require.NoError(t, err)
	assert.Equal(t, &Churn{Crash: 0.1, CrashAt: 5 * time.Second, Restart: RestartStateless, RestartAt: 20 * time.Second,
		Join: 0.05, JoinAt: 3 * time.Second}, c)
	assert.Equal(t, "crash=10%@5s,restart=stateless@20s,join=5%@3s", c.String())
	c, err = ParseChurn("crash=1%@0s,restart=stateful@1s")
	require.NoError(t, err)
	assert.Equal(t, RestartStateful, c.Restart)
	for spec, want := range map[string]string{
		"crash=10%":                       "crash: want FRACTION@TIME",
		"crash=110%@1s":                   "want a fraction from 0 to 1",
		"join=5%@-1s":                     "negative duration",
		"restart=stateless@5s":            "restart needs a crash",
		"crash=1%@5s,restart=stateful@5s": "not after crash@5s",
		"crash=1%@1s,restart=maybe@5s":    "restart must be stateless or stateful",
		"leave=1%@1s":                     `unknown key "leave" (want crash, restart, join)`,
	} {
		_, err := ParseChurn(spec)
		require.Error(t, err, spec)
		assert.Contains(t, err.Error(), want, spec)
	}
}

func TestParsePeers(t *testing.T) {
	m, err := ParsePeers("full", 100, 1)
	require.NoError(t, err)
	assert.Equal(t, "full", m.String())
	m, err = ParsePeers("graph:6", 100, 1)
	require.NoError(t, err)
	assert.Equal(t, "graph:6", m.String())
	for _, spec := range []string{"graph:", "graph:0", "graph:x", "graph:100", "ring"} {
		_, err := ParsePeers(spec, 100, 1)
		assert.Error(t, err, spec)
	}
}

func TestParsePeersDHT(t *testing.T) {
	m, err := ParsePeers(" DHT ", 100, 1)
	require.NoError(t, err)
	assert.Equal(t, "dht:bootstrap=1,warmup=10s,pool=128,ping=30s", m.String())
	d, ok := m.(DHT)
	require.True(t, ok)
	assert.Equal(t, 1, d.Bootstrap)
	assert.Equal(t, 16, d.Table.K)

	m, err = ParsePeers("dht:bootstrap=3, warmup=20s, spread=4s, pool=off, ping=1m, k=8", 100, 1)
	require.NoError(t, err)
	d = m.(DHT)
	assert.Equal(t, 3, d.Bootstrap)
	assert.Equal(t, 20*time.Second, d.Warmup)
	assert.Equal(t, 4*time.Second, d.Spread)
	assert.Equal(t, -1, d.Table.SamplePoolSize)
	assert.Equal(t, time.Minute, d.Table.PingInterval)
	assert.Equal(t, 8, d.Table.K)
	assert.Equal(t, "dht:bootstrap=3,warmup=20s,spread=4s,pool=off,ping=1m0s,k=8", m.String())
	for _, spec := range []string{m.String(), "dht:pool=32,spread=2s", "dht"} {
		m, err := ParsePeers(spec, 100, 1)
		require.NoError(t, err, spec)
		again, err := ParsePeers(m.String(), 100, 1)
		require.NoError(t, err, "String() reads back: %s", m)
		assert.Equal(t, m, again)
	}

	for spec, want := range map[string]string{
		"dht:":            "want dht or dht:KEY=VALUE",
		"dht:bootstrap=0": "bootstrap: want a whole number from 1 to 64",
		"dht:warmup=0s":   "warmup: warm-up must be above 0",
		"dht:warmup=soon": "warmup: want a duration",
		"dht:spread=-1s":  "spread: negative duration",
		"dht:pool=0":      "pool: want a whole number from 1 to 10000",
		"dht:pool=lots":   "pool: want a whole number",
		"dht:ping=500ms":  "ping: want at least 1s",
		"dht:k=33":        "k: want a whole number from 1 to 32",
		"dht:k=8,k=9":     "k given twice",
		"dht:alpha=3":     `unknown key "alpha" (want bootstrap, warmup, spread, pool, ping, k)`,
		"dhtx":            `unknown peer model "dhtx"`,
	} {
		_, err := ParsePeers(spec, 100, 1)
		require.Error(t, err, spec)
		assert.Contains(t, err.Error(), want, spec)
	}
	_, err = ParsePeers("dht:bootstrap=20", 10, 1)
	assert.EqualError(t, err, "bootstrap=20 is more than the 10 nodes")
}

func TestParseFraction(t *testing.T) {
	for s, want := range map[string]float64{"0": 0, "0.25": 0.25, "25%": 0.25, " 100 % ": 1, "1": 1} {
		got, err := ParseFraction(s)
		require.NoError(t, err, s)
		assert.InDelta(t, want, got, 1e-12, s)
	}
	for _, s := range []string{"", "x", "-0.1", "101%", "NaN", "Inf"} {
		_, err := ParseFraction(s)
		assert.Error(t, err, s)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"one node":         {Nodes: 1},
		"fanout":           {Nodes: 10, Gossip: gossipConfig(65, 0)},
		"interval":         {Nodes: 10, Gossip: gossipConfig(3, 2*time.Millisecond)},
		"loss":             {Nodes: 10, Loss: 2},
		"messages":         {Nodes: 10, Messages: 11},
		"publishers":       {Nodes: 10, Messages: 2, Publishers: []int{1}},
		"publisher range":  {Nodes: 10, Publishers: []int{10}},
		"partition":        {Nodes: 10, Partition: &Partition{At: time.Second, Heal: time.Second}},
		"churn restart":    {Nodes: 10, Churn: &Churn{Restart: RestartStateless, RestartAt: time.Second}},
		"churn join range": {Nodes: 10, Churn: &Churn{Join: 1.5}},
		"graph size":       {Nodes: 10, Peers: mustGraph(t, 20, 4)},
	} {
		_, err := New(cfg)
		assert.Error(t, err, name)
		_, err = Run(cfg)
		assert.Error(t, err, name)
	}
}

func mustGraph(t *testing.T, nodes, degree int) *RandomGraph {
	g, err := NewRandomGraph(nodes, degree, 1)
	require.NoError(t, err)
	return g
}
