package filter

import (
	"math"
	"time"
)

// DefaultMaxEntries is the MaxEntries a MemoryConfig gets when it leaves the
// field at zero.
const DefaultMaxEntries = 1 << 20

// MemoryConfig configures a Memory filter. The zero value is usable.
type MemoryConfig struct {
	// MaxEntries is the upper bound on the number of IDs held. Add returns
	// ErrFull once the filter holds this many; call Prune regularly so that
	// expired IDs make room. Default DefaultMaxEntries (1<<20) when 0 or
	// negative.
	MaxEntries int
}

// Memory is an exact, bounded, in-process SeenFilter.
//
// IDs live in a map from ID to expiry, and a min-heap ordered by expiry lets
// Prune remove k expired IDs in O(k log n) without scanning the rest. An
// empty Memory holds no map or heap at all, and both shrink after a Prune
// that leaves them mostly empty: the simulator creates one filter per
// simulated node, so idle filters must cost next to nothing. An empty
// filter costs about 64 bytes; one holding thousands of IDs or more costs
// about 65-90 bytes per ID (map and heap together).
//
// Memory is not safe for concurrent use; the caller serialises calls (the
// gossip core calls it from one goroutine at a time).
type Memory struct {
	max    int
	closed bool

	// expiry holds every ID present, with its expiry in Unix nanoseconds.
	// nil while empty.
	expiry map[ID]int64
	// peak is the largest len(expiry) since expiry was last allocated; Go
	// maps never give memory back, so Prune rebuilds the map once it has
	// shrunk well below its peak.
	peak int

	// heap is a binary min-heap on expiry. It may hold stale entries: when
	// Add extends the expiry of an ID already present it pushes a new entry
	// and leaves the old one, which Prune skips because it no longer
	// matches expiry[id]. Stale entries are bounded by compactHeap.
	heap []heapEntry
}

type heapEntry struct {
	expires int64 // Unix nanoseconds
	id      ID
}

// Sizes below which Memory does not bother shrinking its map and heap.
const (
	minShrinkMap  = 64
	minShrinkHeap = 64
)

// NewMemory returns an empty Memory filter. It allocates nothing beyond the
// Memory value itself until the first Add.
func NewMemory(cfg MemoryConfig) *Memory {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	return &Memory{max: cfg.MaxEntries}
}

// Add records id until expires. If id is already present, Add reports
// added=false and keeps the later of the two expiries, so an ID is always
// remembered at least until the latest expiry it was added with. A new ID
// is refused with ErrFull when the filter already holds MaxEntries IDs; Add
// never prunes on its own since it does not know the time.
func (m *Memory) Add(id ID, expires time.Time) (bool, error) {
	if m.closed {
		return false, ErrClosed
	}
	exp := unixNanos(expires)
	if old, ok := m.expiry[id]; ok {
		if exp > old {
			m.expiry[id] = exp
			m.push(heapEntry{expires: exp, id: id})
			m.compactHeap()
		}
		return false, nil
	}
	if len(m.expiry) >= m.max {
		return false, ErrFull
	}
	if m.expiry == nil {
		m.expiry = make(map[ID]int64)
	}
	m.expiry[id] = exp
	m.peak = max(m.peak, len(m.expiry))
	m.push(heapEntry{expires: exp, id: id})
	return true, nil
}

// Contains reports whether id is present. An ID whose expiry has passed is
// still present until a Prune removes it.
func (m *Memory) Contains(id ID) (bool, error) {
	if m.closed {
		return false, ErrClosed
	}
	_, ok := m.expiry[id]
	return ok, nil
}

// Prune forgets every ID whose expiry is strictly before now and returns how
// many it removed.
func (m *Memory) Prune(now time.Time) (int, error) {
	if m.closed {
		return 0, ErrClosed
	}
	cutoff := unixNanos(now)
	removed := 0
	for len(m.heap) > 0 && m.heap[0].expires < cutoff {
		e := m.pop()
		if exp, ok := m.expiry[e.id]; ok && exp == e.expires {
			delete(m.expiry, e.id)
			removed++
		}
		// Otherwise e is stale: its ID was extended to a later expiry.
	}
	m.shrink()
	return removed, nil
}

// Len returns the number of IDs held, expired or not; 0 after Close.
func (m *Memory) Len() int {
	return len(m.expiry)
}

// Close releases the filter's memory. Every later call returns ErrClosed.
func (m *Memory) Close() error {
	if m.closed {
		return ErrClosed
	}
	m.closed = true
	m.expiry, m.heap, m.peak = nil, nil, 0
	return nil
}

// shrink gives memory back after a Prune that emptied most of the filter.
func (m *Memory) shrink() {
	n := len(m.expiry)
	if n == 0 {
		m.expiry, m.heap, m.peak = nil, nil, 0
		return
	}
	if m.peak >= minShrinkMap && n <= m.peak/4 {
		fresh := make(map[ID]int64, n)
		for id, exp := range m.expiry {
			fresh[id] = exp
		}
		m.expiry, m.peak = fresh, n
	}
	if c := cap(m.heap); c >= minShrinkHeap && len(m.heap) <= c/4 {
		m.heap = append(make([]heapEntry, 0, 2*len(m.heap)), m.heap...)
	}
}

// compactHeap drops stale entries once they outnumber live ones, so that
// repeated extensions cannot grow the heap without bound. The rebuild costs
// O(n) and happens at most once per n extensions.
func (m *Memory) compactHeap() {
	if len(m.heap) < minShrinkHeap || len(m.heap) <= 2*len(m.expiry) {
		return
	}
	h := make([]heapEntry, 0, 2*len(m.expiry))
	for id, exp := range m.expiry {
		h = append(h, heapEntry{expires: exp, id: id})
	}
	m.heap = h
	for i := len(h)/2 - 1; i >= 0; i-- {
		m.down(i)
	}
}

// push, pop, up and down implement a binary min-heap on heapEntry.expires.
// They are written out rather than using container/heap, whose interface
// boxes every pushed value.

func (m *Memory) push(e heapEntry) {
	m.heap = append(m.heap, e)
	m.up(len(m.heap) - 1)
}

func (m *Memory) pop() heapEntry {
	h := m.heap
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	m.heap = h[:last]
	if last > 0 {
		m.down(0)
	}
	return top
}

func (m *Memory) up(i int) {
	h := m.heap
	for i > 0 {
		parent := (i - 1) / 2
		if h[parent].expires <= h[i].expires {
			return
		}
		h[parent], h[i] = h[i], h[parent]
		i = parent
	}
}

func (m *Memory) down(i int) {
	h := m.heap
	n := len(h)
	for {
		least := i
		if l := 2*i + 1; l < n && h[l].expires < h[least].expires {
			least = l
		}
		if r := 2*i + 2; r < n && h[r].expires < h[least].expires {
			least = r
		}
		if least == i {
			return
		}
		h[least], h[i] = h[i], h[least]
		i = least
	}
}

var (
	minNanoTime = time.Unix(0, math.MinInt64)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

// unixNanos converts t to Unix nanoseconds, clamping times outside the range
// an int64 can hold (before 1677 or after 2262) instead of overflowing, so
// that order is preserved for every time the gossip core can produce.
func unixNanos(t time.Time) int64 {
	switch {
	case t.Before(minNanoTime):
		return math.MinInt64
	case t.After(maxNanoTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}
