package node

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/msglog"
)

// A replay that runs while the log evicts for its byte bound (a log of
// days, at its bound, evicts with every message accepted) goes on past
// its cursor's eviction: every message accepted after the resume point
// that the log still held when read comes once, in order, none skipped.
func TestReplayGoesOnWhenItsCursorIsEvicted(t *testing.T) {
	log := msglog.NewMemory(64 << 10)
	c := newMemCluster(t, 1, func(i int, cfg *Config) { cfg.Log = log })
	nd := c.nodes[0]
	ctx := context.Background()
	var ids []gossip.MessageID
	publish := func(k int) {
		for range k {
			id, err := nd.Publish(ctx, "r", fmt.Appendf(make([]byte, 0, 100), "%-100d", len(ids)))
			require.NoError(t, err)
			ids = append(ids, id)
		}
	}
	publish(400) // about 150 bytes logged each: the log holds the last ~430
	s, r, err := nd.SubscribeAfter(">", ids[0])
	require.NoError(t, err)
	defer s.Close()
	require.True(t, r.Found())
	first := r.Next() // the seek's batch: up to the 256th entry
	require.NotEmpty(t, first)
	cursor := first[len(first)-1].ID
	publish(350) // evicts the cursor and what precedes it
	has, err := log.Contains(cursor)
	require.NoError(t, err)
	require.False(t, has, "the cursor was evicted")
	got := append([]gossip.Message(nil), first...)
	for b := r.Next(); b != nil; b = r.Next() {
		got = append(got, b...)
	}
	require.NoError(t, r.Err())
	require.Equal(t, ids[1], got[0].ID)
	require.Equal(t, ids[399], got[len(got)-1].ID, "the replay reaches the subscription's start")
	for i := 1; i < len(got); i++ {
		require.Greater(t, got[i].Seq, got[i-1].Seq, "in order, once")
	}
	require.Greater(t, len(got), len(first), "it went on past the evicted cursor")
}
