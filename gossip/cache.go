package gossip

import (
	"sort"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// cacheEntry is a message in the propagation cache.
type cacheEntry struct {
	msg   Message
	enc   []byte // the message's wire encoding, ready to copy into answers; msg's Topic and Payload alias it
	round uint64 // the round in which it entered the cache
	at    int64  // when it entered, in nanoseconds of the core's clock (Core.nowNanos)
	bySub bool   // it came from a subscription (subscribe.go)
	dead  bool   // evicted; still in its origin's index until the next compaction
}

// originEntries indexes one origin's cached messages by sequence number, so
// that a pull is answered by looking up the gaps in the requester's ranges
// rather than by scanning the cache.
type originEntries struct {
	origin  NodeID
	tag     OriginTag
	entries []*cacheEntry // sorted by seq
	dead    int
}

// propagationCache holds the messages this node offers to pullers, each for
// a fixed number of rounds after it arrived. Since every entry lives the same
// number of rounds, arrival order is expiry order: the LRU's oldest entry is
// always the next to expire, so expiry costs O(1) per message and needs no
// timer. Entries are never read through Get, which keeps LRU order equal to
// arrival order. The LRU's count bound and our byte bound are checked before
// every insert; a cache full of unexpired entries refuses new ones
// (backpressure) instead of evicting a message that is still spreading.
type propagationCache struct {
	lru         *simplelru.LRU[MessageID, *cacheEntry]
	maxMessages int
	maxBytes    int
	bytes       int
	origins     []*originEntries // in order of first appearance: deterministic iteration
	byOrigin    map[NodeID]*originEntries
}

func newPropagationCache(maxMessages, maxBytes int) *propagationCache {
	c := &propagationCache{maxMessages: maxMessages, maxBytes: maxBytes}
	// NewLRU fails only for a non-positive size, which Config.validate excludes.
	c.lru, _ = simplelru.NewLRU[MessageID, *cacheEntry](maxMessages, c.onEvict)
	return c
}

func (c *propagationCache) onEvict(_ MessageID, e *cacheEntry) {
	e.dead = true
	c.bytes -= len(e.enc)
	oe := c.byOrigin[e.msg.Origin]
	oe.dead++
	if oe.dead > 8 && oe.dead*2 > len(oe.entries) {
		oe.compact()
	}
}

func (oe *originEntries) compact() {
	live := make([]*cacheEntry, 0, len(oe.entries)-oe.dead)
	for _, e := range oe.entries {
		if !e.dead {
			live = append(live, e)
		}
	}
	oe.entries, oe.dead = live, 0
}

// hasRoom reports whether an entry of size bytes fits without evicting an
// unexpired one.
func (c *propagationCache) hasRoom(size int) bool {
	return c.lru.Len() < c.maxMessages && c.bytes+size <= c.maxBytes
}

// hasRoomFor reports whether n entries of size bytes in all fit without
// evicting an unexpired one.
func (c *propagationCache) hasRoomFor(n, size int) bool {
	return c.lru.Len()+n <= c.maxMessages && c.bytes+size <= c.maxBytes
}

// canHold reports whether n entries of size bytes could fit in the empty cache.
func (c *propagationCache) canHold(n, size int) bool { return n <= c.maxMessages && size <= c.maxBytes }

func (c *propagationCache) contains(id MessageID) bool { return c.lru.Contains(id) }

// peek returns the entry of id, if cached, without touching the LRU order.
func (c *propagationCache) peek(id MessageID) (*cacheEntry, bool) { return c.lru.Peek(id) }

func (c *propagationCache) add(e *cacheEntry) {
	if c.byOrigin == nil {
		c.byOrigin = make(map[NodeID]*originEntries)
	}
	oe := c.byOrigin[e.msg.Origin]
	if oe == nil {
		oe = &originEntries{origin: e.msg.Origin, tag: TagOf(e.msg.Origin)}
		c.byOrigin[e.msg.Origin] = oe
		c.origins = append(c.origins, oe)
	}
	n := len(oe.entries)
	if n == 0 || oe.entries[n-1].msg.Seq <= e.msg.Seq {
		oe.entries = append(oe.entries, e)
	} else {
		i := sort.Search(n, func(i int) bool { return oe.entries[i].msg.Seq > e.msg.Seq })
		oe.entries = append(oe.entries, nil)
		copy(oe.entries[i+1:], oe.entries[i:])
		oe.entries[i] = e
	}
	c.bytes += len(e.enc)
	c.lru.Add(e.msg.ID, e)
}

// expire removes the entries that entered before round minRound, and drops
// the index of origins left with no live entries.
func (c *propagationCache) expire(minRound uint64) {
	for {
		_, e, ok := c.lru.GetOldest()
		if !ok || e.round >= minRound {
			break
		}
		c.lru.RemoveOldest()
	}
	kept := c.origins[:0]
	for _, oe := range c.origins {
		if len(oe.entries) == oe.dead {
			delete(c.byOrigin, oe.origin)
			continue
		}
		kept = append(kept, oe)
	}
	clear(c.origins[len(kept):])
	c.origins = kept
}

// forEachMissing calls fn, in sequence order, for each live entry whose
// sequence number lies outside held (sorted, disjoint ranges), until fn
// returns false. It reports whether it went through all of them.
func (oe *originEntries) forEachMissing(held []SeqRange, fn func(*cacheEntry) bool) bool {
	var lo uint64
	for i := 0; i <= len(held); i++ {
		hi := ^uint64(0)
		if i < len(held) {
			hi = held[i].First
		}
		if hi > lo && !oe.forEachIn(lo, hi, fn) {
			return false
		}
		if i < len(held) {
			lo = held[i].End
		}
	}
	return true
}

// forEachIn calls fn for each live entry with lo <= seq < hi (hi = MaxUint64
// means no upper bound).
func (oe *originEntries) forEachIn(lo, hi uint64, fn func(*cacheEntry) bool) bool {
	es := oe.entries
	i := sort.Search(len(es), func(i int) bool { return es[i].msg.Seq >= lo })
	for ; i < len(es); i++ {
		e := es[i]
		if hi != ^uint64(0) && e.msg.Seq >= hi {
			break
		}
		if !e.dead && !fn(e) {
			return false
		}
	}
	return true
}
