package gossip_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/hearsay-io/hearsay/filter"
	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/gossip/gossiptest"
	"github.com/hearsay-io/hearsay/merkle"
	"github.com/hearsay-io/hearsay/msglog"
	"github.com/hearsay-io/hearsay/wire"
)

// BenchmarkRetainedHeap measures the heap a node keeps per retained
// message: b.N messages of 256-byte payloads accepted by a core with the
// in-memory log and seen filter, once they have left the propagation
// cache, after a GC, divided by b.N. It reports the whole (heap-B/msg),
// the log's bodies (log-data-B/msg) and the Merkle tree (tree-B/msg, the
// same IDs in a tree of their own); the rest is the filter and the log's
// indexes. docs/anti-entropy.md quotes it with -benchtime 1000000x.
func BenchmarkRetainedHeap(b *testing.B) {
	log := msglog.NewMemory(0)
	seen := filter.NewMemory(filter.MemoryConfig{MaxEntries: max(b.N, 1)})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	c, err := gossip.New(gossip.Config{ID: gossiptest.ID(0), Peers: noPeers{}, Log: log, Filter: seen,
		Retention: gossip.MaxRetention, CacheMessages: 1 << 22, CacheBytes: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	origin, from := gossip.NodeID{0x11}, gossiptest.Addr(9)
	now := t0
	c.Tick(now)
	payload := make([]byte, 256)
	dg := wire.AppendHeader(nil, wire.Messages)
	for s := range b.N {
		dg = gossip.AppendMessage(dg, origin, uint64(s+1), now.UnixMilli(), "heap", payload)
		if len(dg) > 1100 || s == b.N-1 {
			c.Handle(now, from, dg)
			c.Ready() // delivered, and dropped: an application's business
			dg = wire.AppendHeader(dg[:0], wire.Messages)
		}
	}
	for range 60 { // past the cache's rounds (30 of 200 ms)
		now = now.Add(200 * time.Millisecond)
		c.Tick(now)
		c.Ready()
	}
	c.MerkleRoot() // settles the tree
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.N), "heap-B/msg")
	b.ReportMetric(float64(log.Bytes())/float64(b.N), "log-data-B/msg")
	if st := c.Stats(); st.CacheMessages != 0 || st.Delivered != uint64(b.N) {
		b.Fatalf("%d delivered, %d still cached", st.Delivered, st.CacheMessages)
	}

	tree, err := merkle.NewTree(merkle.DefaultTreeConfig())
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := log.ForEach(func(e msglog.Entry) bool { tree.InsertLater(merkle.ID(e.ID)); return true }); err != nil {
		b.Fatal(err)
	}
	tree.Root()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.N), "tree-B/msg")
	runtime.KeepAlive(tree)
	runtime.KeepAlive(c) // the core, its filter and log: measured above
	b.ReportMetric(0, "ns/op")
}
