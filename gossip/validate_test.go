package gossip_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/gossip/gossiptest"
	"github.com/hearsay-io/hearsay/transport"
)

// Every node validates: what every validator accepts reaches everyone;
// what they reject or ignore is delivered nowhere but at its origin (a
// local publish is the node's own, not the core's, to validate), never
// relayed, not pulled again, and counted; the sender of a rejected one is
// penalised, of an ignored one not.
func TestValidationVerdicts(t *testing.T) {
	byTopic := map[string]gossip.Verdict{"ok": gossip.VerdictAccept, "bad": gossip.VerdictReject, "meh": gossip.VerdictIgnore}
	asked := map[int]int{}
	c := gossiptest.New(t, gossiptest.Config{Nodes: 4, Network: transport.NetworkConfig{Seed: 5},
		Validate: func(i int, m gossip.Message) gossip.Verdict {
			asked[i]++
			return byTopic[m.Topic]
		}})
	ok := c.Push(0, "ok", []byte("1"))
	c.Push(0, "bad", []byte("2"))
	c.Push(0, "meh", []byte("3"))
	big := c.Push(0, "ok", gossip.RandomPayload(3, 5000))
	c.Run(10 * time.Second)
	for i := 1; i < 4; i++ {
		got := c.Delivered(i)
		require.Len(t, got, 2, "node %d", i)
		require.ElementsMatch(t, []gossip.MessageID{ok.ID, big.ID}, []gossip.MessageID{got[0].ID, got[1].ID})
		require.Equal(t, 4, asked[i], "node %d asked once per message", i)
		s := c.Core(i).TrustStats()
		require.Equal(t, uint64(1), s.Ignored, "node %d", i)
		require.Zero(t, s.AwaitingNow)
	}
	require.Len(t, c.Delivered(0), 4)
	// Only node 0 had the rejected message to send: nobody relayed it.
	for i := 1; i < 4; i++ {
		var rejected uint64
		for _, p := range c.Core(i).Penalties() {
			require.Equal(t, gossiptest.Addr(0), p.Peer, "node %d penalises the origin alone", i)
			rejected += p.Offences
		}
		require.Equal(t, c.Core(i).TrustStats().Rejected, rejected)
	}
	var rejected uint64
	for i := 1; i < 4; i++ {
		rejected += c.Core(i).TrustStats().Rejected
	}
	require.Equal(t, uint64(3), rejected, "each node rejected it once, from node 0")
}

// A message waiting for a verdict (the validator unreachable) is neither
// delivered nor relayed nor pulled again; the verdict, when it comes,
// releases it.
func TestValidationWaits(t *testing.T) {
	c := gossiptest.New(t, gossiptest.Config{Nodes: 3, Network: transport.NetworkConfig{Seed: 5},
		Validate: func(i int, m gossip.Message) gossip.Verdict {
			if i == 1 {
				return 0 // no answer yet
			}
			return gossip.VerdictAccept
		}})
	m := c.Push(0, "ok", []byte("x"))
	c.Run(5 * time.Second)
	require.Empty(t, c.Delivered(1))
	require.Len(t, c.Delivered(2), 1)
	require.Equal(t, []gossip.MessageID{m.ID}, c.Core(1).Awaiting())
	require.Equal(t, uint64(1), c.Core(1).Stats().MessagesIn, "held in the digest: not pulled again")
	c.Verdict(1, m.ID, gossip.VerdictAccept)
	require.Len(t, c.Delivered(1), 1)
	require.Empty(t, c.Core(1).Awaiting())
	require.False(t, c.Core(1).Verdict(c.Now(), m.ID, gossip.VerdictReject), "decided already")
}

// Validation comes after verification: a signing, validating cluster
// validates only genuine messages.
func TestValidationAfterSignatures(t *testing.T) {
	var asked int
	c := gossiptest.New(t, gossiptest.Config{Nodes: 3, Sign: true, Network: transport.NetworkConfig{Seed: 2},
		Validate: func(i int, m gossip.Message) gossip.Verdict { asked++; return gossip.VerdictAccept }})
	for range 10 {
		c.Push(0, "ok", []byte("x"))
	}
	require.True(t, c.RunUntil(10*time.Second, c.AllDelivered(10)))
	require.Equal(t, 20, asked)
	requireNoForgeryDrops(t, c)
}
