package gossip_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/gossip/gossiptest"
	"github.com/hearsay-io/hearsay/wire"
)

// pullOnce lets core i pull once, with instant delivery, and returns the
// datagrams that pull set off, copied, until none is left in flight.
func pullOnce(t *testing.T, c *gossiptest.Cluster, i int) []gossiptest.Packet {
	t.Helper()
	var sent []gossiptest.Packet
	pulled := false
	c.Intercept = func(p gossiptest.Packet) bool {
		if p.From == i && p.Type() == wire.Pull {
			pulled = true
		}
		if pulled {
			p.Data = append([]byte(nil), p.Data...)
			sent = append(sent, p)
		}
		return false
	}
	require.True(t, c.RunUntil(time.Second, func() bool { return pulled }))
	at := c.Now()
	require.True(t, c.RunUntil(time.Second, c.Quiet))
	require.Equal(t, at, c.Now(), "all at one instant")
	c.Intercept = nil
	return sent
}

// pushThenPullOnce publishes 100 messages of 200 bytes on core 0, then has
// core 1 pull once, and returns what that pull set off.
func pushThenPullOnce(t *testing.T, c *gossiptest.Cluster) []gossiptest.Packet {
	for i := 0; i < 100; i++ {
		c.Push(0, "a", bytes.Repeat([]byte("x"), 200))
	}
	return pullOnce(t, c, 1)
}

func TestAnswerRespectsBudgetAndPacketSize(t *testing.T) {
	c := instant(t, 2, func(i int, c *gossip.Config) {
		c.MaxAnswerBytes = 4000
		c.MaxAnswerBytesPerRound = 4000 // one answer per round: no MORE
		c.MaxPacketSize = 1000
	})
	answered := 0
	for _, p := range pushThenPullOnce(t, c) {
		require.LessOrEqual(t, len(p.Data), 1000)
		if p.Type() == wire.Messages {
			answered += len(p.Data) - wire.HeaderSize
		}
	}
	require.LessOrEqual(t, answered, 4000)
	require.Greater(t, answered, 3000)
	require.Less(t, len(c.Delivered(1)), 100)
	c.Run(5 * time.Second)
	require.Len(t, c.Delivered(1), 100, "the rest arrives on later pulls")
}

// An answer cut short by MaxAnswerBytes ends with MORE, and the puller
// pulls again at once, until the responder's budget for the round
// (MaxAnswerBytesPerRound) is spent: each answer within MaxAnswerBytes, the
// round's within MaxAnswerBytesPerRound, and no message sent twice.
func TestMoreBringsAPullAgainWithinTheRoundBudget(t *testing.T) {
	c := instant(t, 2, func(i int, c *gossip.Config) {
		c.MaxAnswerBytes = 4000
		c.MaxAnswerBytesPerRound = 12000
		c.MaxPacketSize = 1000
	})
	var answers []int // bytes of each answer, split at each pull
	pulls, mores := 0, 0
	for _, p := range pushThenPullOnce(t, c) {
		switch p.Type() {
		case wire.Pull:
			pulls++
			answers = append(answers, 0)
		case wire.Messages:
			answers[len(answers)-1] += len(p.Data) - wire.HeaderSize
		case wire.More:
			mores++
		}
	}
	require.Equal(t, 3, pulls, "the first pull and two pulls again")
	require.Equal(t, 2, mores, "no MORE once the round's budget is spent")
	total := 0
	for _, b := range answers {
		require.LessOrEqual(t, b, 4000)
		require.Greater(t, b, 3000)
		total += b
	}
	require.LessOrEqual(t, total, 12000)
	c1 := c.Core(1)
	require.Zero(t, c1.Stats().Duplicates)
	require.Equal(t, uint64(2), c1.Stats().Repulls)
	c.Run(5 * time.Second)
	require.Len(t, c.Delivered(1), 100)
	require.Zero(t, c1.Stats().Duplicates)
}

// A pull whose digest comes in several partitions gets one MORE, after
// its last partition, however many of the partitions' answers were cut.
func TestOneMorePerPartitionedPull(t *testing.T) {
	c := instant(t, 2, func(i int, c *gossip.Config) {
		c.MaxPacketSize = 512
		c.MaxAnswerBytes = 2048
		c.MaxAnswerBytesPerRound = 16 << 10
	})
	feed := func(i int, maxSeq uint64) {
		for o := 0; o < 100; o++ {
			origin := gossip.NodeID{0xfe, byte(o)}
			for s := uint64(1); s <= maxSeq; s++ {
				dg := gossip.AppendMessage(wire.AppendHeader(nil, wire.Messages), origin, s, c.Now().UnixMilli(), "p", bytes.Repeat([]byte{byte(s)}, 100))
				c.Handle(i, gossiptest.Addr(9), dg)
			}
		}
	}
	feed(1, 1) // a digest of 100 origins: several partitions
	feed(0, 6) // and every partition's answer is cut short
	partitions, pulls, mores := 0, 0, 0
	for _, p := range pullOnce(t, c, 1) {
		switch p.Type() {
		case wire.Pull:
			req, err := gossip.DecodePullRequest(p.Data)
			require.NoError(t, err)
			partitions = 1 << req.PartitionBits
			if int(req.Partition) == partitions-1 {
				pulls++
			}
		case wire.More:
			mores++
		}
	}
	require.Greater(t, partitions, 1, "the digest was split")
	require.Greater(t, mores, 0)
	require.Equal(t, pulls-1, mores, "one MORE per whole pull but the last, which found the round's budget spent or nothing cut")
	require.Zero(t, c.Core(1).Stats().Duplicates)
}
