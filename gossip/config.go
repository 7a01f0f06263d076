package gossip

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/hearsay-io/hearsay/filter"
	"github.com/hearsay-io/hearsay/msglog"
	"github.com/hearsay-io/hearsay/wire"
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
	// remembers IDs for MaxAge, so it stays bounded and exact. Default
	// Retention (so MaxAge follows the retention), or DefaultRetention (10m).
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
	// SpreadWindow is how many of this node's own messages its pullers
	// may lack before Push refuses more with ErrBackpressure: the digests
	// of the pulls it answers say how far they have got, so that a node
	// publishes as fast as the cluster takes its messages in, and a burst
	// waits at the publisher rather than ageing out of the propagation
	// caches unspread (spread.go). Default 8,000, measured best for a
	// 100,000-message burst on 20 nodes (docs/bench.md): a smaller window
	// idles the cluster between pulls, a larger one lets laggards fall
	// behind into costly duplicates; negative: off, only the cache bounds
	// publishing.
	SpreadWindow int
	// MaxRangesPerOrigin bounds the ranges per origin in a pull digest; past
	// it the oldest gaps are left out of the digest until newer ones fill.
	// A node keeps track of 16 times as many; past that the oldest gap is
	// given up to anti-entropy. Default 16.
	MaxRangesPerOrigin int

	// MaxPark is the longest this node keeps a peer's long-poll pull open
	// (parked), whatever the pull asks, and what its own subscriptions ask
	// (docs/latency.md): a node keeps a few eager long-poll pulls parked
	// at peers, which send it new messages as they accept them, renewed
	// when less than an Interval is left; its round pulls are lazy when
	// parked, and bring a HINT of what is new. Set it alike on every node.
	// From 1ms to MaxLongPoll. Default 1s, the value measured in
	// docs/latency.md; negative: off, the node's pulls carry no option
	// and it parks none, as a node that predates long-poll.
	MaxPark time.Duration
	// MaxParked bounds the pulls parked here, over all peers; each peer has
	// at most one (its newest pull replaces the last). A long-poll pull
	// past it is answered as a plain pull and counted (ParkRefused). A node
	// holds about Fanout parked pulls on average. Default 64.
	MaxParked int
	// BatchWindow is the least time between two datagrams of new messages
	// to one parked pull: the first message after a quiet spell goes at
	// once, those that follow within BatchWindow go together at its end,
	// or as soon as they fill a datagram, so that at high rates a datagram
	// still carries many messages and waits no longer than it takes to
	// fill. Default 10ms (docs/latency.md); negative: none (each input's
	// messages go at its end).
	BatchWindow time.Duration

	// SigningKey, when set, is this node's Ed25519 key, whose public key's
	// NodeIDOf must be ID: the core then signs its messages with
	// statements and accepts, delivers and relays no message that its
	// origin's statement does not verify (sign.go, pending.go). Its pulls
	// announce that it understands statements, as do those of a core that
	// does not sign once a peer's did; only such pullers get any
	// (statement_peers.go). Nodes that predate statements get none and
	// take a signing origin's messages unverified. Default nil: off.
	SigningKey ed25519.PrivateKey
	// SignWindow paces this node's statements: one per SignWindow,
	// sustained, after a burst of four. Up to one message per SignWindow,
	// every message is signed at once; above, a statement comes every
	// SignWindow, covering what was published since, so that signing and
	// verifying cost each node about 50µs per SignWindow whatever the
	// rate. Default 10ms.
	SignWindow time.Duration

	// predatesStatements makes this core play a node built before
	// statements, for tests of mixed clusters (export_test.go): it drops a
	// MESSAGES datagram that holds one as malformed, and its pulls do not
	// announce statements.
	predatesStatements bool

	// Validate makes every message wait, before it is accepted, for the
	// caller's verdict: it comes out in Ready.Validate and is accepted,
	// rejected or ignored by Verdict (validate.go). The node sets it when
	// it has a validator. Default false.
	Validate bool

	// Log keeps the accepted messages for Retention, for anti-entropy (and
	// for the node to resume event streams). Nil: no log and no
	// anti-entropy. The core appends to and prunes it; it must hold no other
	// writer.
	Log msglog.Log
	// Retention is how long messages stay in the log, by creation time; at
	// most MaxAge and MaxRetention (7 days); the log's byte bound may keep
	// less. Default MaxAge.
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
		c.MaxAge = defaultMaxAge(c.Retention)
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
	if c.SpreadWindow == 0 {
		c.SpreadWindow = 8000
	}
	if c.MaxRangesPerOrigin == 0 {
		c.MaxRangesPerOrigin = 16
	}
	if c.MaxPark == 0 {
		c.MaxPark = time.Second
	}
	if c.MaxParked == 0 {
		c.MaxParked = 64
	}
	if c.BatchWindow == 0 {
		c.BatchWindow = 10 * time.Millisecond
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
	if c.SignWindow == 0 {
		c.SignWindow = 10 * time.Millisecond
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
	case c.MaxPark > 0 && c.MaxPark < time.Millisecond || c.MaxPark > MaxLongPoll:
		return fmt.Errorf("gossip: MaxPark %v out of range 1ms..%v", c.MaxPark, MaxLongPoll)
	case c.MaxParked < 1 || c.MaxParked > maxTrackedPeers:
		return fmt.Errorf("gossip: MaxParked %d out of range 1..%d", c.MaxParked, maxTrackedPeers)
	case c.Retention < 0 || c.Retention > min(c.MaxAge, MaxRetention):
		return fmt.Errorf("gossip: Retention %v out of range 0..min(MaxAge (%v), %v)", c.Retention, c.MaxAge, MaxRetention)
	case c.MaxMessageSize < 1 || c.MaxMessageSize > MaxChunkedSize:
		return fmt.Errorf("gossip: MaxMessageSize %d out of range 1..%d", c.MaxMessageSize, MaxChunkedSize)
	case c.MaxPartialBytes < minPartialBytes(c.MaxMessageSize):
		return fmt.Errorf("gossip: MaxPartialBytes %d is below 2 × MaxMessageSize + 4096 (%d)", c.MaxPartialBytes, minPartialBytes(c.MaxMessageSize))
	case c.SigningKey != nil && len(c.SigningKey) != ed25519.PrivateKeySize:
		return fmt.Errorf("gossip: SigningKey of %d bytes, want %d", len(c.SigningKey), ed25519.PrivateKeySize)
	case c.SigningKey != nil && NodeIDOf(c.SigningKey.Public().(ed25519.PublicKey)) != c.ID:
		return fmt.Errorf("gossip: SigningKey is not the key of ID %v", c.ID)
	case c.SignWindow < 0:
		return fmt.Errorf("gossip: negative SignWindow %v", c.SignWindow)
	case c.ReassemblyTimeout <= 0 || c.ReassemblyTimeout > c.MaxAge:
		return fmt.Errorf("gossip: ReassemblyTimeout %v out of range (0, MaxAge (%v)]", c.ReassemblyTimeout, c.MaxAge)
	}
	return nil
}

// minPartialBytes is the least MaxPartialBytes for messages of up to
// maxMessage bytes: a partial's cost is at most 1.375 times its payload
// (24 bytes of bookkeeping per chunk of at least MinChunkSize) plus 256.
func minPartialBytes(maxMessage int) int {
	if maxMessage > (math.MaxInt-4096)/2 {
		return math.MaxInt // 32-bit platforms: no bound fits, so none validates
	}
	return 2*maxMessage + 4096
}
