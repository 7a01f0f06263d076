package node

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A peer with another passphrase is named in one WARN per minute, however
// many of its datagrams are dropped; the counter counts them all.
func TestAuthFailuresWarnNamingThePeerRateLimited(t *testing.T) {
	logs := &lockedBuffer{}
	c := newMemCluster(t, 3, func(i int, c *Config) {
		c.Keyring = ringFor(t, "passphrase of cluster A")
		if i == 2 {
			c.Keyring = ringFor(t, "passphrase of cluster B")
		}
		if i == 0 {
			c.Logger = slog.New(slog.NewTextHandler(logs, nil))
		}
	})
	warnings := func() int { return strings.Count(logs.String(), "wrong passphrase or cluster name?") }
	c.waitFor(10*time.Second, func() bool { return warnings() == 1 })
	require.Contains(t, logs.String(), "peer="+memAddr(2).String())
	require.NotContains(t, logs.String(), "peer="+memAddr(1).String(), "the peer with the right key is not named")
	c.run(authWarnEvery / 2)
	require.Equal(t, 1, warnings(), "at most one per minute per peer")
	require.Greater(t, c.nodes[0].Stats().Drops["unknown_key"], uint64(authWarnAfter), "every drop is counted")
	c.waitFor(authWarnEvery, func() bool { return warnings() == 2 })
}

// The warnings are bounded in all, whatever the number of addresses: a
// forger can vary the source address of its datagrams.
func TestAuthWarningsBoundedOverAddresses(t *testing.T) {
	var w authWarner
	now := time.Unix(1000, 0)
	warned := 0
	for i := range 1000 {
		a := memAddr(i % 250)
		if ok, _ := w.failed(a, "unknown_key", now); ok {
			warned++
		}
	}
	require.Equal(t, authWarnBurst, warned)
	ok, _ := w.failed(memAddr(1), "replay", now.Add(time.Hour))
	require.False(t, ok, "replays are not a misconfiguration")
	ok, count := w.failed(memAddr(200), "unknown_key", now.Add(authWarnEvery))
	require.True(t, ok, "a new window")
	require.Equal(t, uint64(5), count, "the drops since the last warning")
}
