package gossip

import (
	"errors"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/hearsay-io/hearsay/wire"
)

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

	parked       parking        // peers' long-poll pulls parked here (park.go)
	mergedReq    PullRequest    // scratch: a pull's digest with what its parked pull was sent
	polls        []poll         // this node's long-poll pulls parked at peers, subscriptions among them (subscribe.go)
	pruned       []poll         // peers whose subscription was pruned lately
	pendingGraft graft          // a hint waited on
	lateness     lateness       // of the subscriptions behind hints: how long to wait on one
	graftPeer    netip.AddrPort // the last graft's peer, whose answer is awaited until graftUntil
	graftSent    time.Time      // when the last graft went
	graftUntil   time.Time
	now          time.Time      // the time of the input being handled
	from         netip.AddrPort // the sender of the datagram being handled; zero otherwise
	fromSub      bool           // from is a subscription of this node
	dupSeen      bool           // the datagram being handled brought a message already here

	sign       signer         // this node's messages not yet signed (sign.go)
	stmtPeers  statementPeers // peers whose latest pull announced statements
	stmtsHeard bool           // a peer announced statements: this node does too
	keys       knownKeys      // origins' verified keys, and keyless statements waiting for one (keys.go)
	pend       pending        // messages held back for their origin's statement (pending.go)
	penalties  penalties      // peers charged with offences (penalty.go)
	verdicts   verdicts       // messages waiting for the application's verdict (validate.go)
	trustStats TrustStats

	ownTag      OriginTag   // TagOf(cfg.ID)
	spreadGauge spreadGauge // how far this node's messages have spread (spread.go)

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
		ownTag:       TagOf(cfg.ID),
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
	if p := c.nextParked(); !p.IsZero() && p.Before(next) {
		next = p
	}
	if g := c.pendingGraft; g.peer.IsValid() && g.at.Before(next) {
		next = g.at
	}
	if s := c.nextSign(); !s.IsZero() && s.Before(next) {
		next = s
	}
	return next
}

// Tick advances the core's clock. Call it no later than NextTick; extra
// calls are harmless. Each round it pulls from Fanout random peers, one pull
// every Interval/Fanout, and ages the cache and the seen filter.
func (c *Core) Tick(now time.Time) {
	c.begin()
	c.now, c.from, c.fromSub = now, netip.AddrPort{}, false
	defer c.flushParked(now)
	if !c.started {
		c.started = true
		// A random phase keeps nodes started together from pulling in lockstep.
		c.nextPull = now.Add(time.Duration(c.rng.Int64N(int64(c.slotInterval) + 1)))
		c.pruneLog(now)
		c.tickAntiEntropy(now)
		return
	}
	c.tickAntiEntropy(now)
	c.tickGraft(now)
	c.maybeSign(now)
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
			if peer, lp := c.roundPull(now, c.roundPeers[c.slot]); c.pullingAgain(now, peer) {
				// It is being pulled again on MOREs already: a round pull
				// would cross that answer, with a digest that lacks it.
				c.stats.RoundPullsSkipped++
			} else {
				c.sendPull(peer, lp)
			}
		}
		c.slot = (c.slot + 1) % c.cfg.Fanout
		c.nextPull = c.nextPull.Add(c.slotInterval)
	}
}

func (c *Core) startRound(now time.Time) {
	c.round++
	c.stats.Rounds++
	c.spreadRound()
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
	c.expireParked(now)
	c.expirePolls(now)
	if c.reasm.len() > 0 {
		c.expirePartials(now)
	}
	c.lastPeers = append(c.lastPeers[:0], c.roundPeers...)
	c.roundPeers = c.cfg.Peers.SamplePeers(c.rng, c.cfg.Fanout, c.roundPeers[:0])
	c.roundPeers = c.penalties.filter(c.rng, c.round, c.roundPeers)
	c.expirePending()
	c.expireKeyless()
	if len(c.verdicts.waiting) > 0 {
		c.expireVerdicts(now)
	}
	c.peerRound = c.peerRound[:0]
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
	c.now, c.from = now, from
	c.fromSub = c.isSubscription(from)
	defer c.flushParked(now)
	c.stats.DatagramsIn++
	c.stats.BytesIn += uint64(wire.HeaderSize + len(body))
	switch t {
	case wire.Pull:
		c.handlePull(now, from, body)
	case wire.Messages:
		c.answered(now, from)
		c.handleMessages(now, body)
	case wire.Fetch:
		c.handleFetch(from, body)
	case wire.More:
		c.handleMore(now, from, body)
	case wire.Hint:
		c.handleHint(now, from, body)
	default:
		if t.Owner() == wire.OwnerAntiEntropy {
			c.handleAntiEntropy(now, from, t, body)
			return
		}
		c.drop(DropUnknownType, 1)
	}
}

func (c *Core) drop(r DropReason, n uint64) { c.stats.Dropped[r] += n }

// nowNanos is the time of the input being handled, in Unix nanoseconds;
// before the first input (a log read by New), the least int64.
func (c *Core) nowNanos() int64 {
	if c.now.IsZero() {
		return math.MinInt64
	}
	return c.now.UnixNano()
}
