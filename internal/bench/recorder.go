package bench

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
)

// payloadHeader is the part of a payload the benchmark reads back: the
// message's index (u64be) and its send time (u64be, nanoseconds since the
// recorder's start). Padding fills the rest up to Config.Size.
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

// setSent rewrites a payload's send time, for a publish retried after
// backpressure.
func setSent(payload []byte, sent time.Duration) {
	binary.BigEndian.PutUint64(payload[8:], uint64(sent))
}

// recorder records which node received which message, and when. Nodes
// report from their own goroutines; the results are read once they stopped.
type recorder struct {
	start    time.Time // every time below is counted from here, on the monotonic clock
	nodes    int
	messages int
	// arrived[node*messages+index] is the arrival time plus one; zero: not
	// (yet) arrived. The first arrival of a message on a node wins.
	arrived []atomic.Int64
	// sent[index] is the time of the publish that succeeded.
	sent []atomic.Int64
	// published[index] is the time that publish returned.
	published []atomic.Int64

	deliveries atomic.Int64
	complete   chan struct{} // closed when every node holds every message
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
// whether it is the first time. It is the recorder's arrivals method.
func (r *recorder) delivered(node, index int) bool {
	return r.deliveredAt(node, index, r.now())
}

// deliveredAt records that node received message index at at, and reports
// whether it is the first time. Indices out of range are ignored.
func (r *recorder) deliveredAt(node, index int, at time.Duration) bool {
	if node < 0 || node >= r.nodes || index < 0 || index >= r.messages {
		return false
	}
	if !r.arrived[node*r.messages+index].CompareAndSwap(0, int64(max(at, 0))+1) {
		return false
	}
	if r.deliveries.Add(1) == int64(r.nodes*r.messages) {
		r.closeOnce.Do(func() { close(r.complete) })
	}
	return true
}

// sinceStart turns a wall-clock time, in nanoseconds since the Unix epoch,
// into a time on the recorder's clock. Node processes report their times
// so: the machine's wall clock is the only clock they share with this
// process.
func (r *recorder) sinceStart(unixNano int64) time.Duration {
	return time.Duration(unixNano - r.start.UnixNano())
}

// messageIndex returns a payload's message index, and false for a payload
// that is not one of the run's messages of messages.
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
