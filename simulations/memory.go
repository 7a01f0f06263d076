package simulations

import (
	"runtime"
)

// MemoryReport is the memory a run took, from the Go runtime's statistics
// (runtime.MemStats).
type MemoryReport struct {
	// Baseline is HeapInuse after a collection, before the nodes were built.
	Baseline uint64 `json:"baseline_heap_inuse"`
	// HeapInuse and Sys are measured after a collection at the end of the
	// run, with the simulator still alive.
	HeapInuse uint64 `json:"heap_inuse"`
	Sys       uint64 `json:"sys"`
	// PeakHeapInuse and PeakSys are the largest values seen while the run
	// went on, sampled every 65,536 nodes built and at every round.
	PeakHeapInuse uint64 `json:"peak_heap_inuse"`
	PeakSys       uint64 `json:"peak_sys"`
	// PerNode is (HeapInuse − Baseline) / Nodes: what one simulated node
	// costs, its core, seen filter, network endpoint and delivery records
	// included. PeakPerNode is the same from PeakHeapInuse.
	PerNode     float64 `json:"per_node_bytes"`
	PeakPerNode float64 `json:"peak_per_node_bytes"`
}

// memoryProbe samples the runtime's memory statistics.
type memoryProbe struct {
	baseline          uint64
	peakHeap, peakSys uint64
}

func newMemoryProbe() *memoryProbe {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return &memoryProbe{baseline: ms.HeapInuse, peakHeap: ms.HeapInuse, peakSys: ms.Sys}
}

func (p *memoryProbe) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p.peakHeap = max(p.peakHeap, ms.HeapInuse)
	p.peakSys = max(p.peakSys, ms.Sys)
}

// report collects garbage and reports; s is kept alive until then.
func (p *memoryProbe) report(nodes int, s *Simulator) *MemoryReport {
	p.sample()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	runtime.KeepAlive(s)
	r := &MemoryReport{
		Baseline:      p.baseline,
		HeapInuse:     ms.HeapInuse,
		Sys:           ms.Sys,
		PeakHeapInuse: p.peakHeap,
		PeakSys:       max(p.peakSys, ms.Sys),
	}
	if ms.HeapInuse > p.baseline {
		r.PerNode = float64(ms.HeapInuse-p.baseline) / float64(nodes)
	}
	if p.peakHeap > p.baseline {
		r.PeakPerNode = float64(p.peakHeap-p.baseline) / float64(nodes)
	}
	return r
}
