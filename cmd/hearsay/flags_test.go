package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/node"
)

// The agent's defaults are the library's: an agent run without flags
// configures its node as node.DefaultConfig says (but for what the agent
// chooses itself: a data dir, hence the leveldb filter).
func TestAgentFlagDefaultsAreTheLibrarys(t *testing.T) {
	clearEnv(t)
	res := runCLI(t, "", "agent")
	require.Equal(t, 0, res.code, res.stderr)
	got, def := res.agent, node.DefaultConfig()
	assert.Equal(t, def.Bind, got.Bind)
	assert.Equal(t, def.Cluster, got.Cluster)
	assert.Equal(t, def.Gossip.Fanout, got.Gossip.Fanout)
	assert.Equal(t, def.Gossip.Interval, got.Gossip.Interval)
	assert.Equal(t, def.Gossip.MaxPacketSize, got.Gossip.MaxPacketSize)
	assert.Equal(t, def.Gossip.MaxMessageSize, got.Gossip.MaxMessageSize)
	assert.Equal(t, def.Gossip.CacheRounds, got.Gossip.CacheRounds)
	assert.Equal(t, def.Gossip.Retention, got.Gossip.Retention)
	assert.Equal(t, def.Gossip.AEInterval, got.Gossip.AEInterval)
	assert.Equal(t, node.FilterLevelDB, got.Filter)

	assert.Equal(t, def.LogMaxBytes, got.LogMaxBytes)
	res = runCLI(t, "", "agent", "--retention", "8d")
	require.Equal(t, 2, res.code)
	assert.Contains(t, res.stderr, "--retention: want a duration such as 10m, 12h or 2d (at most 7d)")
	res = runCLI(t, "", "agent", "--retention", "169h")
	require.Equal(t, 2, res.code)
	assert.Contains(t, res.stderr, "--retention: at most 7d (168h), got 169h")
	res = runCLI(t, "", "agent", "--retention", "7d", "--log-max-bytes", "2147483648")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, 7*24*time.Hour, res.agent.Gossip.Retention)
	assert.Equal(t, int64(2<<30), res.agent.LogMaxBytes)
	res = runCLI(t, "", "agent", "--log-max-bytes", "1k")
	require.Equal(t, 2, res.code)
	assert.Contains(t, res.stderr, "--log-max-bytes: want a whole number of bytes")
	res = runCLI(t, "", "agent", "--log-max-bytes", "1000")
	require.Equal(t, 2, res.code)
	assert.Contains(t, res.stderr, "--log-max-bytes: must be at least 65536")
	res = runCLI(t, "", "agent", "--ae-interval", "0")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Negative(t, res.agent.Gossip.AEInterval, "0 turns anti-entropy off")
}

func TestDurationText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		200 * time.Millisecond: "200ms", 10 * time.Second: "10s", 10 * time.Minute: "10m",
		90 * time.Second: "1m30s", time.Hour: "1h", 90 * time.Minute: "1h30m", 0: "0s",
	} {
		assert.Equal(t, want, durationText(d), "%v", d)
	}
}
