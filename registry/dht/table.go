package dht

import (
	"errors"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/registry"
	"github.com/hearsay-io/hearsay/wire"
)

// Ready is what the caller must act on after an input.
type Ready struct {
	// Datagrams to send now, in order, through the node's gossip socket
	// (sealed like every other datagram when encryption is on). Data is
	// valid until the next call of Tick, Handle or Lookup.
	Datagrams []gossip.Datagram
	// Lookups completed since the last Ready. The slice is reused after the
	// next input; its elements may be kept.
	Lookups []LookupResult
}

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

// request is a request awaiting its answer.
type request struct {
	id       uint64
	kind     wire.PacketType // wire.DHTPing or wire.DHTFindNode
	to       netip.AddrPort
	node     gossip.NodeID // the ID expected to answer; zero if unknown
	deadline time.Time
	lookup   *lookup
	done     bool
}

// maxPending bounds the requests in flight that strangers can cause
// (verification pings); lookups and the ping schedule are bounded by
// configuration.
const maxPending = 1024

// Table is a Kademlia peer table and the DHT protocol as a deterministic
// state machine. It owns no goroutine, socket or timer and never reads the
// clock: the caller drives it with Tick and Handle and acts on Ready. A
// Table is not safe for concurrent use; Registry is the locked wrapper.
type Table struct {
	cfg   Config
	now   time.Time // the time of the last input
	nowNs int64     // now in Unix nanoseconds

	started      bool
	bootstrapped bool      // a self-lookup found someone
	bootstrapAt  time.Time // next bootstrap attempt, while not bootstrapped
	backoff      time.Duration
	restored     []Contact // from Restore: pinged at start and on bootstrap
	restoreDue   bool      // Restore was called: ping them at the next Tick
	selfLookup   *lookup

	buckets   []bucket                   // up to the deepest in use
	contacts  map[gossip.NodeID]*contact // in the table or the sample pool
	refreshAt time.Time
	schedule  pingSchedule

	pending  map[uint64]*request
	queue    []*request // in order of deadline (all requests have the same timeout)
	pingAddr map[netip.AddrPort]*request

	lookups []*lookup    // running
	waiting []lookupSpec // queued

	pool    pool
	padding int // of our FIND_NODE requests

	// memos, rebuilt when dirty
	dirty     bool
	peers     []netip.AddrPort // answering contacts, table and pool
	poolPeers []netip.AddrPort // answering pool contacts

	out    Ready
	taken  bool
	arena  []byte
	pkt    Packet
	near   []*contact    // scratch for closest
	byDist []nearContact // scratch for closest
	stats  Stats
}

// New returns a Table for cfg.
func New(cfg Config) (*Table, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t := &Table{
		cfg:      cfg,
		contacts: make(map[gossip.NodeID]*contact),
		pending:  make(map[uint64]*request),
		pingAddr: make(map[netip.AddrPort]*request),
		backoff:  2 * cfg.RequestTimeout,
		dirty:    true,
	}
	t.pool.init(&t.cfg)
	t.padding = min(FindNodePadding(cfg.K), cfg.MaxPacketSize-FindNodeSize)
	return t, nil
}

// Config returns the configuration in force, defaults filled in.
func (t *Table) Config() Config { return t.cfg }

// Ready returns the outputs accumulated since the last Ready.
func (t *Table) Ready() Ready {
	t.taken = true
	return t.out
}

// HasReady reports whether Ready has anything to act on.
func (t *Table) HasReady() bool { return len(t.out.Datagrams) > 0 || len(t.out.Lookups) > 0 }

func (t *Table) begin(now time.Time) {
	if now.After(t.now) {
		t.now = now
		t.nowNs = now.UnixNano()
	}
	if !t.taken {
		return
	}
	t.taken = false
	t.out.Datagrams = t.out.Datagrams[:0]
	clear(t.out.Lookups)
	t.out.Lookups = t.out.Lookups[:0]
	t.arena = t.arena[:0]
}

// NextTick returns when the table next wants Tick to be called. Before the
// first Tick it returns the zero time: tick at once.
func (t *Table) NextTick() time.Time {
	if !t.started {
		return time.Time{}
	}
	next := time.Time{}
	earliest := func(at time.Time) {
		if !at.IsZero() && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	t.trimQueue()
	if len(t.queue) > 0 {
		earliest(t.queue[0].deadline)
	}
	if len(t.schedule) > 0 {
		earliest(time.Unix(0, t.schedule[0].nextPing))
	}
	if t.bootstrapped {
		earliest(t.refreshAt)
		earliest(t.pool.nextAt(t))
	} else {
		earliest(t.bootstrapAt)
	}
	if next.IsZero() {
		next = t.now.Add(t.cfg.RefreshInterval)
	}
	return next
}

// Tick advances the table's clock: requests time out, silent contacts are
// pinged, buckets are refreshed, the sample pool is renewed. Call it no
// later than NextTick; extra calls are harmless.
func (t *Table) Tick(now time.Time) {
	t.begin(now)
	if !t.started {
		t.started = true
		t.restoreDue = false
		t.bootstrapAt = now.Add(t.backoff)
		t.pingBootstrap()
	}
	if t.restoreDue {
		t.restoreDue = false
		for _, c := range t.restored {
			if t.contacts[c.ID] == nil && len(t.pending) < maxPending {
				t.ping(c.Addr, c.ID)
			}
		}
	}
	t.expireRequests()
	t.pingDue()
	if !t.bootstrapped && !now.Before(t.bootstrapAt) {
		if t.selfLookup == nil {
			t.pingBootstrap()
		}
		t.backoff = min(2*t.backoff, t.cfg.RefreshInterval)
		t.bootstrapAt = now.Add(t.backoff)
	}
	if t.bootstrapped && !now.Before(t.refreshAt) {
		t.refreshBuckets()
	}
	t.housekeep()
}

// Lookup starts an iterative lookup of the K nodes closest to target. Its
// result comes in a later Ready's Lookups, with Purpose LookupUser.
func (t *Table) Lookup(now time.Time, target gossip.NodeID) {
	t.begin(now)
	t.waiting = append(t.waiting, lookupSpec{target: target, purpose: LookupUser})
	t.housekeep()
}

// housekeep starts what is due after any input.
func (t *Table) housekeep() {
	if !t.started {
		return
	}
	if t.bootstrapped && len(t.contacts) == 0 {
		// Everyone we knew is gone: join again.
		t.bootstrapped = false
		t.backoff = 2 * t.cfg.RequestTimeout
		t.bootstrapAt = t.now
	}
	if !t.bootstrapped && t.selfLookup == nil && t.hasAnswering() {
		// At once, whatever else runs: joining comes first.
		t.startLookup(lookupSpec{target: t.cfg.Self, purpose: LookupSelf})
	}
	if t.bootstrapped {
		t.pool.startDue(t)
	}
	t.startLookups()
}

func (t *Table) hasAnswering() bool {
	for i := range t.buckets {
		for _, c := range t.buckets[i].entries {
			if c.answering() {
				return true
			}
		}
	}
	return false
}

// pingBootstrap pings the bootstrap and restored addresses not pinged yet.
func (t *Table) pingBootstrap() {
	for _, a := range t.cfg.Bootstrap {
		if a != t.cfg.SelfAddr {
			t.ping(a, gossip.NodeID{})
		}
	}
	for _, c := range t.restored {
		if len(t.pending) < maxPending {
			t.ping(c.Addr, c.ID)
		}
	}
}

// Handle processes a datagram whose packet type the DHT owns (see
// IsPacket). Anything malformed is dropped and counted in Stats; nothing
// here panics on input.
func (t *Table) Handle(now time.Time, from netip.AddrPort, datagram []byte) {
	typ, body, err := wire.Parse(datagram)
	if err != nil {
		t.begin(now)
		t.stats.DatagramsIn++
		t.stats.BytesIn += uint64(len(datagram))
		if errors.Is(err, wire.ErrVersion) {
			t.drop(DropVersion)
		} else {
			t.drop(DropMalformed)
		}
		return
	}
	t.HandlePacket(now, from, typ, body)
}

// HandlePacket is Handle for a datagram whose header the caller has parsed
// (wire.Parse): typ is its packet type, body the rest.
func (t *Table) HandlePacket(now time.Time, from netip.AddrPort, typ wire.PacketType, body []byte) {
	t.begin(now)
	t.stats.DatagramsIn++
	t.stats.BytesIn += uint64(wire.HeaderSize + len(body))
	from = unmap(from)
	p := &t.pkt
	if err := decodeBody(p, typ, body); err != nil {
		if errors.Is(err, wire.ErrVersion) {
			t.drop(DropVersion)
		} else {
			t.drop(DropMalformed)
		}
		return
	}
	if p.Sender == t.cfg.Self || from == t.cfg.SelfAddr {
		t.drop(DropSelf) // ourselves, through another address
		return
	}
	switch p.Type {
	case wire.DHTPing:
		t.stats.RequestsIn++
		t.observe(p.Sender, from)
		t.emitPacket(from, &Packet{Type: wire.DHTPong, Sender: t.cfg.Self, RequestID: p.RequestID})
	case wire.DHTFindNode:
		t.stats.RequestsIn++
		budget := t.cfg.MaxPacketSize
		if !t.verified(p.Sender, from) {
			// Never send a stranger more than three times what it sent
			// (RFC 9000 §8): its address may be forged. Requests are
			// padded so that this leaves room for a full answer.
			budget = 3 * (wire.HeaderSize + len(body))
			if t.observe(p.Sender, from) {
				budget -= PingSize
			}
		}
		t.answerFindNode(from, p, budget)
	case wire.DHTPong, wire.DHTNodes:
		t.handleAnswer(from, p)
	}
	t.housekeep()
}

func (t *Table) drop(r DropReason) { t.stats.Dropped[r]++ }

// verified reports whether id answered us from addr: it is a contact.
func (t *Table) verified(id gossip.NodeID, addr netip.AddrPort) bool {
	c := t.contacts[id]
	return c != nil && c.addr == addr && c.lastSeen != 0
}

// observe notes a request from id at addr, which may be forged. A node
// that would enter the table is pinged first: only an answer to our random
// request ID proves it is at addr. observe reports whether it pinged.
func (t *Table) observe(id gossip.NodeID, addr netip.AddrPort) bool {
	if !usableAddr(addr) {
		return false
	}
	c := t.contacts[id]
	if c != nil && c.addr == addr {
		return false
	}
	if c == nil && t.bucketLen(commonPrefix(t.cfg.Self, id)) >= t.cfg.K {
		return false // no room: replacements come from lookups, which verify
	}
	if len(t.pending) >= maxPending {
		return false
	}
	return t.ping(addr, id) != nil
}

func (t *Table) answerFindNode(to netip.AddrPort, p *Packet, budget int) {
	budget = min(budget, t.cfg.MaxPacketSize) - nodesHeaderSize
	target, requester := p.Target, p.Sender
	near := t.closest(target, t.cfg.K, true, requester)
	nodes := t.pkt.Nodes[:0] // p.Nodes is empty for FIND_NODE; reuse its array
	for _, c := range near {
		if c.addr == to {
			continue
		}
		n := c.asContact()
		if budget -= contactSize(n); budget < 0 || len(nodes) == t.cfg.K {
			break
		}
		nodes = append(nodes, n)
	}
	t.pkt.Nodes = nodes
	t.emitPacket(to, &Packet{Type: wire.DHTNodes, Sender: t.cfg.Self, RequestID: p.RequestID, Nodes: nodes})
	t.stats.NodesSent += uint64(len(nodes))
}

func (t *Table) handleAnswer(from netip.AddrPort, p *Packet) {
	req := t.pending[p.RequestID]
	want := wire.DHTPing
	if p.Type == wire.DHTNodes {
		want = wire.DHTFindNode
	}
	if req == nil || req.to != from || req.kind != want {
		t.drop(DropUnsolicited)
		return
	}
	t.finish(req)
	t.stats.AnswersIn++
	if !req.node.IsZero() && req.node != p.Sender {
		// Another node answers at this address now (a restart with a new
		// ID): the one we expected is not there any more.
		if old := t.contacts[req.node]; old != nil && old.addr == from {
			t.evict(old)
		}
	}
	t.seen(p.Sender, from)
	if l := req.lookup; l != nil && !l.done {
		l.answered(t, req.node, p.Sender, from, p.Nodes)
	}
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

// ping sends a PING to addr, expecting node id (zero: unknown), unless one
// is in flight to addr already.
func (t *Table) ping(addr netip.AddrPort, id gossip.NodeID) *request {
	if _, busy := t.pingAddr[addr]; busy {
		return nil
	}
	r := t.request(wire.DHTPing, addr, id, nil)
	t.pingAddr[addr] = r
	t.emitPacket(addr, &Packet{Type: wire.DHTPing, Sender: t.cfg.Self, RequestID: r.id})
	t.stats.PingsSent++
	return r
}

// request registers a request with a fresh, unpredictable ID.
func (t *Table) request(kind wire.PacketType, to netip.AddrPort, node gossip.NodeID, l *lookup) *request {
	id := t.cfg.Rand.Uint64()
	for t.pending[id] != nil {
		id = t.cfg.Rand.Uint64()
	}
	r := &request{id: id, kind: kind, to: to, node: node, deadline: t.now.Add(t.cfg.RequestTimeout), lookup: l}
	t.pending[id] = r
	t.queue = append(t.queue, r)
	t.stats.RequestsSent++
	return r
}

// finish retires an answered or expired request.
func (t *Table) finish(r *request) {
	r.done = true
	delete(t.pending, r.id)
	if t.pingAddr[r.to] == r {
		delete(t.pingAddr, r.to)
	}
}

func (t *Table) expireRequests() {
	for t.trimQueue(); len(t.queue) > 0 && !t.now.Before(t.queue[0].deadline); t.trimQueue() {
		r := t.queue[0]
		t.finish(r)
		t.stats.Timeouts++
		if c := t.contacts[r.node]; c != nil && c.addr == r.to {
			t.failed(c)
		}
		if l := r.lookup; l != nil && !l.done {
			l.failed(t, r.node)
		}
	}
}

// trimQueue drops the answered requests at the front of the queue.
func (t *Table) trimQueue() {
	i := 0
	for i < len(t.queue) && t.queue[i].done {
		i++
	}
	if i == 0 {
		return
	}
	clear(t.queue[:i])
	t.queue = t.queue[i:]
	if len(t.queue) == 0 {
		t.queue = t.queue[:0:0] // let the array go
	}
}

// pingDue pings the contacts that have been silent for PingInterval.
func (t *Table) pingDue() {
	for len(t.schedule) > 0 && t.schedule[0].nextPing <= t.nowNs {
		c := t.schedule[0]
		if _, busy := t.pingAddr[c.addr]; busy || len(t.pending) >= maxPending {
			// Its answer or timeout comes first; look again then.
			c.nextPing = t.nowNs + int64(t.cfg.RequestTimeout)
			t.schedule.update(c)
			continue
		}
		t.schedule.remove(c) // the answer or the timeout reschedules it
		t.ping(c.addr, c.id)
	}
}

// refreshBuckets looks up a random ID in every bucket, up to the deepest
// one in use, that no lookup went through for RefreshInterval.
func (t *Table) refreshBuckets() {
	deepest := -1
	for i := range t.buckets {
		if len(t.buckets[i].entries) > 0 {
			deepest = i
		}
	}
	for i := 0; i <= deepest; i++ {
		b := &t.buckets[i]
		if t.nowNs-b.refreshed >= int64(t.cfg.RefreshInterval) {
			b.refreshed = t.nowNs
			t.waiting = append(t.waiting, lookupSpec{
				target:  withPrefix(t.cfg.Rand, t.cfg.Self, i, true),
				purpose: LookupRefresh,
			})
		}
	}
	t.refreshAt = t.now.Add(t.cfg.RefreshInterval / 4)
}

func (t *Table) emitPacket(to netip.AddrPort, p *Packet) {
	start := len(t.arena)
	t.arena = AppendPacket(t.arena, p)
	t.out.Datagrams = append(t.out.Datagrams, gossip.Datagram{To: to, Data: t.arena[start:len(t.arena):len(t.arena)]})
	t.stats.DatagramsOut++
	t.stats.BytesOut += uint64(len(t.arena) - start)
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

// rebuild recomputes the peer lists after a change.
func (t *Table) rebuild() {
	if !t.dirty {
		return
	}
	t.dirty = false
	t.peers = t.peers[:0]
	seen := make(map[netip.AddrPort]struct{}, len(t.contacts))
	add := func(list []netip.AddrPort, c *contact) []netip.AddrPort {
		if !c.answering() {
			return list
		}
		if _, dup := seen[c.addr]; dup {
			return list
		}
		seen[c.addr] = struct{}{}
		return append(list, c.addr)
	}
	t.poolPeers = t.poolPeers[:0]
	for _, r := range t.pool.regions {
		for _, c := range r.members {
			t.poolPeers = add(t.poolPeers, c)
		}
	}
	t.peers = append(t.peers, t.poolPeers...)
	for i := range t.buckets {
		for _, c := range t.buckets[i].entries {
			t.peers = add(t.peers, c)
		}
	}
}

// Peers returns the addresses of every contact that answered its last
// request, in the table and in the sample pool, without this node.
func (t *Table) Peers() []netip.AddrPort {
	t.rebuild()
	return slices.Clone(t.peers)
}

// SamplePeers appends up to n distinct peers chosen uniformly at random
// with rng from the sample pool, which is spread uniformly over the whole
// network, and returns the extended slice. While the pool holds fewer than
// n answering contacts (when joining, or with the pool off), it draws from
// every answering contact instead.
func (t *Table) SamplePeers(rng *rand.Rand, n int, dst []netip.AddrPort) []netip.AddrPort {
	t.rebuild()
	from := t.poolPeers
	if len(from) < n || t.cfg.SamplePoolSize < 0 {
		from = t.peers
	}
	return registry.Sample(rng, from, n, dst)
}

// estimatedSize is the estimate of the network's size, 0 if none yet.
func (t *Table) estimatedSize() float64 {
	log2N, ok := t.pool.sizeLog2()
	if !ok {
		return 0
	}
	return math.Exp2(log2N)
}
