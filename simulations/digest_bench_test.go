package simulations

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkDigestChoice measures, on the real protocol, the bytes per pull
// of hearsay's digest (per-origin held sequence ranges) and sets beside them
// what the alternatives would cost for the same holdings at every pull:
//   - a Bloom filter of the IDs in the requester's propagation cache, at a
//     1% false-positive rate (9.59 bits per ID; Solana's CRDS pull);
//   - no digest at all, answering every pull with the whole cache
//     (protocol-diver/go-gossip).
//
// Two workloads, 50 nodes: many origins at a low rate, and one origin at a
// high rate. go test -run XXX -bench DigestChoice ./simulations
func BenchmarkDigestChoice(b *testing.B) {
	for _, w := range []struct {
		name    string
		origins int
		rate    int // messages per second, cluster-wide
	}{
		{"50origins-100msgps", 50, 100},
		{"1origin-2000msgps", 1, 2000},
	} {
		b.Run(w.name, func(b *testing.B) {
			for b.Loop() {
				digestRun(b, w.origins, w.rate)
			}
		})
	}
}

func digestRun(b *testing.B, origins, rate int) {
	const nodes, seconds = 50, 10
	s, err := New(Config{Nodes: nodes, Seed: 5})
	if err != nil {
		b.Fatal(err)
	}
	s.RunFor(time.Second)
	before := s.Totals()
	rng := rand.New(rand.NewPCG(5, 5))
	payload := make([]byte, 256)
	perStep := rate / 100
	var bloomBytes, wholeCacheBytes, samples float64
	for step := 0; step < seconds*100; step++ {
		for k := 0; k < perStep; k++ {
			if _, err := s.Publish(rng.IntN(origins), "bench.digest", payload); err != nil {
				b.Fatal(err)
			}
		}
		s.RunFor(10 * time.Millisecond)
		if step%5 == 0 { // sample the holdings every 50 ms
			for i := 0; i < s.Nodes(); i++ {
				st := s.Core(i).Stats()
				bloomBytes += math.Ceil(float64(st.CacheMessages) * 9.59 / 8)
				wholeCacheBytes += float64(st.CacheBytes)
				samples++
			}
		}
	}
	after := s.Totals()
	pulls := float64(after.PullsSent - before.PullsSent)
	b.ReportMetric(float64(after.PullBytesOut-before.PullBytesOut)/pulls, "ranges-B/pull")
	b.ReportMetric(bloomBytes/samples, "bloom1%-B/pull")
	b.ReportMetric(wholeCacheBytes/samples, "wholecache-B/answer")
	b.ReportMetric(float64(after.BytesOut-before.BytesOut)/float64(nodes*seconds*rate*len(payload)), "overhead-ratio")
}
