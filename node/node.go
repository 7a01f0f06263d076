package node

import (
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hearsay-io/hearsay/filter"
	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/msglog"
	"github.com/hearsay-io/hearsay/node/exposition"
	"github.com/hearsay-io/hearsay/registry"
	"github.com/hearsay-io/hearsay/registry/dht"
	"github.com/hearsay-io/hearsay/registry/dns"
	"github.com/hearsay-io/hearsay/registry/memberlist"
	"github.com/hearsay-io/hearsay/registry/static"
	"github.com/hearsay-io/hearsay/security"
	"github.com/hearsay-io/hearsay/transport"
)

// FieldError is an error of New caused by one field of the Config: the data
// dir that cannot be made, read or locked ("DataDir"), the address that
// cannot be bound ("Bind").
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return "node: " + e.Field + ": " + e.Reason() }

// Reason is the error without the field's name.
func (e *FieldError) Reason() string { return strings.TrimPrefix(e.Err.Error(), "node: ") }

func (e *FieldError) Unwrap() error { return e.Err }

// Errors callers branch on. Publish also returns gossip.ErrBackpressure,
// gossip.ErrMessageTooLarge and gossip.ErrInvalidTopic.
var (
	ErrClosed         = errors.New("node: closed")
	ErrSlowSubscriber = errors.New("node: subscriber too slow, its buffer overflowed")
)

// Node is a running hearsay node. Its methods are safe for concurrent use
// (but see Config.Clock for a node on an in-memory network).
type Node struct {
	cfg       Config
	id        gossip.NodeID
	key       ed25519.PrivateKey // id is gossip.NodeIDOf its public key
	name      string
	logger    *slog.Logger
	clock     Clock
	rand      *rand.Rand // Config.Rand, or crypto-seeded; only New draws from it
	transport transport.Transport
	filter    filter.SeenFilter
	log       msglog.Log // guarded by mu (the core writes it)
	started   time.Time

	mu      sync.Mutex // guards everything below, and the core
	core    *gossip.Core
	subs    map[*Subscription]struct{}
	closed  bool
	sendErr uint64
	refused [numRefusals]uint64 // publishes refused, by reason
	sealer  *security.Sealer
	openBuf []byte
	sealBuf []byte
	batch   []transport.Datagram // scratch of sendLocked
	drops   map[string]uint64    // datagrams dropped before the core, by reason
	limits  sendLimits
	peers   *peerSet // the core's peers: the registry with hygiene
	acks    uint64   // PULL_ACKs sent
	// aeCompared is set once an anti-entropy session ended with the logs
	// compared: the first pass readiness waits for.
	aeCompared bool
	authWarn   authWarner
	timers     timers
	validation validation // with Config.Validator

	dht *dht.Registry // nil unless Config.DHT
	ml  *memberlist.Registry
	dns *dns.Registry // nil unless Config.DNS

	dnsCtx    context.Context // cancelled by Close, ending a resolution under way
	dnsCancel context.CancelFunc

	tickSeconds *exposition.Histogram // time spent in one Tick and its sends

	done chan struct{} // closed by Close, for the goroutines that wait
	wg   sync.WaitGroup
}

// New creates a node: it loads or creates its identity, opens its seen
// filter and message log, builds its gossip core and binds its UDP socket
// (unless given a Transport). Start runs it.
func New(cfg Config) (*Node, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, clock: cfg.Clock, rand: cfg.Rand, subs: map[*Subscription]struct{}{},
		drops: map[string]uint64{}, done: make(chan struct{})}
	if n.clock == nil {
		n.clock = systemClock{}
	}
	if n.rand == nil {
		n.rand = secureRand()
	}
	n.tickSeconds = newTickHistogram()
	// Each step that fails because of one field says which, so that the
	// agent can name its flag.
	steps := []struct {
		open  func() error
		field string
	}{{n.openIdentity, "DataDir"}, {n.openKeyring, "DataDir"}, {n.openFilter, "DataDir"}, {n.openLog, "DataDir"},
		{n.newCore, ""}, {n.openTransport, "Bind"}, {n.newDHTIfConfigured, ""}, {n.newDNSIfConfigured, ""}}
	for _, step := range steps {
		if err := step.open(); err != nil {
			n.release()
			if step.field == "DataDir" && n.cfg.DataDir != "" || step.field == "Bind" && n.cfg.Transport == nil {
				err = &FieldError{Field: step.field, Err: err}
			}
			return nil, err
		}
	}
	return n, nil
}

// openIdentity makes the data dir and loads the node's ID and name.
func (n *Node) openIdentity() error {
	if n.cfg.DataDir != "" {
		if err := os.MkdirAll(n.cfg.DataDir, 0o700); err != nil {
			return err // a FieldError says it is the data dir's
		}
	}
	ident, err := loadIdentity(n.cfg.DataDir, n.cfg.Name, n.newKey)
	if err != nil {
		return err
	}
	n.id, n.key, n.name = ident.ID, ident.Key, ident.Name
	n.logger = n.cfg.Logger.With("node", n.name)
	if !ident.Replaced.IsZero() {
		n.logger.Info("this data dir is from a version without node keys: created "+keyFile+"; the node's ID, derived from the key, changed",
			"old_id", ident.Replaced.String(), "id", n.id.String())
	}
	return nil
}

// newKey creates the node's Ed25519 key: from Config.Rand when one is given
// (reproducible tests), else from crypto/rand.
func (n *Node) newKey() (ed25519.PrivateKey, error) {
	if n.cfg.Rand == nil {
		_, key, err := ed25519.GenerateKey(nil)
		if err != nil {
			return nil, fmt.Errorf("node: creating the node key: %w", err)
		}
		return key, nil
	}
	var seed [ed25519.SeedSize]byte
	for i := 0; i < len(seed); i += 8 {
		binary.LittleEndian.PutUint64(seed[i:], n.rand.Uint64())
	}
	return ed25519.NewKeyFromSeed(seed[:]), nil
}

// openKeyring opens the keyring kept in the data dir, unless given one,
// and the sealer over it.
func (n *Node) openKeyring() error {
	if n.cfg.Keyring == nil {
		path := ""
		if n.cfg.DataDir != "" {
			path = filepath.Join(n.cfg.DataDir, "keyring.json")
		}
		ring, err := security.OpenKeyringFile(path)
		if err != nil {
			return fmt.Errorf("node: %w", err)
		}
		n.cfg.Keyring = ring
	}
	n.sealer = security.NewSealer(n.cfg.Keyring, n.cfg.Security)
	return nil
}

// openFilter opens the seen filter of Config.Filter.
func (n *Node) openFilter() error {
	if n.cfg.Filter == FilterMemory {
		n.filter = filter.NewMemory(filter.MemoryConfig{MaxEntries: n.cfg.MemoryFilterSize})
		return nil
	}
	db, err := filter.OpenLevelDB(filepath.Join(n.cfg.DataDir, "seen"), filter.LevelDBConfig{Sync: n.cfg.FilterSync})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.filter = db
	return nil
}

// openLog takes Config.Log, or opens the log that goes with the filter: in
// the data dir beside a leveldb filter, else in memory.
func (n *Node) openLog() error {
	switch {
	case n.cfg.Log != nil:
		n.log = n.cfg.Log
	case n.cfg.Filter == FilterLevelDB:
		l, err := msglog.OpenLevelDB(filepath.Join(n.cfg.DataDir, "log"), n.cfg.LogMaxBytes)
		if err != nil {
			return fmt.Errorf("node: %w", err)
		}
		n.log = l
	default:
		n.log = msglog.NewMemory(n.cfg.LogMaxBytes)
	}
	return nil
}

// newCore builds the peer set over the registry, the gossip core and the
// send limits.
func (n *Node) newCore() error {
	reg := n.cfg.Registry
	if reg == nil {
		// No peers; also the memberlist node's registry until Start
		// replaces it.
		empty, err := static.New(static.Config{})
		if err != nil {
			return fmt.Errorf("node: %w", err)
		}
		reg = empty
	}
	timeout := n.cfg.PeerTimeout
	if timeout < 0 {
		timeout = time.Duration(math.MaxInt64)
	}
	n.peers = newPeerSet(reg, timeout, n.clock.Now)
	n.peers.onChange = func(a netip.AddrPort, suspect bool) {
		if suspect {
			n.logger.Info("peer not answering, skipped for gossip until it does", "peer", a.String())
		} else {
			n.logger.Info("peer answering again", "peer", a.String())
		}
	}
	gc := n.cfg.Gossip
	gc.ID, gc.Peers, gc.Filter, gc.Log = n.id, n.peers, n.filter, n.log
	gc.MaxPacketSize -= security.Overhead // room for sealing, always
	gc.Rand = n.splitRand()
	if n.cfg.Sign {
		gc.SigningKey = n.key
	}
	gc.Validate = n.cfg.Validator != nil
	core, err := gossip.New(gc)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.core = core
	gc = core.Config()
	perRound := n.cfg.MaxBytesPerPeerRound
	if perRound <= 0 {
		perRound = defaultMaxBytesPerPeerRound(gc.MaxAnswerBytesPerRound, gc.MaxPacketSize+security.Overhead)
	}
	n.limits = newSendLimits(perRound, gc.Interval, func() []netip.AddrPort { return n.peers.registry().Peers() })
	return nil
}

// openTransport takes Config.Transport, or binds UDP on Config.Bind.
func (n *Node) openTransport() error {
	if n.cfg.Transport != nil {
		n.transport = n.cfg.Transport
		return nil
	}
	udp, err := transport.ListenUDP(n.cfg.Bind, n.cfg.UDP)
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return opErr // "listen udp ADDR: bind: address already in use", said once
	}
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.transport = udp
	return nil
}

// release closes what a failed New opened, but not what it was given.
func (n *Node) release() {
	if n.transport != nil && n.cfg.Transport == nil {
		n.transport.Close()
	}
	if n.log != nil && n.cfg.Log == nil {
		n.log.Close()
	}
	if n.filter != nil {
		n.filter.Close()
	}
}

// secureRand returns a PCG seeded from crypto/rand: a running node's
// choices (peers, request and session IDs) must not be predictable.
func secureRand() *rand.Rand {
	var seed [16]byte
	_, _ = crand.Read(seed[:])
	return rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
}

// splitRand returns a source of its own for one of the node's parts, drawn
// from the node's.
func (n *Node) splitRand() *rand.Rand {
	return rand.New(rand.NewPCG(n.rand.Uint64(), n.rand.Uint64()))
}

// Close stops the node gracefully: the timers and the transport stop,
// subscriptions close with ErrClosed, and the seen filter and the message
// log are closed so LevelDB is left consistent.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	for s := range n.subs {
		s.endLocked(ErrClosed)
	}
	n.timers.stopAll()
	n.validation.stopLocked()
	n.mu.Unlock()
	if n.dnsCancel != nil {
		n.dnsCancel()
	}
	var errs []error
	if n.ml != nil {
		errs = append(errs, n.stopMemberlist())
	}
	close(n.done)
	errs = append(errs, n.transport.Close())
	n.wg.Wait() // the timers' calls that had started, and the join loop
	if n.dht != nil {
		errs = append(errs, n.saveDHT())
	}
	if err := n.filter.Close(); err != nil {
		errs = append(errs, fmt.Errorf("node: closing seen filter: %w", err))
	}
	if err := n.log.Close(); err != nil {
		errs = append(errs, fmt.Errorf("node: closing message log: %w", err))
	}
	n.logger.Info("node stopped")
	for _, err := range errs {
		if err != nil {
			return err // the first
		}
	}
	return nil
}

// ID returns the node's ID.
func (n *Node) ID() gossip.NodeID { return n.id }

// PublicKey returns the node's Ed25519 public key, from which its ID is
// derived.
func (n *Node) PublicKey() ed25519.PublicKey { return n.key.Public().(ed25519.PublicKey) }

// Name returns the node's name.
func (n *Node) Name() string { return n.name }

// Addr returns the transport's address: the bound UDP address.
func (n *Node) Addr() netip.AddrPort { return n.transport.LocalAddr() }

// AdvertiseAddr returns the address peers should use: Config.Advertise, or
// the bound address.
func (n *Node) AdvertiseAddr() string {
	if n.cfg.Advertise != "" {
		return n.cfg.Advertise
	}
	return n.Addr().String()
}

// Peers returns the registry's current peers.
func (n *Node) Peers() []netip.AddrPort { return n.peers.registry().Peers() }

// Registry returns the node's registry: Config.Registry, or the DHT, DNS or
// memberlist registry it runs.
func (n *Node) Registry() registry.Registry { return n.peers.registry() }

// SuspectPeers returns the peers skipped for gossip because they stopped
// answering (Config.PeerTimeout).
func (n *Node) SuspectPeers() []netip.AddrPort {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.peers.suspects()
}
