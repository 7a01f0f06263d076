package dht

import (
	"net/netip"
	"slices"

	"github.com/hearsay-io/hearsay/gossip"
)

// contact is a node in the table, in the sample pool, or both. Times are
// Unix nanoseconds, 0 for never: a simulator holds millions of contacts.
type contact struct {
	id       gossip.NodeID
	addr     netip.AddrPort
	lastSeen int64  // its last answer; 0 if it never answered
	nextPing int64  // when to ping it if it stays silent
	heapIdx  int32  // its place in the ping schedule; -1 if none
	fails    int16  // consecutive unanswered requests
	bucket   int8   // its bucket, or -1 when only in the sample pool
	poolRefs uint16 // sample-pool regions that list it (at most maxRegions)
}

func newContact(id gossip.NodeID, addr netip.AddrPort) *contact {
	return &contact{id: id, addr: addr, heapIdx: -1, bucket: -1}
}

// answering reports whether c answered its last request: only such
// contacts are handed to gossip and to other nodes.
func (c *contact) answering() bool { return c.fails == 0 && c.lastSeen != 0 }

func (c *contact) asContact() Contact { return Contact{ID: c.id, Addr: c.addr} }

// replacement is a contact that answered us while its bucket was full.
type replacement struct {
	Contact
	seen int64 // Unix nanoseconds
}

// bucket holds the contacts whose IDs share exactly its index's number of
// leading bits with ours.
type bucket struct {
	entries      []*contact    // least recently seen first
	replacements []replacement // most recent last
	refreshed    int64         // when a lookup last went through it, Unix nanoseconds
}

// seen records that id answered from addr, and returns its contact if it
// is in the table or the pool.
func (t *Table) seen(id gossip.NodeID, addr netip.AddrPort) *contact {
	c := t.contacts[id]
	if c == nil {
		c = newContact(id, addr)
		if !t.insert(c) {
			return nil
		}
	} else {
		if c.addr != addr {
			c.addr = addr
			t.dirty = true
		}
		if c.bucket < 0 {
			t.insert(c) // a pool contact: into the table if there is room
		}
	}
	if c.fails != 0 || c.lastSeen == 0 {
		t.dirty = true
	}
	c.lastSeen = t.nowNs
	c.fails = 0
	c.nextPing = t.nowNs + int64(t.cfg.PingInterval)
	t.schedule.update(c)
	if c.bucket >= 0 {
		b := &t.buckets[c.bucket]
		if i := slices.Index(b.entries, c); i >= 0 && i != len(b.entries)-1 {
			copy(b.entries[i:], b.entries[i+1:])
			b.entries[len(b.entries)-1] = c
		}
	}
	return c
}

// insert puts a contact that just answered into its bucket if there is
// room, or in place of a contact that failed its last request. Otherwise
// it becomes a replacement and insert reports false. A contact already in
// the pool joins the table the same way.
func (t *Table) insert(c *contact) bool {
	idx := commonPrefix(t.cfg.Self, c.id)
	if idx >= IDBits {
		return false
	}
	for len(t.buckets) <= idx {
		t.buckets = append(t.buckets, bucket{})
	}
	b := &t.buckets[idx]
	if len(b.entries) >= t.cfg.K {
		// Classic Kademlia keeps old contacts, which are likelier to stay,
		// and replaces one only when it does not answer.
		var suspect *contact
		for _, e := range b.entries {
			if e.fails > 0 && (suspect == nil || e.lastSeen < suspect.lastSeen) {
				suspect = e
			}
		}
		if suspect == nil {
			b.addReplacement(replacement{Contact: c.asContact(), seen: t.nowNs}, t.cfg.K/2)
			return false
		}
		t.removeFromBucket(suspect, false)
		t.stats.Replaced++
	}
	b.entries = append(b.entries, c)
	c.bucket = int8(idx)
	t.contacts[c.id] = c
	t.dirty = true
	return true
}

func (b *bucket) addReplacement(r replacement, limit int) {
	b.replacements = slices.DeleteFunc(b.replacements, func(x replacement) bool { return x.ID == r.ID })
	if len(b.replacements) >= max(limit, 1) {
		b.replacements = slices.Delete(b.replacements, 0, 1)
	}
	b.replacements = append(b.replacements, r)
}

// removeFromBucket takes c out of its bucket and, if promote, puts the
// freshest replacement in its place; c is forgotten unless the pool lists
// it.
func (t *Table) removeFromBucket(c *contact, promote bool) {
	if c.bucket < 0 {
		return
	}
	b := &t.buckets[c.bucket]
	b.entries = slices.DeleteFunc(b.entries, func(e *contact) bool { return e == c })
	c.bucket = -1
	if c.poolRefs == 0 {
		t.forget(c)
	}
	t.dirty = true
	for promote && len(b.replacements) > 0 && len(b.entries) < t.cfg.K {
		r := b.replacements[len(b.replacements)-1]
		b.replacements = b.replacements[:len(b.replacements)-1]
		if r.ID == c.id {
			continue
		}
		n := t.contacts[r.ID]
		if n == nil {
			n = newContact(r.ID, r.Addr)
			n.lastSeen = r.seen
			t.contacts[n.id] = n
		} else if n.bucket >= 0 {
			continue
		}
		n.bucket = int8(commonPrefix(t.cfg.Self, n.id))
		b.entries = append([]*contact{n}, b.entries...) // the least recently seen
		// Make sure it is still there.
		n.nextPing = t.nowNs
		t.schedule.update(n)
	}
}

// evict forgets c entirely: table and pool.
func (t *Table) evict(c *contact) {
	t.stats.Evicted++
	if c.poolRefs > 0 {
		t.pool.remove(t, c)
	}
	if c.bucket >= 0 {
		t.removeFromBucket(c, true)
	}
	t.forget(c)
	t.dirty = true
}

// forget drops a contact that is in neither the table nor the pool.
func (t *Table) forget(c *contact) {
	if t.contacts[c.id] == c {
		delete(t.contacts, c.id)
	}
	t.schedule.remove(c)
}

// bucketLen is the number of contacts in bucket i.
func (t *Table) bucketLen(i int) int {
	if i >= len(t.buckets) {
		return 0
	}
	return len(t.buckets[i].entries)
}

// failed records that c did not answer a request.
func (t *Table) failed(c *contact) {
	c.fails++
	if c.fails == 1 {
		t.dirty = true
	}
	switch {
	case int(c.fails) >= t.cfg.FailLimit:
		t.evict(c)
	case c.bucket >= 0 && len(t.buckets[c.bucket].replacements) > 0:
		t.stats.Replaced++
		t.removeFromBucket(c, true)
		if c.poolRefs > 0 {
			t.retry(c)
		}
	default:
		t.retry(c)
	}
}

// retry schedules another ping of a contact that failed, backing off.
func (t *Table) retry(c *contact) {
	wait := t.cfg.RequestTimeout << min(c.fails-1, 16)
	c.nextPing = t.nowNs + int64(min(wait, t.cfg.PingInterval))
	t.schedule.update(c)
}

// closest returns up to n contacts closest to target, closest first,
// leaving out the node exclude: answering ones only if answering is set. It
// walks the buckets from the closest to the farthest and sorts only the
// groups it needs; when the table holds fewer than n it adds pool contacts.
// The slice is scratch, valid until the next call.
func (t *Table) closest(target gossip.NodeID, n int, answering bool, exclude gossip.NodeID) []*contact {
	byDist := t.byDist[:0]
	keep := func(c *contact) bool {
		return (!answering || c.answering()) && c.id != exclude
	}
	sortFrom := func(from int) {
		slices.SortFunc(byDist[from:], func(a, b nearContact) int {
			switch {
			case a.d.less(b.d):
				return -1
			case b.d.less(a.d):
				return 1
			}
			return 0
		})
	}
	group := func(entries []*contact) {
		from := len(byDist)
		for _, c := range entries {
			if keep(c) {
				byDist = append(byDist, nearContact{xor(c.id, target), c})
			}
		}
		sortFrom(from)
	}
	// The contacts of bucket b share b+1 bits with target; those of deeper
	// buckets differ from target first at bit b; those of bucket i < b
	// differ at bit i, farther as i decreases.
	b := commonPrefix(t.cfg.Self, target)
	if b < len(t.buckets) {
		group(t.buckets[b].entries)
	}
	if len(byDist) < n {
		from := len(byDist)
		for i := b + 1; i < len(t.buckets); i++ {
			for _, c := range t.buckets[i].entries {
				if keep(c) {
					byDist = append(byDist, nearContact{xor(c.id, target), c})
				}
			}
		}
		sortFrom(from)
	}
	for i := min(b, len(t.buckets)) - 1; i >= 0 && len(byDist) < n; i-- {
		group(t.buckets[i].entries)
	}
	if len(byDist) < n {
		// A small table: the pool may know more.
		for _, r := range t.pool.regions {
			for _, c := range r.members {
				if c.bucket < 0 && keep(c) && !slices.ContainsFunc(byDist, func(x nearContact) bool { return x.c == c }) {
					byDist = append(byDist, nearContact{xor(c.id, target), c})
				}
			}
		}
		sortFrom(0)
	}
	out := t.near[:0]
	for _, x := range byDist[:min(n, len(byDist))] {
		out = append(out, x.c)
	}
	clear(byDist)
	t.byDist, t.near = byDist[:0], out
	return out
}

type nearContact struct {
	d distance
	c *contact
}
