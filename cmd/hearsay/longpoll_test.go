package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/node"
)

func TestAgentLongPollFlag(t *testing.T) {
	res := runCLI(t, "", "agent")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, node.DefaultConfig().Gossip.MaxPark, res.agent.Gossip.MaxPark, "on by default")
	assert.Positive(t, res.agent.Gossip.MaxPark)

	res = runCLI(t, "", "agent", "--long-poll", "0")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Negative(t, res.agent.Gossip.MaxPark, "0 turns long-poll off")

	res = runCLI(t, "", "agent", "--long-poll", "2s")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, 2*time.Second, res.agent.Gossip.MaxPark)

	for value, want := range map[string]string{
		"-1s":   "--long-poll: must not be negative, got -1s",
		"500us": "--long-poll: want 0 (off) or from 1ms to",
		"1s2":   `--long-poll: want a duration such as 200ms, 5s or 1m30s, got "1s2"`,
		"9999h": "--long-poll: want 0 (off) or from 1ms to",
	} {
		res := runCLI(t, "", "agent", "--long-poll", value)
		assert.Equal(t, 2, res.code, value)
		assert.Contains(t, res.stderr, want, value)
	}
}

// Agents with long-poll deliver between their rounds: with a round pull
// every 3 s (interval 3s, fanout 1), once a first message has built the
// subscriptions, each next message reaches both other agents' event
// streams within a second of its publication, from whichever agent. By
// round pulls alone, both would have to pull from a holder within that
// second, for each of five messages.
func TestE2ELongPollDeliversBetweenRounds(t *testing.T) {
	t.Parallel()
	hearsayBinary(t)
	const n = 3
	c := newCluster(t, n)
	agents := c.startAll(t, "lp", "--interval", "3s", "--fanout", "1", "--long-poll", "30s", "--ae-interval", "0")
	var streams []*testStream
	for _, a := range agents {
		streams = append(streams, openStream(t, a.name, a.api, "lp.>"))
	}
	first := publishMessages(t, agents[0].api, "lp.first", 1)
	for _, s := range streams {
		s.waitFor(t, first, 30*time.Second) // round pulls, then hints and grafts
	}
	for i := range 5 {
		origin := agents[i%n]
		ids := publishMessages(t, origin.api, fmt.Sprintf("lp.next.%d", i), 1)
		for _, s := range streams {
			s.waitFor(t, ids, time.Second)
		}
	}
}
