package gossip_test

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/filter"
	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/gossip/gossiptest"
	"github.com/hearsay-io/hearsay/msglog"
)

// The target: a 1 MiB message reaches all 20 nodes, once and
// byte-identical, through 10% datagram loss.
func TestLargeMessageReachesTwentyNodesThroughLoss(t *testing.T) {
	t.Parallel()
	const n = 20
	c := lossy(t, n, 0.10, nil)
	c.Run(time.Second)
	payload := gossip.RandomPayload(1, 1<<20)
	m := c.Push(0, "files.big", payload)
	require.Equal(t, gossip.ComputeMessageID(c.Core(0).ID(), m.Seq, m.Created.UnixMilli(), "files.big", payload), m.ID)
	before, start := c.Net().Stats(), c.Now()
	require.True(t, c.RunUntil(60*time.Second, c.AllDelivered(1)))
	took := c.Now().Sub(start)
	c.Run(2 * time.Second) // and nothing more arrives
	for i := range n {
		requireDeliveredOnce(t, c.Delivered(i), m)
		require.Zero(t, c.Core(i).Stats().PartialMessages, "node %d", i)
	}
	chunks := int(c.Core(0).Stats().Chunks)
	var copies, dups uint64
	for i := range n {
		s := c.Core(i).Stats()
		require.Equal(t, uint64(chunks), s.Chunks)
		copies += s.MessagesOut
		dups += s.Duplicates
	}
	after := c.Net().Stats()
	rounds := float64(took) / float64(c.Core(0).Config().Interval)
	t.Logf("1 MiB in %d chunks to %d nodes at 10%% loss: all delivered after %v (%.0f rounds); %.1f MB sent (%.2f× the %d copies' payload), %d datagrams, %d lost; chunk copies sent %d for %d needed (%d resent), %d duplicates received",
		chunks, n, took.Round(10*time.Millisecond), rounds, float64(after.BytesSent-before.BytesSent)/1e6,
		float64(after.BytesSent-before.BytesSent)/float64((n-1)<<20), n-1,
		after.Sent-before.Sent, after.Lost-before.Lost, copies, (n-1)*chunks, copies-uint64((n-1)*chunks), dups)
	require.Less(t, rounds, 60.0)
}

// A chunk lost on the way is pulled again on its own: the publisher sends
// one copy of every chunk and the lost one again, not the message again.
func TestLostChunkIsPulledAlone(t *testing.T) {
	c := lossy(t, 2, 0, nil)
	payload := gossip.RandomPayload(2, 200_000)
	copies := map[uint64]int{} // of each chunk, sent by the publisher
	var sent, lost int
	var target uint64
	c.Intercept = func(p gossiptest.Packet) bool {
		seqs := gossip.ChunkSeqs(p.Data)
		if p.From != 0 || seqs == nil {
			return false
		}
		sent += len(p.Data)
		for _, s := range seqs {
			copies[s]++
		}
		if lost == 0 && slices.Contains(seqs, target) {
			lost = len(p.Data)
			return true
		}
		return false
	}
	c.Run(time.Second)
	target = uint64(c.Now().UnixMicro()) + 57 // chunk 57: seqs start at the clock
	m := c.Push(0, "files.one", payload)
	require.Equal(t, target-57, m.Seq)
	require.True(t, c.RunUntil(10*time.Second, c.AllDelivered(1)))
	requireDeliveredOnce(t, c.Delivered(1), m)
	require.NotZero(t, lost, "the chunk was dropped once")
	t.Logf("%d bytes of chunks sent, %d of them lost", sent, lost)
	chunks := int(c.Core(0).Stats().Chunks)
	require.Len(t, copies, chunks)
	for s := m.Seq; s < m.Seq+uint64(chunks); s++ {
		want := 1
		if s == target {
			want = 2
		}
		require.Equal(t, want, copies[s], "copies of chunk %d", s-m.Seq)
	}
	require.Zero(t, c.Core(1).Stats().Duplicates)
}

// A core with a log and a gossip cache too short to help gets a chunk it
// missed from anti-entropy, and then delivers the message.
func TestAntiEntropyRepairsMissingChunk(t *testing.T) {
	c := lossy(t, 3, 0, withLog(time.Second))
	var target uint64
	cut := true
	c.Intercept = func(p gossiptest.Packet) bool {
		return cut && p.To == 2 && slices.Contains(gossip.ChunkSeqs(p.Data), target)
	}
	c.Run(time.Second)
	target = uint64(c.Now().UnixMicro()) + 3
	m := c.Push(0, "files.ae", gossip.RandomPayload(3, 30_000))
	c.Run(3 * time.Second)
	require.Len(t, c.Delivered(1), 1)
	require.Empty(t, c.Delivered(2), "chunk 3 never reached node 2 by gossip")
	require.Equal(t, 1, c.Core(2).Stats().PartialMessages)
	for i := range c.Len() {
		require.Zero(t, c.Core(i).Stats().CacheMessages, "gossip can no longer deliver it")
	}
	cut = false
	require.True(t, c.RunUntil(10*time.Second, c.AllDelivered(1)))
	requireDeliveredOnce(t, c.Delivered(2), m)
	s := c.Core(2).Stats()
	require.Equal(t, uint64(1), s.Reassembled)
	require.NotZero(t, s.AEMissing+c.Core(0).Stats().AEPushed+c.Core(1).Stats().AEPushed)
	r0, _ := c.Core(0).MerkleRoot()
	r2, _ := c.Core(2).MerkleRoot()
	require.Equal(t, r0, r2)
}

// A message whose chunks straddle a restart completes with a persistent
// seen filter and log, and is delivered once across later restarts.
func TestLargeMessageAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var f *filter.LevelDB
	var l *msglog.LevelDB
	open := func() {
		var err error
		f, err = filter.OpenLevelDB(filepath.Join(dir, "seen"), filter.LevelDBConfig{})
		require.NoError(t, err)
		l, err = msglog.OpenLevelDB(filepath.Join(dir, "log"), 0)
		require.NoError(t, err)
	}
	closeStores := func() {
		require.NoError(t, f.Close())
		require.NoError(t, l.Close())
	}
	open()
	t.Cleanup(func() { closeStores() })
	c := lossy(t, 2, 0, func(i int, c *gossip.Config) {
		if i == 1 {
			c.Filter, c.Log = f, l // Restart reopens them
		}
	})
	restart := func() {
		c.Stop(1)
		closeStores()
		open()
		c.Restart(1)
	}
	var first uint64
	half := true
	c.Intercept = func(p gossiptest.Packet) bool {
		for _, s := range gossip.ChunkSeqs(p.Data) {
			if half && s >= first+40 {
				return true
			}
		}
		return false
	}
	c.Run(time.Second)
	first = uint64(c.Now().UnixMicro())
	m := c.Push(0, "files.restart", gossip.RandomPayload(4, 100_000))
	c.Run(2 * time.Second)
	require.Empty(t, c.Delivered(1))
	require.Equal(t, 1, c.Core(1).Stats().PartialMessages)
	got := c.Core(1).Stats().Chunks
	require.Equal(t, uint64(40), got)

	// Restart: the 40 chunks are in the filter, so they will not be
	// accepted again; New rebuilds the partial message from the log.
	restart()
	require.Equal(t, 1, c.Core(1).Stats().PartialMessages, "rebuilt from the log")
	half = false
	require.True(t, c.RunUntil(5*time.Second, c.AllDelivered(1)))
	requireDeliveredOnce(t, c.Delivered(1), m)
	s := c.Core(1).Stats()
	require.Equal(t, c.Core(0).Stats().Chunks-got, s.Chunks, "only the missing chunks were accepted")
	require.Equal(t, uint64(40), s.Duplicates, "the others were refused by the filter")

	// Restart again while the publisher still offers every chunk: nothing
	// is delivered twice, and nothing is left partial.
	restart()
	require.Zero(t, c.Core(1).Stats().PartialMessages)
	c.Run(3 * time.Second)
	require.Len(t, c.Delivered(1), 1)
	require.Zero(t, c.Core(1).Stats().Delivered)
	require.NotZero(t, c.Core(1).Stats().Duplicates)
}
