package msglog

import (
	"container/heap"
	"time"
)

// Memory is an in-memory Log.
type Memory struct {
	maxBytes int64
	bytes    int64
	entries  []*memEntry // by Seq; removed entries are nil until compaction
	first    int         // index of the first possibly live entry
	byID     map[ID]*memEntry
	byTime   createdHeap
	lastSeq  uint64
	horizon  time.Time
	closed   bool
}

type memEntry struct {
	Entry
	index int // in entries
	hpos  int // in byTime
}

// NewMemory returns an empty log bounded to maxBytes (0: DefaultMaxBytes).
func NewMemory(maxBytes int64) *Memory {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	return &Memory{maxBytes: maxBytes, byID: map[ID]*memEntry{}}
}

// Append implements Log.
func (m *Memory) Append(id ID, created time.Time, data []byte) ([]ID, error) {
	if m.closed {
		return nil, ErrClosed
	}
	if _, ok := m.byID[id]; ok {
		return nil, nil
	}
	m.lastSeq++
	// data is kept, not copied: see Log.Append.
	e := &memEntry{Entry: Entry{Seq: m.lastSeq, ID: id, Created: created, Data: data[:len(data):len(data)]}}
	e.index = len(m.entries)
	m.entries = append(m.entries, e)
	m.byID[id] = e
	heap.Push(&m.byTime, e)
	m.bytes += int64(len(data))
	var evicted []ID
	for m.bytes > m.maxBytes && len(m.byID) > 1 {
		old := heap.Pop(&m.byTime).(*memEntry)
		m.remove(old)
		if old.Created.After(m.horizon) {
			m.horizon = old.Created
		}
		evicted = append(evicted, old.ID)
	}
	m.compact()
	return evicted, nil
}

func (m *Memory) remove(e *memEntry) {
	delete(m.byID, e.ID)
	m.entries[e.index] = nil
	m.bytes -= int64(len(e.Data))
}

// compact drops the removed prefix once it is half the slice.
func (m *Memory) compact() {
	for m.first < len(m.entries) && m.entries[m.first] == nil {
		m.first++
	}
	if m.first > 64 && 2*m.first > len(m.entries) {
		live := m.entries[m.first:]
		fresh := make([]*memEntry, len(live), max(len(live), 16))
		copy(fresh, live)
		for i, e := range fresh {
			if e != nil {
				e.index = i
			}
		}
		m.entries, m.first = fresh, 0
	}
}

// Get implements Log.
func (m *Memory) Get(id ID) ([]byte, bool, error) {
	if m.closed {
		return nil, false, ErrClosed
	}
	e, ok := m.byID[id]
	if !ok {
		return nil, false, nil
	}
	return e.Data, true, nil
}

// Contains implements Log.
func (m *Memory) Contains(id ID) (bool, error) {
	if m.closed {
		return false, ErrClosed
	}
	_, ok := m.byID[id]
	return ok, nil
}

// Prune implements Log.
func (m *Memory) Prune(cutoff time.Time) ([]ID, error) {
	if m.closed {
		return nil, ErrClosed
	}
	var removed []ID
	for m.byTime.Len() > 0 && m.byTime[0].Created.Before(cutoff) {
		e := heap.Pop(&m.byTime).(*memEntry)
		m.remove(e)
		removed = append(removed, e.ID)
	}
	m.compact()
	return removed, nil
}

// After implements Log.
func (m *Memory) After(id ID, fn func(Entry) bool) (bool, error) {
	if m.closed {
		return false, ErrClosed
	}
	e, ok := m.byID[id]
	if !ok {
		return false, nil
	}
	m.from(e.index+1, fn)
	return true, nil
}

// ForEach implements Log.
func (m *Memory) ForEach(fn func(Entry) bool) error {
	if m.closed {
		return ErrClosed
	}
	m.from(m.first, fn)
	return nil
}

func (m *Memory) from(i int, fn func(Entry) bool) {
	for ; i < len(m.entries); i++ {
		if e := m.entries[i]; e != nil && !fn(e.Entry) {
			return
		}
	}
}

// Horizon implements Log.
func (m *Memory) Horizon() (time.Time, error) {
	if m.closed {
		return time.Time{}, ErrClosed
	}
	return m.horizon, nil
}

// LastSeq implements Log.
func (m *Memory) LastSeq() uint64 { return m.lastSeq }

// Len implements Log.
func (m *Memory) Len() int { return len(m.byID) }

// Bytes implements Log.
func (m *Memory) Bytes() int64 { return m.bytes }

// Close implements Log.
func (m *Memory) Close() error {
	m.closed = true
	m.entries, m.byID, m.byTime = nil, nil, nil
	return nil
}

// createdHeap orders entries by creation time, for pruning.
type createdHeap []*memEntry

func (h createdHeap) Len() int { return len(h) }
func (h createdHeap) Less(i, j int) bool {
	if !h[i].Created.Equal(h[j].Created) {
		return h[i].Created.Before(h[j].Created)
	}
	return h[i].Seq < h[j].Seq
}
func (h createdHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hpos, h[j].hpos = i, j
}
func (h *createdHeap) Push(x any) {
	e := x.(*memEntry)
	e.hpos = len(*h)
	*h = append(*h, e)
}
func (h *createdHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
