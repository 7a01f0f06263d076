package gossip_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/hearsay-io/hearsay/filter"
	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/gossip/gossiptest"
	"github.com/hearsay-io/hearsay/msglog"
)

// BenchmarkRetainedHeap measures the heap a node keeps per retained
// message: b.N messages of 256-byte payloads accepted by a core with the
// in-memory log and seen filter, after a GC, divided by b.N. It reports
// the whole (heap-B/msg) and the share of the log's bodies
// (log-data-B/msg); the rest is the Merkle tree, the filter, the log's
// indexes and the core's cache (empty by then: CacheRounds passed).
// docs/anti-entropy.md quotes it with -benchtime 1000000x.
func BenchmarkRetainedHeap(b *testing.B) {
	log := msglog.NewMemory(0)
	seen := filter.NewMemory(filter.MemoryConfig{MaxEntries: max(b.N, 1)})
	c := gossiptest.New(b, gossiptest.Config{Nodes: 1, Instant: true, Core: func(i int, c *gossip.Config) {
		c.Log, c.Filter = log, seen
		c.Retention = gossip.MaxRetention
		c.CacheMessages = 1 << 22
		c.CacheBytes = 1 << 30
	}})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	feedOrigin(c, 0, gossip.NodeID{0x11}, "heap", 0, b.N, func(s int) []byte { return make([]byte, 256) })
	c.Run(10 * time.Second)           // past the cache's rounds (6 s)
	root, _ := c.Core(0).MerkleRoot() // settles the tree
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	_ = root
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.N), "heap-B/msg")
	b.ReportMetric(float64(log.Bytes())/float64(b.N), "log-data-B/msg")
	b.ReportMetric(0, "ns/op")
}
