package gossip_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/gossip/gossiptest"
	"github.com/hearsay-io/hearsay/transport"
	"github.com/hearsay-io/hearsay/wire"
)

func TestPushIsDeliveredEverywhereOnce(t *testing.T) {
	c := instant(t, 5, nil)
	m := c.Push(0, "orders.created", []byte("hello"))
	c.Run(3 * time.Second)
	for i := range c.Len() {
		require.Len(t, c.Delivered(i), 1, "node %d", i)
		got := c.Delivered(i)[0]
		require.Equal(t, m.ID, got.ID)
		require.Equal(t, "orders.created", got.Topic)
		require.Equal(t, []byte("hello"), got.Payload)
		require.Equal(t, m.Created, got.Created)
		require.Equal(t, uint64(1), c.Core(i).Stats().Delivered)
	}
	require.Equal(t, uint64(1), c.Core(0).Stats().Published)
}

// A node that holds every message gets no message bodies in answer to its
// pulls: the digest works.
func TestDigestSuppressesBodies(t *testing.T) {
	c := instant(t, 4, func(i int, c *gossip.Config) { c.CacheRounds = 1000 })
	for i := 0; i < 60; i++ {
		c.Push(i%3, fmt.Sprintf("t.%d", i%5), bytes.Repeat([]byte{byte(i)}, 100))
	}
	c.Run(5 * time.Second)
	for i := range c.Len() {
		require.Len(t, c.Delivered(i), 60)
	}
	before := c.Core(3).Stats()
	var bodyBytes int
	c.Intercept = func(p gossiptest.Packet) bool {
		_, _, err := wire.Parse(p.Data)
		require.NoError(t, err)
		if p.Type() == wire.Messages {
			bodyBytes += len(p.Data)
		}
		return false
	}
	c.Run(10 * time.Second)
	after := c.Core(3).Stats()
	require.Greater(t, after.PullsSent, before.PullsSent+100)
	require.Equal(t, before.MessagesIn, after.MessagesIn, "no message bodies reached node 3")
	require.Zero(t, bodyBytes, "no messages datagram was sent by anyone")
	require.Equal(t, 3, after.Origins)
}

func TestBackpressure(t *testing.T) {
	c := instant(t, 2, func(i int, c *gossip.Config) { c.CacheMessages = 3; c.CacheRounds = 5 })
	for i := 0; i < 3; i++ {
		c.Push(0, "a", []byte("x"))
	}
	_, err := c.Core(0).Push(c.Now(), "a", []byte("x"))
	require.ErrorIs(t, err, gossip.ErrBackpressure)
	require.Equal(t, uint64(1), c.Core(0).Stats().Backpressure)
	c.Run(2 * time.Second) // 10 rounds: the first three leave the cache
	c.Push(0, "a", []byte("y"))
	c.Run(2 * time.Second)
	require.Len(t, c.Delivered(1), 4, "every accepted message arrived")

	// The byte bound refuses too.
	core, err := gossip.New(gossip.Config{ID: gossiptest.ID(0), Peers: noPeers{}, CacheBytes: 1400})
	require.NoError(t, err)
	for {
		if _, err = core.Push(t0, "a", bytes.Repeat([]byte("z"), 300)); err != nil {
			break
		}
	}
	require.ErrorIs(t, err, gossip.ErrBackpressure)
	require.LessOrEqual(t, core.Stats().CacheBytes, 1400)
}

// A receiver whose cache is full drops what it cannot hold, counts it, and
// pulls it again later: nothing is lost.
func TestReceiverCacheFullLosesNothing(t *testing.T) {
	c := instant(t, 2, func(i int, c *gossip.Config) {
		c.CacheRounds = 3
		if i == 1 {
			c.CacheMessages = 5
		} else {
			c.CacheRounds = 50
		}
	})
	for i := 0; i < 12; i++ {
		c.Push(0, "a", []byte{byte(i)})
	}
	c.Run(6 * time.Second)
	require.Len(t, c.Delivered(1), 12)
	require.NotZero(t, c.Core(1).Stats().Dropped[gossip.DropCacheFull])
}

func TestMalformedDatagramsAreCounted(t *testing.T) {
	c := instant(t, 2, nil)
	good := gossip.AppendMessage(wire.AppendHeader(nil, wire.Messages), gossip.NodeID{3}, 1, c.Now().UnixMilli(), "a", []byte("ok"))
	bad := [][]byte{
		nil, {1}, []byte("GET / HTTP/1.1\r\n"), {'H', 'S', 2, 1}, {'H', 'S', 1, 0x7f, 1, 2, 3},
		{'H', 'S', 1, 1, 0xff}, good[:len(good)-1],
		append(append([]byte(nil), good...), 0xff), // a valid message followed by garbage: all refused
	}
	for _, b := range bad {
		c.Handle(1, gossiptest.Addr(0), b)
	}
	s := c.Core(1).Stats()
	require.Equal(t, uint64(len(bad)-2), s.Dropped[gossip.DropMalformed])
	require.Equal(t, uint64(1), s.Dropped[gossip.DropVersion])
	require.Equal(t, uint64(1), s.Dropped[gossip.DropUnknownType])
	require.Zero(t, s.Delivered, "nothing of a malformed datagram is accepted")
	// And the node still works.
	c.Push(0, "a", []byte("x"))
	c.Run(2 * time.Second)
	require.Len(t, c.Delivered(1), 1)
}

// The same inputs give the same datagrams, with instant delivery and on a
// network that loses, delays and reorders them.
func TestDeterministic(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]gossiptest.Config{
		"instant": {Nodes: 6, Instant: true},
		"lossy":   {Nodes: 6, Network: transport.NetworkConfig{Seed: 3, Loss: 0.05, Jitter: 5 * time.Millisecond}},
	} {
		trace := func() []byte {
			c := gossiptest.New(t, cfg)
			var all []byte
			c.Intercept = func(p gossiptest.Packet) bool {
				all = append(all, p.At.String()...)
				all = append(all, p.Addr.String()...)
				all = append(all, p.Data...)
				return false
			}
			for i := 0; i < 20; i++ {
				c.Push(i%6, "a", []byte{byte(i)})
				c.Run(100 * time.Millisecond)
			}
			c.Run(3 * time.Second)
			return all
		}
		first := trace()
		require.NotEmpty(t, first)
		require.Equal(t, first, trace(), name)
	}
}
