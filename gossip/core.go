package gossip

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"
	"unsafe"

	"github.com/hearsay-io/hearsay/filter"
	"github.com/hearsay-io/hearsay/msglog"
	"github.com/hearsay-io/hearsay/wire"
)

// Errors that Push returns and callers branch on.
var (
	// ErrMessageTooLarge: the payload is larger than MaxMessageSize, or its
	// chunks could never fit in the propagation cache.
	ErrMessageTooLarge = errors.New("gossip: message too large")
	// ErrBackpressure: the propagation cache is full of messages that are
	// still spreading. Retry after a round or two.
	ErrBackpressure = errors.New("gossip: propagation cache full, retry later")
	// ErrInvalidTopic: the topic is not a valid topic (see ValidateTopic).
	ErrInvalidTopic = errors.New("gossip: invalid topic")
)

// PeerSampler is what the core needs of a registry: a random choice of peers.
// registry.Registry satisfies it.
type PeerSampler interface {
	// SamplePeers appends to dst up to n distinct peers chosen uniformly at
	// random with rng (and no other randomness) and returns the extended slice.
	SamplePeers(rng *rand.Rand, n int, dst []netip.AddrPort) []netip.AddrPort
}

// Config configures a Core. Zero values take the defaults written beside
// each field; ID and Peers are required.
type Config struct {
	// ID is this node's ID, the origin of the messages it publishes. Required.
	ID NodeID
	// Peers chooses whom to pull from. Required.
	Peers PeerSampler
	// Filter is the seen filter. Default: an in-memory filter of 1<<20 IDs.
	Filter filter.SeenFilter
	// Rand is the only source of randomness of the core. Default: a PCG
	// seeded from ID, so that a core is reproducible by default.
	Rand *rand.Rand

	// Fanout is the number of peers pulled from per round. Default 3.
	Fanout int
	// Interval is the length of a round. The Fanout pulls of a round are
	// spread evenly across it, so that each pull's digest already includes
	// what the previous pull brought and a message is rarely received twice.
	// Default 200ms.
	Interval time.Duration
	// MaxPacketSize bounds every datagram the core sends, in bytes, and so
	// the size of a message sent whole and of a chunk. From 512 to 65507.
	// Default 1400, which fits an Ethernet MTU with room for the IP and UDP
	// headers. A runtime that seals datagrams passes its limit less the
	// sealing overhead.
	MaxPacketSize int
	// MaxMessageSize is the largest payload Push accepts, in bytes; a larger
	// one gets ErrMessageTooLarge, and received chunks of larger messages are
	// dropped (too_large). A message that fits in one datagram travels as
	// one, exactly as it would without this limit; a larger one is cut into
	// chunks that fit MaxPacketSize, gossiped like messages and reassembled
	// by every node (docs/protocol.md). From 1 to MaxChunkedSize. Default
	// 1 MiB.
	MaxMessageSize int
	// MaxPartialBytes bounds the memory held by large messages being
	// reassembled. A message reserves its whole payload, plus about 24 bytes
	// a chunk and 256 bytes of bookkeeping, when its first chunk arrives, so
	// every message started can complete; a chunk that would start one past
	// the bound is refused (partial_full) and pulled again later. At least
	// 2 × MaxMessageSize + 4096. Default 32 MiB, or that minimum if larger.
	MaxPartialBytes int
	// ReassemblyTimeout is how long a large message may take to complete
	// after its first chunk arrived (after the first Tick, for one rebuilt
	// from the log by New), and never longer than until its chunks pass
	// MaxAge; then what arrived of it is given up (reassembly_timeout).
	// Gossip offers a chunk for CacheRounds × Interval (6 s by default);
	// past that only anti-entropy brings what is missing, one session every
	// AEInterval (10 s), so the default, 2 minutes (or MaxAge if shorter),
	// gives a dozen sessions to repair a message before its memory is
	// reclaimed.
	ReassemblyTimeout time.Duration
	// MaxAnswerBytes bounds the bytes of messages sent in answer to one pull
	// request. Default 256 KiB.
	MaxAnswerBytes int
	// MaxAnswerBytesPerRound bounds the bytes of messages sent to any one
	// peer per round (Interval), over its pulls, the pulls again it makes
	// when an answer ends with MORE, and anti-entropy fetches. At least
	// MaxAnswerBytes. Default 4 × MaxAnswerBytes (1 MiB): a peer that
	// lacks much gets it at up to 5 MB/s at the default interval, in
	// answers small enough that its next digest is never far behind.
	MaxAnswerBytesPerRound int
	// MaxAge is the age past which a message is refused. The seen filter
	// remembers IDs for MaxAge, so it stays bounded and exact. Default 10m.
	MaxAge time.Duration
	// ClockSkew is how far in the future a message's creation time may be
	// and still be accepted. Default 30s.
	ClockSkew time.Duration
	// CacheRounds is how many rounds a message is offered to pullers after
	// it arrived. Pull gossip reaches N nodes in about log4(N) + log4(ln N)
	// rounds at fanout 3 (11 rounds at 100,000 nodes); the default, 30,
	// leaves room for loss and late joiners.
	CacheRounds int
	// CacheMessages bounds the propagation cache by count. Default 100,000.
	CacheMessages int
	// CacheBytes bounds the propagation cache by encoded size. Default 64 MiB.
	CacheBytes int
	// MaxRangesPerOrigin bounds the ranges per origin in a pull digest; past
	// it the oldest gaps are left out of the digest until newer ones fill.
	// A node keeps track of 16 times as many; past that the oldest gap is
	// given up to anti-entropy. Default 16.
	MaxRangesPerOrigin int

	// Log keeps the accepted messages for Retention, for anti-entropy (and
	// for the node to resume event streams). Nil: no log and no
	// anti-entropy. The core appends to and prunes it; it must hold no other
	// writer.
	Log msglog.Log
	// Retention is how long messages stay in the log, by creation time; at
	// most MaxAge. Default MaxAge.
	Retention time.Duration
	// AEInterval is how often the node reconciles its log with one random
	// peer. Default 10s; negative: never (the log and tree are still kept,
	// and peers' sessions answered).
	AEInterval time.Duration
}

// DefaultConfig returns a Config with every default filled in, for the
// given node ID and peers.
func DefaultConfig(id NodeID, peers PeerSampler) Config {
	c := Config{ID: id, Peers: peers}
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if c.Fanout == 0 {
		c.Fanout = 3
	}
	if c.Interval == 0 {
		c.Interval = 200 * time.Millisecond
	}
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = 1400
	}
	if c.MaxAnswerBytes == 0 {
		c.MaxAnswerBytes = 256 << 10
	}
	if c.MaxAnswerBytesPerRound == 0 {
		c.MaxAnswerBytesPerRound = 4 * c.MaxAnswerBytes
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = 1 << 20
	}
	if c.MaxPartialBytes == 0 && c.MaxMessageSize > 0 && c.MaxMessageSize <= MaxChunkedSize {
		c.MaxPartialBytes = max(32<<20, minPartialBytes(c.MaxMessageSize))
	}
	if c.MaxAge == 0 {
		c.MaxAge = 10 * time.Minute
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = 30 * time.Second
	}
	if c.CacheRounds == 0 {
		c.CacheRounds = 30
	}
	if c.CacheMessages == 0 {
		c.CacheMessages = 100_000
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = 64 << 20
	}
	if c.MaxRangesPerOrigin == 0 {
		c.MaxRangesPerOrigin = 16
	}
	if c.Retention == 0 {
		c.Retention = c.MaxAge
	}
	if c.ReassemblyTimeout == 0 {
		c.ReassemblyTimeout = min(2*time.Minute, c.MaxAge)
	}
	if c.AEInterval == 0 {
		c.AEInterval = 10 * time.Second
	}
	if c.Filter == nil {
		c.Filter = filter.NewMemory(filter.MemoryConfig{})
	}
	if c.Rand == nil {
		c.Rand = c.ID.Rand()
	}
}

func (c *Config) validate() error {
	switch {
	case c.ID.IsZero():
		return errors.New("gossip: Config.ID is required")
	case c.Peers == nil:
		return errors.New("gossip: Config.Peers is required")
	case c.Fanout < 1 || c.Fanout > 64:
		return fmt.Errorf("gossip: Fanout %d out of range 1..64", c.Fanout)
	case c.Interval < time.Millisecond:
		return fmt.Errorf("gossip: Interval %v is below 1ms", c.Interval)
	case c.MaxPacketSize < wire.MinPacketSize || c.MaxPacketSize > wire.MaxUDPPayload:
		return fmt.Errorf("gossip: MaxPacketSize %d out of range %d..%d", c.MaxPacketSize, wire.MinPacketSize, wire.MaxUDPPayload)
	case c.MaxAnswerBytes < c.MaxPacketSize:
		return fmt.Errorf("gossip: MaxAnswerBytes %d is below MaxPacketSize %d", c.MaxAnswerBytes, c.MaxPacketSize)
	case c.MaxAnswerBytesPerRound < c.MaxAnswerBytes:
		return fmt.Errorf("gossip: MaxAnswerBytesPerRound %d is below MaxAnswerBytes %d", c.MaxAnswerBytesPerRound, c.MaxAnswerBytes)
	case c.MaxAge < time.Second:
		return fmt.Errorf("gossip: MaxAge %v is below 1s", c.MaxAge)
	case c.ClockSkew < 0:
		return fmt.Errorf("gossip: negative ClockSkew %v", c.ClockSkew)
	case c.CacheRounds < 1:
		return fmt.Errorf("gossip: CacheRounds %d is below 1", c.CacheRounds)
	case c.CacheMessages < 1:
		return fmt.Errorf("gossip: CacheMessages %d is below 1", c.CacheMessages)
	case c.CacheBytes < c.MaxPacketSize:
		return fmt.Errorf("gossip: CacheBytes %d is below MaxPacketSize %d", c.CacheBytes, c.MaxPacketSize)
	case c.MaxRangesPerOrigin < 1:
		return fmt.Errorf("gossip: MaxRangesPerOrigin %d is below 1", c.MaxRangesPerOrigin)
	case c.Retention < 0 || c.Retention > c.MaxAge:
		return fmt.Errorf("gossip: Retention %v out of range 0..MaxAge (%v)", c.Retention, c.MaxAge)
	case c.MaxMessageSize < 1 || c.MaxMessageSize > MaxChunkedSize:
		return fmt.Errorf("gossip: MaxMessageSize %d out of range 1..%d", c.MaxMessageSize, MaxChunkedSize)
	case c.MaxPartialBytes < minPartialBytes(c.MaxMessageSize):
		return fmt.Errorf("gossip: MaxPartialBytes %d is below 2 × MaxMessageSize + 4096 (%d)", c.MaxPartialBytes, minPartialBytes(c.MaxMessageSize))
	case c.ReassemblyTimeout <= 0 || c.ReassemblyTimeout > c.MaxAge:
		return fmt.Errorf("gossip: ReassemblyTimeout %v out of range (0, MaxAge (%v)]", c.ReassemblyTimeout, c.MaxAge)
	}
	return nil
}

// heldRangesFactor is how many more ranges per origin a node keeps track
// of than its digests list: enough for the gaps that a burst of losses
// leaves in the chunks of a large message (an answer of 256 KiB carries
// about 190 chunks; at 10% loss, 19 gaps).
const heldRangesFactor = 16

// minPartialBytes is the least MaxPartialBytes for messages of up to
// maxMessage bytes: a partial's cost is at most 1.375 times its payload
// (24 bytes of bookkeeping per chunk of at least MinChunkSize) plus 256.
func minPartialBytes(maxMessage int) int {
	if maxMessage > (math.MaxInt-4096)/2 {
		return math.MaxInt // 32-bit platforms: no bound fits, so none validates
	}
	return 2*maxMessage + 4096
}

// Datagram is a datagram for the caller to send.
type Datagram struct {
	To   netip.AddrPort
	Data []byte
}

// Ready is what the caller must act on after an input.
type Ready struct {
	// Datagrams to send now, in order. Data is valid until the next call of
	// Tick, Handle or Push.
	Datagrams []Datagram
	// Messages accepted since the last Ready, in order of acceptance: deliver
	// each to the local subscribers. Each is accepted exactly once per seen
	// filter. A large message comes whole, once, when its last chunk
	// arrives (its Seq is its first chunk's); chunks never appear here. The
	// slice is reused after the next input; the Message values may be kept.
	Messages []Message
}

// Core is the pull-gossip protocol as a deterministic state machine. It owns
// no goroutine, socket or timer and never reads the clock: the caller drives
// it with Tick, Handle and Push and acts on Ready. A Core is not safe for
// concurrent use.
type Core struct {
	cfg   Config
	rng   *rand.Rand
	cache *propagationCache
	held  holdings

	started      bool
	round        uint64
	slot         int
	nextPull     time.Time
	slotInterval time.Duration
	roundPeers   []netip.AddrPort
	lastPeers    []netip.AddrPort // the previous round's roundPeers
	nextSeq      uint64
	peerRound    []peerRound // what each peer got and asked this round
	repullPeer   netip.AddrPort
	repullUntil  time.Time // repullPeer is being pulled again until then (handleMore)

	out    Ready
	taken  bool
	arena  []byte
	pulls  pullDecoder
	wanted map[OriginTag]int // scratch: the origins a pull names, by index
	ranges []OriginRanges    // scratch for building digests
	sizes  []int             // scratch for building digests

	ae    *antiEntropy // nil without a log
	reasm partials     // large messages being reassembled

	stats Stats
}

// sessionRand is what merkle sessions draw their IDs from.
type sessionRand = *rand.Rand

// New returns a Core for cfg.
func New(cfg Config) (*Core, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Core{
		cfg:          cfg,
		rng:          cfg.Rand,
		cache:        newPropagationCache(cfg.CacheMessages, cfg.CacheBytes),
		held:         holdings{maxRanges: heldRangesFactor * cfg.MaxRangesPerOrigin},
		slotInterval: cfg.Interval / time.Duration(cfg.Fanout),
		reasm:        partials{max: cfg.MaxPartialBytes},
	}
	if cfg.Log != nil {
		// The log read that rebuilds the Merkle tree also rebuilds the large
		// messages whose chunks straddled a restart.
		rb := rebuild{c: c, skip: make(map[MessageID]struct{})}
		ae, err := newAntiEntropy(&c.cfg, c.rng, rb.entry)
		if err != nil {
			return nil, err
		}
		c.ae = ae
	}
	return c, nil
}

// Config returns the configuration in force, defaults filled in.
func (c *Core) Config() Config { return c.cfg }

// ID returns the node's ID.
func (c *Core) ID() NodeID { return c.cfg.ID }

// NextTick returns when the core next wants Tick to be called. Before the
// first Tick it returns the zero time: tick at once.
func (c *Core) NextTick() time.Time {
	next := c.nextPull
	if ae := c.nextAntiEntropy(); !ae.IsZero() && ae.Before(next) {
		next = ae
	}
	return next
}

// Ready returns the outputs accumulated since the last Ready.
func (c *Core) Ready() Ready {
	c.taken = true
	return c.out
}

// HasReady reports whether Ready has anything to act on.
func (c *Core) HasReady() bool { return len(c.out.Datagrams) > 0 || len(c.out.Messages) > 0 }

// begin starts an input step: once the caller has taken the previous Ready,
// its buffers are reused.
func (c *Core) begin() {
	if !c.taken {
		return
	}
	c.taken = false
	c.out.Datagrams = c.out.Datagrams[:0]
	clear(c.out.Messages)
	c.out.Messages = c.out.Messages[:0]
	c.arena = c.arena[:0]
}

// Tick advances the core's clock. Call it no later than NextTick; extra
// calls are harmless. Each round it pulls from Fanout random peers, one pull
// every Interval/Fanout, and ages the cache and the seen filter.
func (c *Core) Tick(now time.Time) {
	c.begin()
	if !c.started {
		c.started = true
		// A random phase keeps nodes started together from pulling in lockstep.
		c.nextPull = now.Add(time.Duration(c.rng.Int64N(int64(c.slotInterval) + 1)))
		c.pruneLog(now)
		c.tickAntiEntropy(now)
		return
	}
	c.tickAntiEntropy(now)
	// After a long pause (a suspended process), skip the missed pulls
	// rather than send them in a burst.
	if now.Sub(c.nextPull) > c.cfg.Interval {
		c.nextPull = now
	}
	for !now.Before(c.nextPull) {
		if c.slot == 0 {
			c.startRound(now)
		}
		if c.slot < len(c.roundPeers) {
			if peer := c.roundPeers[c.slot]; c.pullingAgain(now, peer) {
				// It is being pulled again on MOREs already: a round pull
				// would cross that answer, with a digest that lacks it.
				c.stats.RoundPullsSkipped++
			} else {
				c.sendPull(peer)
			}
		}
		c.slot = (c.slot + 1) % c.cfg.Fanout
		c.nextPull = c.nextPull.Add(c.slotInterval)
	}
}

func (c *Core) startRound(now time.Time) {
	c.round++
	c.stats.Rounds++
	if c.round > uint64(c.cfg.CacheRounds) {
		c.cache.expire(c.round - uint64(c.cfg.CacheRounds))
	}
	// Forget origins idle for twice the cache lifetime: by then no peer
	// offers their messages any more.
	if idle := 2*uint64(c.cfg.CacheRounds) + 2; c.round > idle {
		c.held.expire(c.round - idle)
	}
	if _, err := c.cfg.Filter.Prune(now); err != nil {
		c.stats.FilterErrors++
	}
	c.pruneLog(now)
	c.sendRepairs(now)
	if c.reasm.len() > 0 {
		c.expirePartials(now)
	}
	c.lastPeers = append(c.lastPeers[:0], c.roundPeers...)
	c.roundPeers = c.cfg.Peers.SamplePeers(c.rng, c.cfg.Fanout, c.roundPeers[:0])
	c.peerRound = c.peerRound[:0]
}

// Push publishes a message from this node: it is accepted (and returned in
// the next Ready's Messages for local delivery) and offered to pullers. A
// payload too large for one datagram is offered as chunks, all or none:
// ErrBackpressure if the cache cannot take them all now.
func (c *Core) Push(now time.Time, topic string, payload []byte) (Message, error) {
	c.begin()
	if err := ValidateTopic(topic); err != nil {
		return Message{}, err
	}
	if len(payload) > c.cfg.MaxMessageSize {
		return Message{}, fmt.Errorf("%w: %d bytes of payload, the limit is %d (MaxMessageSize)",
			ErrMessageTooLarge, len(payload), c.cfg.MaxMessageSize)
	}
	seq := c.nextSeq
	if seq == 0 {
		// Start from the clock so that a restarted node, which has
		// forgotten its counter, continues above its old numbers.
		seq = uint64(max(now.UnixMicro(), 1))
	}
	created := now.UnixMilli()
	if created <= 0 {
		return Message{}, fmt.Errorf("gossip: clock before 1970: %v", now)
	}
	size := EncodedMessageSize(seq, created, len(topic), len(payload))
	if wire.HeaderSize+size > c.cfg.MaxPacketSize {
		return c.pushChunked(seq, created, topic, payload)
	}
	if !c.cache.hasRoom(size) {
		c.stats.Backpressure++
		return Message{}, ErrBackpressure
	}
	enc := appendMessage(make([]byte, 0, size), c.cfg.ID, seq, created, topic, payload)
	wm, _, err := decodeMessage(enc)
	if err != nil {
		return Message{}, fmt.Errorf("gossip: encoding a message: %w", err) // a bug, not an input error
	}
	e := c.newEntry(wm, hashMessageID(wm.origin, wm.seq, wm.created, wm.topic, wm.payload), enc)
	if added, err := c.cfg.Filter.Add(e.msg.ID, c.expiry(created)); err != nil {
		return Message{}, fmt.Errorf("gossip: seen filter: %w", err)
	} else if !added {
		return Message{}, fmt.Errorf("gossip: message %v already seen", e.msg.ID)
	}
	c.nextSeq = seq + 1
	c.cache.add(e)
	c.logAccepted(e)
	c.held.add(c.cfg.ID, seq, c.round)
	c.out.Messages = append(c.out.Messages, e.msg)
	c.stats.Published++
	c.stats.Delivered++
	return e.msg, nil
}

func (c *Core) expiry(createdMillis int64) time.Time {
	return timeFromMillis(createdMillis).Add(c.cfg.MaxAge)
}

// newEntry makes a cache entry for the decoded message wm, whose ID is id,
// from enc, a private copy of wm.raw that is never modified afterwards (so
// the topic can share its bytes).
func (c *Core) newEntry(wm wireMessage, id MessageID, enc []byte) *cacheEntry {
	topic := enc[wm.topicAt : wm.topicAt+len(wm.topic)]
	payload := enc[len(enc)-len(wm.payload):]
	return &cacheEntry{
		enc:   enc,
		round: c.round,
		msg: Message{
			ID:      id,
			Origin:  wm.origin,
			Seq:     wm.seq,
			Created: timeFromMillis(wm.created),
			Topic:   unsafe.String(unsafe.SliceData(topic), len(topic)),
			Payload: payload[:len(payload):len(payload)],
		},
	}
}

// Handle processes a datagram received from a peer. Anything malformed is
// dropped and counted in Stats; nothing here panics on input.
func (c *Core) Handle(now time.Time, from netip.AddrPort, datagram []byte) {
	t, body, err := wire.Parse(datagram)
	if err != nil {
		c.begin()
		c.stats.DatagramsIn++
		c.stats.BytesIn += uint64(len(datagram))
		if errors.Is(err, wire.ErrVersion) {
			c.drop(DropVersion, 1)
		} else {
			c.drop(DropMalformed, 1)
		}
		return
	}
	c.HandlePacket(now, from, t, body)
}

// HandlePacket processes the body of a datagram whose header the caller
// has parsed (wire.Parse) and found to be of type t, of the gossip or the
// anti-entropy range. It is Handle without a second parse of the header.
func (c *Core) HandlePacket(now time.Time, from netip.AddrPort, t wire.PacketType, body []byte) {
	c.begin()
	c.stats.DatagramsIn++
	c.stats.BytesIn += uint64(wire.HeaderSize + len(body))
	switch t {
	case wire.Pull:
		c.handlePull(from, body)
	case wire.Messages:
		c.handleMessages(now, body)
	case wire.Fetch:
		c.handleFetch(from, body)
	case wire.More:
		c.handleMore(now, from, body)
	default:
		if t.Owner() == wire.OwnerAntiEntropy {
			c.handleAntiEntropy(now, from, t, body)
			return
		}
		c.drop(DropUnknownType, 1)
	}
}

func (c *Core) handleMessages(now time.Time, body []byte) {
	// Check the whole datagram before accepting any of it.
	n := 0
	for b := body; len(b) > 0; n++ {
		wm, rest, err := decodeMessage(b)
		if err != nil || wm.seq == math.MaxUint64 || validateTopic(wm.topic) != nil {
			c.drop(DropMalformed, 1)
			return
		}
		b = rest
	}
	if n == 0 {
		c.drop(DropMalformed, 1)
		return
	}
	c.stats.MessagesIn += uint64(n)
	for b := body; len(b) > 0; {
		wm, rest, _ := decodeMessage(b)
		b = rest
		c.accept(now, wm)
	}
}

func (c *Core) accept(now time.Time, wm wireMessage) {
	// No shortcut on the digest's holdings here: a gap given up to
	// anti-entropy is marked held, and its repair must not be taken for a
	// duplicate. The cache and the seen filter decide.
	nowMillis := now.UnixMilli()
	if wm.created < nowMillis-c.cfg.MaxAge.Milliseconds() {
		// Too old to be delivered, ever: stop peers from offering it.
		c.drop(DropTooOld, 1)
		c.held.add(wm.origin, wm.seq, c.round)
		return
	}
	if wm.created > nowMillis+c.cfg.ClockSkew.Milliseconds() {
		// Not marked held: it becomes acceptable as our clocks converge.
		c.drop(DropFromFuture, 1)
		return
	}
	if wire.HeaderSize+len(wm.raw) > c.cfg.MaxPacketSize {
		// A peer with a larger MaxPacketSize sent it; we could never forward it.
		c.drop(DropTooLarge, 1)
		c.held.add(wm.origin, wm.seq, c.round)
		return
	}
	if !c.cache.hasRoom(len(wm.raw)) {
		// Not marked held or seen: it will be pulled again once there is room.
		c.drop(DropCacheFull, 1)
		return
	}
	if wm.chunk.count != 0 {
		c.acceptChunk(now, &wm)
		return
	}
	id := hashMessageID(wm.origin, wm.seq, wm.created, wm.topic, wm.payload)
	// The seen filter alone decides: it keeps an ID until the message is
	// too old to pass the check above, so it knows everything cached.
	// Asking the cache first cost every new message one more map lookup to
	// spare the rare duplicate a filter lookup.
	added, err := c.cfg.Filter.Add(id, c.expiry(wm.created))
	switch {
	case errors.Is(err, filter.ErrFull):
		c.drop(DropFilterFull, 1)
		return
	case err != nil:
		c.stats.FilterErrors++
		c.drop(DropFilterError, 1)
		return
	case !added:
		c.stats.Duplicates++
		c.held.add(wm.origin, wm.seq, c.round)
		return
	}
	e := c.newEntry(wm, id, append([]byte(nil), wm.raw...))
	c.logAccepted(e)
	c.cache.add(e)
	c.held.add(wm.origin, wm.seq, c.round)
	c.out.Messages = append(c.out.Messages, e.msg)
	c.stats.Delivered++
}

func (c *Core) drop(r DropReason, n uint64) { c.stats.Dropped[r] += n }

// sendPull sends one pull request to peer: the digest of what this node
// holds, split into partitions of the origin space when it does not fit in
// one datagram.
func (c *Core) sendPull(peer netip.AddrPort) {
	c.ranges = c.ranges[:0]
	for i := range c.held.origins {
		o := &c.held.origins[i]
		c.ranges = append(c.ranges, OriginRanges{Origin: o.tag, Ranges: digestRanges(o.ranges, c.cfg.MaxRangesPerOrigin, c.stats.PullsSent)})
	}
	limit := c.cfg.MaxPacketSize - wire.HeaderSize - 2 - 10 // header, partition bytes, origin count
	bits := uint8(0)
	for ; bits < MaxPartitionBits; bits++ {
		if c.largestPartition(bits) <= limit {
			break
		}
	}
	for p := 0; p < 1<<bits; p++ {
		req := PullRequest{PartitionBits: bits, Partition: uint8(p)}
		size := 0
		for _, o := range c.ranges {
			if partitionOf(o.Origin, bits) != uint8(p) {
				continue
			}
			// Past the limit, the least recently listed origins are left
			// out: the peer sends their messages again and we count the
			// duplicates. Only thousands of active origins get here.
			if s := originRangesSize(&o); size+s <= limit {
				size += s
				req.Origins = append(req.Origins, o)
			}
		}
		start := len(c.arena)
		c.arena = AppendPullRequest(c.arena, &req)
		c.emit(peer, start)
		c.stats.PullsSent++
		c.stats.PullBytesOut += uint64(len(c.arena) - start)
	}
}

func (c *Core) largestPartition(bits uint8) int {
	c.sizes = append(c.sizes[:0], make([]int, 1<<bits)...)
	for i := range c.ranges {
		c.sizes[partitionOf(c.ranges[i].Origin, bits)] += originRangesSize(&c.ranges[i])
	}
	return max(0, maxOf(c.sizes))
}

func maxOf(xs []int) int {
	m := math.MinInt
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// emit queues the datagram arena[start:] for to.
func (c *Core) emit(to netip.AddrPort, start int) {
	c.out.Datagrams = append(c.out.Datagrams, Datagram{To: to, Data: c.arena[start:len(c.arena):len(c.arena)]})
	c.stats.DatagramsOut++
	c.stats.BytesOut += uint64(len(c.arena) - start)
}

// handlePull answers a pull with the cached messages its digest says the
// requester lacks, packed into as few datagrams as fit, under a byte budget.
func (c *Core) handlePull(from netip.AddrPort, body []byte) {
	req, err := c.pulls.decode(body)
	if err != nil {
		c.drop(DropMalformed, 1)
		return
	}
	c.stats.PullsIn++
	// A small digest is scanned; a large one indexed, in a map that a core
	// only pays for once it meets one.
	small := len(req.Origins) <= smallDigest
	if !small {
		if c.wanted == nil {
			c.wanted = make(map[OriginTag]int)
		}
		clear(c.wanted)
		for i := range req.Origins {
			c.wanted[req.Origins[i].Origin] = i
		}
	}
	a := c.answerTo(from, max(c.cfg.MaxPacketSize, c.cfg.MaxAnswerBytes>>req.PartitionBits))
	pr := a.pr
	n := len(c.cache.origins)
	if n == 0 || a.budget <= 0 {
		return
	}
	// Start at a random origin so that a tight budget is shared fairly.
	first := c.rng.IntN(n)
	for k := 0; k < n; k++ {
		oe := c.cache.origins[(first+k)%n]
		if !req.covers(oe.tag) {
			continue
		}
		var held []SeqRange
		if small {
			for i := range req.Origins {
				if req.Origins[i].Origin == oe.tag {
					held = req.Origins[i].Ranges
					break
				}
			}
		} else if i, ok := c.wanted[oe.tag]; ok {
			held = req.Origins[i].Ranges
		}
		if !oe.forEachMissing(held, a.add) {
			break
		}
	}
	a.finish()
	if pr == nil {
		return
	}
	// A digest too large for one datagram comes as one pull per partition,
	// back to back: one MORE for them all, after the last, or each would
	// bring a pull again of every partition, the later ones with a digest
	// that lacks what the first is bringing.
	pr.cut = pr.cut || a.cut
	if int(req.Partition) == 1<<req.PartitionBits-1 && pr.cut {
		pr.cut = false
		if c.allowance(pr) < c.cfg.MaxPacketSize {
			return
		}
		// Say so, and the puller pulls again at once with a digest that
		// holds this answer, instead of waiting for its next round.
		start := len(c.arena)
		c.arena = wire.AppendHeader(c.arena, wire.More)
		c.stats.MoresOut++
		c.emit(from, start)
	}
}

// smallDigest is the number of origins up to which a pull's digest is
// scanned rather than indexed.
const smallDigest = 16

// answer packs messages into datagrams for one pull.
type answer struct {
	c      *Core
	to     netip.AddrPort
	pr     *peerRound // to's budget this round; nil: untracked
	budget int
	spent  int
	start  int  // arena offset of the open datagram, or -1
	cut    bool // a message was left out for want of budget
}

func (a *answer) add(e *cacheEntry) bool { return a.addEncoded(e.enc) }

// addEncoded adds one encoded message; false when the budget is spent.
func (a *answer) addEncoded(enc []byte) bool {
	c := a.c
	n := len(enc)
	if wire.HeaderSize+n > c.cfg.MaxPacketSize {
		return true // from a peer with larger datagrams; never forwarded
	}
	if a.spent+n > a.budget {
		a.cut = true
		return false
	}
	if a.start >= 0 && len(c.arena)-a.start+n > c.cfg.MaxPacketSize {
		a.flush()
	}
	if a.start < 0 {
		a.start = len(c.arena)
		c.arena = wire.AppendHeader(c.arena, wire.Messages)
	}
	c.arena = append(c.arena, enc...)
	a.spent += n
	c.stats.MessagesOut++
	return true
}

// answerTo starts an answer to peer of at most limit bytes of messages,
// within what is left of the peer's budget this round. finish ends it.
func (c *Core) answerTo(peer netip.AddrPort, limit int) answer {
	pr := c.peerRoundOf(peer)
	return answer{c: c, to: peer, pr: pr, budget: min(limit, c.allowance(pr)), start: -1}
}

// finish sends what is left of the answer and charges it to the peer's
// budget.
func (a *answer) finish() {
	a.flush()
	a.c.charge(a.pr, a.spent)
}

// flush sends the open datagram.
func (a *answer) flush() {
	if a.start < 0 {
		return
	}
	a.c.stats.AnswerDatagramsOut++
	a.c.emit(a.to, a.start)
	a.start = -1
}

// Stats returns the core's counters and gauges.
func (c *Core) Stats() Stats {
	s := c.stats
	s.CacheMessages = c.cache.lru.Len()
	s.CacheBytes = c.cache.bytes
	s.Origins = len(c.held.origins)
	s.PartialMessages = c.reasm.len()
	if c.ae != nil {
		for _, r := range c.ae.repairs {
			s.AERepairsQueued += len(r.ids)
		}
	}
	s.PartialBytes = c.reasm.bytes
	return s
}

func timeFromMillis(ms int64) time.Time { return time.UnixMilli(ms) }
