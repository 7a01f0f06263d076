package simulations

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
)

// BenchmarkScale runs one message to every node at 10^3 to 10^6 nodes
// (fanout 3, 200ms rounds, no loss) and reports rounds to 100%, duplicates
// and bytes per node, and memory. Run one size at a time, once:
//
//	go test -run XXX -bench 'Scale/nodes=100000$' -benchtime 1x ./simulations
//
// With HEARSAY_SIM_OUT set to a directory, each size also writes its
// files (Report.WriteFiles) into a subdirectory of it. HEARSAY_SIM_LONG_POLL
// sets the core's MaxPark as `hearsay simulate --long-poll` does (0:
// round-paced pulls, which docs/simulations.md's figures compare with
// theory); unset, the default.
func BenchmarkScale(b *testing.B) {
	gcfg := benchGossip(b)
	for _, n := range []int{1_000, 10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			for b.Loop() {
				rep, err := Broadcast(Config{Nodes: n, Seed: 1, MeasureMemory: true, Gossip: gcfg})
				if err != nil {
					b.Fatal(err)
				}
				if rep.RoundsToFull < 0 {
					b.Fatalf("not delivered everywhere: %+v", rep.Summary())
				}
				m := rep.Memory
				b.ReportMetric(float64(rep.RoundsToFull), "rounds")
				b.ReportMetric(rep.DuplicatesPerNode(), "dups/node")
				b.ReportMetric(rep.BytesPerNode(), "B-sent/node")
				b.ReportMetric(rep.Wall.Seconds(), "wall-s")
				b.ReportMetric(float64(m.PeakHeapInuse)/(1<<20), "peak-heap-MiB")
				b.ReportMetric(float64(m.PeakSys)/(1<<20), "peak-sys-MiB")
				b.ReportMetric(m.PerNode, "heap-B/node")
				b.ReportMetric(m.PeakPerNode, "peak-heap-B/node")
				if dir := os.Getenv("HEARSAY_SIM_OUT"); dir != "" {
					if _, err := rep.WriteFiles(filepath.Join(dir, fmt.Sprintf("nodes-%d", n))); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// DefaultBenchDHT is the DHT model BenchmarkScaleDHT runs unless
// HEARSAY_SIM_PEERS says otherwise: K 8 and a sample pool of 16, light
// enough for 100,000 nodes in 8 GB and a quarter of an hour
// (docs/simulations.md).
const DefaultBenchDHT = "dht:k=8,pool=16"

// BenchmarkScaleDHT is BenchmarkScale with the DHT peer model: every node
// runs the DHT registry's table, joins through node 0 at the start and
// fills its table for the warm-up (10s) before the publication. It reports
// rounds to 100% (from the publication) beside full membership's for the
// same seed, the tables at the publication, wall time and memory, and
// fails if the DHT's rounds exceed 1.5 times full membership's
// (TestDHTAgainstFullMembership checks the same at 1,000 nodes). Run one
// size at a time, once:
//
//	go test -run XXX -bench 'ScaleDHT/nodes=10000$' -benchtime 1x -timeout 1h ./simulations
//	GOMEMLIMIT=8GiB go test -run XXX -bench 'ScaleDHT/nodes=100000$' -benchtime 1x -timeout 2h ./simulations
//
// HEARSAY_SIM_PEERS sets another DHT model (dht:pool=128, ...);
// HEARSAY_SIM_OUT writes each size's files, as for BenchmarkScale, under
// dht-nodes-N; HEARSAY_SIM_LONG_POLL as for BenchmarkScale.
func BenchmarkScaleDHT(b *testing.B) {
	gcfg := benchGossip(b)
	spec := DefaultBenchDHT
	if s := os.Getenv("HEARSAY_SIM_PEERS"); s != "" {
		spec = s
	}
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			peers, err := ParsePeers(spec, n, 1)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				full, err := Broadcast(Config{Nodes: n, Seed: 1, Gossip: gcfg})
				if err != nil {
					b.Fatal(err)
				}
				rep, err := Broadcast(Config{Nodes: n, Seed: 1, Peers: peers, MeasureMemory: true, Gossip: gcfg})
				if err != nil {
					b.Fatal(err)
				}
				if rep.RoundsToFull < 0 {
					b.Fatalf("not delivered everywhere: %+v", rep.Summary())
				}
				m, d := rep.Memory, rep.Summary().DHT
				if float64(rep.RoundsToFull) > 1.5*float64(full.RoundsToFull) {
					b.Errorf("%d rounds with the DHT, more than 1.5 times full membership's %d", rep.RoundsToFull, full.RoundsToFull)
				}
				b.ReportMetric(float64(rep.RoundsToFull), "rounds")
				b.ReportMetric(float64(full.RoundsToFull), "full-rounds")
				b.ReportMetric(float64(d.Joined), "joined")
				b.ReportMetric(d.PeersMean, "contacts/node")
				b.ReportMetric(d.WarmupDatagramsPerNode, "dht-dgrams/node")
				b.ReportMetric(rep.Wall.Seconds(), "wall-s")
				b.ReportMetric(float64(m.PeakHeapInuse)/(1<<20), "peak-heap-MiB")
				b.ReportMetric(float64(m.PeakSys)/(1<<20), "peak-sys-MiB")
				b.ReportMetric(m.PerNode, "heap-B/node")
				b.ReportMetric(m.PeakPerNode, "peak-heap-B/node")
				b.Logf("%s, %d nodes: %d rounds (full membership: %d); at the publication %+v", peers, n, rep.RoundsToFull, full.RoundsToFull, *d)
				if dir := os.Getenv("HEARSAY_SIM_OUT"); dir != "" {
					if _, err := rep.WriteFiles(filepath.Join(dir, fmt.Sprintf("dht-nodes-%d", n))); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// benchGossip is the core's template for the scale benchmarks: MaxPark from
// HEARSAY_SIM_LONG_POLL (a duration; 0: off), else the default.
func benchGossip(b *testing.B) gossip.Config {
	v := os.Getenv("HEARSAY_SIM_LONG_POLL")
	if v == "" {
		return gossip.Config{}
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		b.Fatalf("HEARSAY_SIM_LONG_POLL=%q: want a duration, 0 for off", v)
	}
	if d == 0 {
		d = -1
	}
	return gossip.Config{MaxPark: d}
}
