package main

import (
	"encoding/binary"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// payloadHeader is the part of a payload read back: the message's index
// (u64be) and its send time (u64be, nanoseconds since the recorder's
// start). Padding fills the rest up to Config.Size. The layout is hearsay
// bench's.
const payloadHeader = 16

// newPayload returns message index's payload of size bytes, sent at sent.
func newPayload(index int, sent time.Duration, size int) []byte {
	p := make([]byte, size)
	binary.BigEndian.PutUint64(p, uint64(index))
	binary.BigEndian.PutUint64(p[8:], uint64(sent))
	for i := payloadHeader; i < size; i++ {
		p[i] = byte(i) // not zeros, so that no layer can squeeze them
	}
	return p
}

// messageIndex returns a payload's message index, and false for a payload
// that is not one of the run's messages.
func messageIndex(payload []byte, messages int) (int, bool) {
	if len(payload) < payloadHeader {
		return 0, false
	}
	index := binary.BigEndian.Uint64(payload)
	if index >= uint64(messages) {
		return 0, false
	}
	return int(index), true
}

// recorder records which host received which message, and when, on this
// process's monotonic clock. Hosts report from their own goroutines.
type recorder struct {
	start    time.Time
	nodes    int
	messages int
	// arrived[node*messages+index] is the arrival time plus one; zero: not
	// (yet) arrived. The first arrival wins.
	arrived []atomic.Int64
	// sent[index] is when message index was handed to Publish.
	sent []atomic.Int64
	// published[index] is when that Publish returned.
	published []atomic.Int64

	deliveries atomic.Int64
	complete   chan struct{} // closed when every host holds every message
	closeOnce  sync.Once
}

func newRecorder(nodes, messages int) *recorder {
	return &recorder{
		start: time.Now(), nodes: nodes, messages: messages,
		arrived:   make([]atomic.Int64, nodes*messages),
		sent:      make([]atomic.Int64, messages),
		published: make([]atomic.Int64, messages),
		complete:  make(chan struct{}),
	}
}

// now is the time since the recorder's start.
func (r *recorder) now() time.Duration { return time.Since(r.start) }

// delivered records that node received message index now, and reports
// whether it is the first time. Indices out of range are ignored.
func (r *recorder) delivered(node, index int) bool {
	if node < 0 || node >= r.nodes || index < 0 || index >= r.messages {
		return false
	}
	if !r.arrived[node*r.messages+index].CompareAndSwap(0, int64(r.now())+1) {
		return false
	}
	if r.deliveries.Add(1) == int64(r.nodes)*int64(r.messages) {
		r.closeOnce.Do(func() { close(r.complete) })
	}
	return true
}

// summarize fills in res's publish, delivery and latency figures from what
// was recorded up to end.
func (r *recorder) summarize(res *Result, origins []int, end time.Duration) {
	first, lastPublished := time.Duration(-1), time.Duration(0)
	for i := range r.messages {
		if p := time.Duration(r.published[i].Load()); p > 0 && p <= end {
			res.Published++
			lastPublished = max(lastPublished, p)
			if s := time.Duration(r.sent[i].Load()); first < 0 || s < first {
				first = s
			}
		}
	}
	if first < 0 {
		return
	}
	res.PublishTime = lastPublished - first
	var last time.Duration
	latencies := make([]time.Duration, 0, r.nodes*r.messages)
	for node := range r.nodes {
		for i := range r.messages {
			a := r.arrived[node*r.messages+i].Load()
			if a == 0 || time.Duration(a-1) > end {
				continue
			}
			at := time.Duration(a - 1)
			res.Deliveries++
			last = max(last, at)
			if node != origins[i%len(origins)] {
				latencies = append(latencies, at-time.Duration(r.sent[i].Load()))
			}
		}
	}
	if res.Complete() {
		res.TimeToFull = last - first
	}
	res.LatencySamples = len(latencies)
	if len(latencies) > 0 {
		slices.Sort(latencies)
		res.LatencyP50 = percentile(latencies, 0.50)
		res.LatencyP99 = percentile(latencies, 0.99)
		res.LatencyMax = latencies[len(latencies)-1]
	}
}

// percentile is the nearest-rank percentile p (0 < p ≤ 1) of sorted values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}
