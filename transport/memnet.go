package transport

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"time"
)

// Errors returned by the in-memory network; callers branch on them with
// errors.Is.
var (
	// ErrAddressInUse is returned by Attach when an endpoint already has the
	// address.
	ErrAddressInUse = errors.New("transport: address in use")
	// ErrDatagramTooLarge is returned by Endpoint.Send for a datagram longer
	// than NetworkConfig.MaxDatagram.
	ErrDatagramTooLarge = errors.New("transport: datagram too large")
	// ErrDetached is returned by Endpoint.Send after the endpoint was
	// detached.
	ErrDetached = errors.New("transport: endpoint detached")
)

// NetworkConfig configures an in-memory Network. The zero value is ready to
// use: 1 ms latency, no jitter, no loss.
type NetworkConfig struct {
	// Start is the virtual time at creation.
	// Default (zero): time.Unix(1_700_000_000, 0).UTC().
	Start time.Time
	// Seed seeds the one random source used for loss, jitter and the
	// LatencyFunc: the same seed and the same calls give the same run.
	Seed uint64
	// Latency is the one-way delay of every datagram. Zero or negative means
	// the default, 1 ms; for zero latency, or latency that depends on the
	// endpoints, use Network.SetLatencyFunc.
	Latency time.Duration
	// Jitter adds a uniform extra delay in [0, Jitter) to every datagram.
	// Default 0. Jitter reorders datagrams, as real networks do.
	Jitter time.Duration
	// Loss is the probability in [0, 1] that a datagram is dropped.
	// Default 0. Values outside the range are clamped.
	Loss float64
	// MaxDatagram is the largest datagram in bytes that Send accepts; larger
	// ones return ErrDatagramTooLarge. Default (0): MaxUDPPayload (65507).
	MaxDatagram int
}

// NetworkStats counts what a Network did. Every accepted Send ends in
// exactly one of Delivered, Lost, Partitioned or Undeliverable, or is still
// in flight: Sent = Delivered + Lost + Partitioned + Undeliverable + in flight.
type NetworkStats struct {
	Sent           uint64 // datagrams accepted by Send
	Delivered      uint64 // datagrams handed to a Handler
	Lost           uint64 // dropped by random loss
	Partitioned    uint64 // dropped by a partition, at send or at delivery
	Undeliverable  uint64 // no endpoint at the destination at delivery time
	BytesSent      uint64 // bytes accepted by Send
	BytesDelivered uint64 // bytes handed to a Handler
}

// defaultNetworkStart is a fixed, round instant so that logs of simulations
// are comparable from run to run.
var defaultNetworkStart = time.Unix(1_700_000_000, 0).UTC()

// Network is an in-memory datagram network driven by a virtual clock.
//
// Nothing happens by itself: Step and RunUntil run scheduled events
// (deliveries, and At and AfterFunc callbacks) in order of time, and events
// scheduled for the same time in the order they were scheduled, so a run is
// a pure function of the seed and the calls made. Handlers and callbacks run
// on the caller's goroutine, inside Step or RunUntil, and may call Send,
// SendBatch, At, AfterFunc, Attach, Listen, Detach, Close and the setters
// re-entrantly.
//
// With Now and AfterFunc a Network is a clock: code that runs on a clock
// (node.Config.Clock) runs on the network's virtual time.
//
// A Network and its Endpoints are not safe for concurrent use: drive them
// from one goroutine.
type Network struct {
	start       time.Time
	now         int64 // virtual nanoseconds since start
	seq         uint64
	rng         *rand.Rand
	latency     time.Duration
	jitter      time.Duration
	loss        float64
	maxDatagram int
	latencyFunc func(from, to netip.AddrPort, rng *rand.Rand) time.Duration
	group       func(netip.AddrPort) int

	endpoints map[netip.AddrPort]*Endpoint
	queue     eventQueue
	bodies    []eventBody // indexed by eventKey.body
	freeBody  []uint32    // unused indices into bodies
	buffers   bufferPool
	stats     NetworkStats
}

// eventKey is what the heap orders. It is kept small (24 bytes) because
// sifting moves keys around; the rest of the event waits in Network.bodies.
type eventKey struct {
	at   int64  // virtual nanoseconds since start
	seq  uint64 // scheduling order, breaks ties between equal times
	body uint32 // index into Network.bodies
}

func (a eventKey) before(b eventKey) bool {
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

// eventBody is a scheduled delivery (fn == nil) or callback (fn != nil).
type eventBody struct {
	from, to netip.AddrPort
	datagram []byte
	fn       func()
}

// NewNetwork returns an empty network at virtual time cfg.Start.
func NewNetwork(cfg NetworkConfig) *Network {
	n := &Network{
		start:       cfg.Start,
		rng:         rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		latency:     cfg.Latency,
		jitter:      max(cfg.Jitter, 0),
		maxDatagram: cfg.MaxDatagram,
		endpoints:   make(map[netip.AddrPort]*Endpoint),
	}
	if n.start.IsZero() {
		n.start = defaultNetworkStart
	}
	if n.latency <= 0 {
		n.latency = time.Millisecond
	}
	if n.maxDatagram <= 0 {
		n.maxDatagram = MaxUDPPayload
	}
	n.SetLoss(cfg.Loss)
	return n
}

// Now is the virtual time: Start plus the time of the last event run, or the
// time last given to RunUntil, whichever is later.
func (n *Network) Now() time.Time { return n.start.Add(time.Duration(n.now)) }

// Attach connects a handler at addr. IPv4-mapped IPv6 addresses are
// unmapped, as UDP does with source addresses.
func (n *Network) Attach(addr netip.AddrPort, h Handler) (*Endpoint, error) {
	if h == nil {
		return nil, fmt.Errorf("transport: attach %s: nil handler", addr)
	}
	e, err := n.attach(addr)
	if err != nil {
		return nil, err
	}
	e.handler = h
	return e, nil
}

// Listen attaches an endpoint at addr that receives nothing until Start:
// datagrams that arrive before are counted as Undeliverable, as if nobody
// listened yet. It is the in-memory counterpart of ListenUDP.
func (n *Network) Listen(addr netip.AddrPort) (*Endpoint, error) {
	e, err := n.attach(addr)
	if err != nil {
		return nil, err
	}
	e.stats = &Stats{}
	return e, nil
}

func (n *Network) attach(addr netip.AddrPort) (*Endpoint, error) {
	addr = unmapAddrPort(addr)
	if !addr.IsValid() {
		return nil, fmt.Errorf("transport: attach %s: invalid address", addr)
	}
	if _, taken := n.endpoints[addr]; taken {
		return nil, fmt.Errorf("transport: attach %s: %w", addr, ErrAddressInUse)
	}
	e := &Endpoint{net: n, addr: addr}
	n.endpoints[addr] = e
	return e, nil
}

// Detach removes the endpoint at addr, if any. Datagrams in flight to addr
// are counted as Undeliverable when they arrive, unless another endpoint has
// attached at addr by then (like a restarted process on the same port).
// Further Sends from the detached endpoint return ErrDetached.
func (n *Network) Detach(addr netip.AddrPort) {
	addr = unmapAddrPort(addr)
	if e, ok := n.endpoints[addr]; ok {
		e.detached = true
		delete(n.endpoints, addr)
	}
}

// AfterFunc schedules f to run d from now, like At(Now().Add(d), f), and
// returns a func that cancels it: stop reports whether it did so before f
// ran. With Now, it makes the Network a clock that code written against
// time.AfterFunc can run on. A cancelled call still counts in Pending until
// its time comes.
func (n *Network) AfterFunc(d time.Duration, f func()) (stop func() bool) {
	const (
		pending = iota
		fired
		stopped
	)
	state := pending
	at := n.now + max(int64(d), 0)
	if at < n.now { // "never" must not wrap around
		at = math.MaxInt64
	}
	n.schedule(at, eventBody{fn: func() {
		if state == pending {
			state = fired
			f()
		}
	}})
	return func() bool {
		if state != pending {
			return false
		}
		state = stopped
		return true
	}
}

// Step runs the next event and advances the clock to its time. It reports
// false, doing nothing, when no event is pending.
func (n *Network) Step() bool {
	if len(n.queue) == 0 {
		return false
	}
	key := n.queue.pop()
	// Copy the body out and free its slot before running it: a handler that
	// sends may grow n.bodies.
	body := n.bodies[key.body]
	n.bodies[key.body] = eventBody{}
	n.freeBody = append(n.freeBody, key.body)
	n.now = key.at

	if body.fn != nil {
		body.fn()
		return true
	}
	n.deliver(body.from, body.to, body.datagram)
	return true
}

func (n *Network) deliver(from, to netip.AddrPort, datagram []byte) {
	// The datagram goes back to the pool however this ends; the handler only
	// borrows it for the call.
	defer n.buffers.put(datagram)
	if n.group != nil && n.group(from) != n.group(to) {
		n.stats.Partitioned++
		return
	}
	e, ok := n.endpoints[to]
	if !ok || e.handler == nil {
		n.stats.Undeliverable++
		return
	}
	n.stats.Delivered++
	n.stats.BytesDelivered += uint64(len(datagram))
	if e.stats != nil {
		e.stats.DatagramsIn++
		e.stats.BytesIn += uint64(len(datagram))
	}
	e.handler(from, datagram)
}

// RunUntil runs every event whose time is at or before t, including those
// scheduled meanwhile, then sets the clock to t. The clock never goes back:
// a t before Now only runs the events due now.
func (n *Network) RunUntil(t time.Time) {
	limit := int64(t.Sub(n.start))
	for len(n.queue) > 0 && n.queue[0].at <= limit {
		n.Step()
	}
	n.now = max(n.now, limit)
}

// Pending is the number of scheduled events: datagrams in flight and
// callbacks not yet run.
func (n *Network) Pending() int { return len(n.queue) }

// SetLoss sets the probability that a datagram sent from now on is lost.
// It is clamped to [0, 1]; NaN means 0.
func (n *Network) SetLoss(p float64) {
	if math.IsNaN(p) || p < 0 {
		p = 0
	}
	n.loss = min(p, 1)
}

// SetLatencyFunc makes f decide the delay of every datagram sent from now
// on, instead of Latency and Jitter. f may draw from rng, the network's own
// seeded source, and nothing else, to keep runs reproducible. A negative
// delay counts as zero. A nil f restores Latency and Jitter.
func (n *Network) SetLatencyFunc(f func(from, to netip.AddrPort, rng *rand.Rand) time.Duration) {
	n.latencyFunc = f
}

// Partition splits the network: from now on a datagram between endpoints in
// different groups is dropped, both when it is sent and, if it was already in
// flight, when it arrives. group must be deterministic; it is called on every
// Send and delivery while the partition lasts. A nil group heals.
func (n *Network) Partition(group func(netip.AddrPort) int) { n.group = group }

// Heal ends a partition. Datagrams dropped by it stay dropped.
func (n *Network) Heal() { n.group = nil }

// Stats returns the counters.
func (n *Network) Stats() NetworkStats { return n.stats }

func (n *Network) schedule(at int64, body eventBody) {
	var idx uint32
	if k := len(n.freeBody); k > 0 {
		idx = n.freeBody[k-1]
		n.freeBody = n.freeBody[:k-1]
		n.bodies[idx] = body
	} else {
		idx = uint32(len(n.bodies))
		n.bodies = append(n.bodies, body)
	}
	n.queue.push(eventKey{at: at, seq: n.seq, body: idx})
	n.seq++
}

// eventQueue is a binary min-heap of event keys. It is written out by hand
// rather than through container/heap, whose interface calls and boxing cost
// more than the comparisons themselves at tens of millions of events.
type eventQueue []eventKey

func (q *eventQueue) push(k eventKey) {
	h := append(*q, k)
	// Sift up by moving parents down into the hole, then place k once.
	i := len(h) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !k.before(h[parent]) {
			break
		}
		h[i] = h[parent]
		i = parent
	}
	h[i] = k
	*q = h
}

func (q *eventQueue) pop() eventKey {
	h := *q
	top := h[0]
	last := len(h) - 1
	k := h[last]
	h = h[:last]
	if last > 0 {
		// Floyd's bottom-up pop: walk the hole down to a leaf along the
		// smaller children without comparing against k (which, taken from
		// the bottom, almost always belongs near the bottom), then sift k up
		// from there. About half the comparisons of the textbook sift-down.
		i := 0
		for {
			child := 2*i + 1
			if child >= last {
				break
			}
			if r := child + 1; r < last && h[r].before(h[child]) {
				child = r
			}
			h[i] = h[child]
			i = child
		}
		for i > 0 {
			parent := (i - 1) / 2
			if !k.before(h[parent]) {
				break
			}
			h[i] = h[parent]
			i = parent
		}
		h[i] = k
	}
	*q = h
	return top
}

// bufferPool recycles datagram copies by power-of-two size class. The
// network is single-goroutine, so plain stacks beat sync.Pool here. It keeps
// at most as many buffers as were once in flight at the same time.
type bufferPool struct {
	classes [maxBufferClass + 1][][]byte
}

const (
	minBufferClass = 6  // 64 bytes: smaller datagrams share one class
	maxBufferClass = 16 // 64 KiB, enough for MaxUDPPayload
)

func bufferClass(size int) int {
	return max(bits.Len(uint(size-1)), minBufferClass)
}

func (p *bufferPool) get(size int) []byte {
	c := bufferClass(size)
	if c > maxBufferClass {
		return make([]byte, size)
	}
	stack := p.classes[c]
	if k := len(stack); k > 0 {
		buf := stack[k-1]
		stack[k-1] = nil
		p.classes[c] = stack[:k-1]
		return buf[:size]
	}
	return make([]byte, size, 1<<c)
}

func (p *bufferPool) put(buf []byte) {
	c := cap(buf)
	// Only buffers that get made come back: exact powers of two in range.
	if c == 0 || c&(c-1) != 0 {
		return
	}
	class := bits.Len(uint(c)) - 1
	if class < minBufferClass || class > maxBufferClass {
		return
	}
	p.classes[class] = append(p.classes[class], buf[:0])
}
