package gossip_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
)

// At a high rate and through loss every range completes: no message waits
// out its bound.
func TestSignedHighRateThroughLoss(t *testing.T) {
	c := signed(t, 12, 0.05, nil)
	const n = 3000
	for i := range n {
		var p [8]byte
		binary.BigEndian.PutUint64(p[:], uint64(i))
		c.Push(0, "load", append(p[:], make([]byte, 200)...))
		if i%20 == 19 {
			c.Run(time.Millisecond) // 20,000 messages per second
		}
	}
	ok := c.RunUntil(120*time.Second, c.AllDelivered(n))
	require.True(t, ok)
	for i := range c.Len() {
		require.Zero(t, c.Core(i).Stats().Dropped[gossip.DropPendingFull], "node %d", i)
	}
	requireNoForgeryDrops(t, c)
}
