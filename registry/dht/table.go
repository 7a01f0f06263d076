package dht

import (
	"net/netip"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
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
