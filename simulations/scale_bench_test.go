package simulations

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkScale runs one message to every node at 10^3 to 10^6 nodes
// (fanout 3, 200ms rounds, no loss) and reports rounds to 100%, duplicates
// and bytes per node, and memory. Run one size at a time, once:
//
//	go test -run XXX -bench 'Scale/nodes=100000$' -benchtime 1x ./simulations
//
// With HEARSAY_SIM_OUT set to a directory, each size also writes its
// summary.json, rounds.csv and delivery.png into a subdirectory of it.
func BenchmarkScale(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			for b.Loop() {
				rep, err := Broadcast(Config{Nodes: n, Seed: 1, MeasureMemory: true})
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
