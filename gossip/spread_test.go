package gossip_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/gossip/gossiptest"
	"github.com/hearsay-io/hearsay/transport"
)

// slowSpread is a cluster of n cores whose spread is bounded by small
// answer budgets, with a propagation cache that holds cacheMessages for 5
// rounds and no log: gossip alone must deliver, nothing is repaired.
func slowSpread(t *testing.T, n, cacheMessages, window int) *gossiptest.Cluster {
	return gossiptest.New(t, gossiptest.Config{Nodes: n, Network: transport.NetworkConfig{Seed: 3},
		Core: func(i int, c *gossip.Config) {
			c.CacheMessages = cacheMessages
			c.CacheRounds = 5
			c.MaxAnswerBytes = 1400
			c.MaxAnswerBytesPerRound = 64 * 1400
			c.SpreadWindow = window
		}})
}

// publisher publishes total messages from core 0 as fast as it is let:
// on a refusal it waits the RetryAfter the refusal gives, as the node's
// 503 tells an HTTP client to. pace, when positive, spaces the publishes.
type publisher struct {
	c       *gossiptest.Cluster
	total   int
	pace    time.Duration
	sent    int
	refused int
	waits   []time.Duration
	other   error
	last    error // the last refusal
}

// payload is message i's: 300 bytes, four to a datagram.
func payload(i int) []byte {
	b := make([]byte, 300)
	copy(b, fmt.Sprintf("message %d", i))
	return b
}

func (p *publisher) run() {
	for p.sent < p.total {
		_, err := p.c.Core(0).Push(p.c.Now(), "burst", payload(p.sent))
		p.c.Flush(0)
		if errors.Is(err, gossip.ErrBackpressure) {
			p.refused++
			p.last = err
			d, ok := gossip.RetryAfterOf(err)
			if !ok {
				p.other = fmt.Errorf("refusal without a RetryAfter: %w", err)
				return
			}
			p.waits = append(p.waits, d)
			p.c.Net().At(p.c.Now().Add(d), p.run)
			return
		}
		if err != nil {
			p.other = err
			return
		}
		p.sent++
		if p.pace > 0 {
			p.c.Net().At(p.c.Now().Add(p.pace), p.run)
			return
		}
	}
}

// A burst twenty times the propagation cache, published as fast as the
// origin admits it, reaches every node through gossip alone: the origin
// refuses what its pullers have not taken in yet, and the publisher waits
// the time it is told.
func TestBurstSpreadsAtTheSpreadRate(t *testing.T) {
	const nodes, total = 8, 4000
	c := slowSpread(t, nodes, 200, 50)
	c.Run(time.Second) // pulls are flowing: the origin has measured its pullers
	p := &publisher{c: c, total: total}
	p.run()
	delivered := c.RunUntil(time.Minute, c.AllDelivered(total))
	require.NoError(t, p.other)
	require.True(t, delivered, "every node got all %d messages", total)
	require.Equal(t, total, p.sent)
	require.Positive(t, p.refused, "the burst was held back")
	for _, d := range p.waits {
		require.Greater(t, d, time.Duration(0))
		require.LessOrEqual(t, d, 200*time.Millisecond, "no wait longer than a round")
	}
	for i := range nodes {
		require.Len(t, c.Delivered(i), total, "node %d", i)
	}
}

// Without the spread bound the same burst is admitted as fast as the cache
// has room, and ages out of the caches before it has reached everyone.
func TestBurstWithoutSpreadWindowIsLost(t *testing.T) {
	const total = 4000
	c := slowSpread(t, 8, 200, -1)
	c.Run(time.Second) // pulls are flowing: the origin has measured its pullers
	p := &publisher{c: c, total: total}
	p.run()
	require.False(t, c.RunUntil(time.Minute, c.AllDelivered(total)), "only the cache bounding publishing, some node misses messages")
	require.NoError(t, p.other)
}

// A publisher paced below the rate the cluster spreads at is never refused.
func TestPacedPublisherIsNeverRefused(t *testing.T) {
	const total = 1000
	c := slowSpread(t, 8, 200, 50)
	p := &publisher{c: c, total: total, pace: 20 * time.Millisecond} // 50/s
	p.run()
	delivered := c.RunUntil(time.Minute, c.AllDelivered(total))
	require.NoError(t, p.other)
	require.True(t, delivered)
	require.Zero(t, p.refused)
	require.Zero(t, c.Core(0).Stats().Backpressure)
}
