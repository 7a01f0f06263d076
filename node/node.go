// Package node runs a hearsay node: it drives the gossip core (package
// gossip) with a UDP socket, real timers, a seen filter and a registry of
// peers, and hands delivered messages to local subscribers. It also serves
// the local HTTP API (api.go).
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hearsay-io/hearsay/filter"
	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/msglog"
	"github.com/hearsay-io/hearsay/registry"
	"github.com/hearsay-io/hearsay/registry/dht"
	"github.com/hearsay-io/hearsay/registry/memberlist"
	"github.com/hearsay-io/hearsay/registry/static"
	"github.com/hearsay-io/hearsay/security"
	"github.com/hearsay-io/hearsay/transport"
	"github.com/hearsay-io/hearsay/wire"
)

// Errors callers branch on. Publish also returns gossip.ErrBackpressure,
// gossip.ErrMessageTooLarge and gossip.ErrInvalidTopic.
var (
	ErrClosed         = errors.New("node: closed")
	ErrSlowSubscriber = errors.New("node: subscriber too slow, its buffer overflowed")
)

// Filter kinds.
const (
	FilterLevelDB = "leveldb"
	FilterMemory  = "memory"
)

// Config configures a Node. Zero values take the defaults written beside
// each field.
type Config struct {
	// Name is a human-readable name. Default: the name stored in DataDir,
	// else the hostname plus a short random suffix (then stored).
	Name string
	// DataDir holds the node's identity and, with the leveldb filter, its
	// seen filter. Empty: nothing is kept, the node gets a new ID at every
	// start, and Filter must be "memory".
	DataDir string
	// Bind is the UDP address gossip listens on. Default "0.0.0.0:7600".
	Bind string
	// Advertise is the address peers should use for this node, shown in
	// status. Default: the bound address.
	Advertise string
	// Registry supplies the peers. Default: an empty static registry, or
	// the DHT or memberlist registry the node runs itself when DHT or
	// Memberlist is set (Registry must then be nil).
	Registry registry.Registry
	// DHT, when set, makes the node run a Kademlia peer table (package
	// registry/dht) over its own gossip socket, sealed like gossip, and
	// gossip with the peers it samples. The node sets Self, SelfAddr (from
	// Advertise, or the bound address), Rand and MaxPacketSize; Bootstrap
	// are other nodes' gossip addresses. With a DataDir, the table is saved
	// in DataDir/dht-peers every minute and at Close, and restored at start
	// so that a restart rejoins fast.
	DHT *dht.Config
	// Memberlist, when set, makes the node run hashicorp/memberlist
	// membership (package registry/memberlist) from Start to Close, and
	// gossip with its live members. The node sets Name, GossipAddr, Label
	// (the cluster), Logger and, when encrypted, SecretKey and ExtraKeys
	// (derived from the keyring, and kept in step with key rotations);
	// BindPort defaults to the gossip port + 2.
	Memberlist *memberlist.Config
	// Join are memberlist addresses to join through (with Memberlist). The
	// node retries in the background until one answers.
	Join []string
	// PeerTimeout: a peer pulled at least 3 times over this long without a
	// single datagram back is skipped for gossip (but for one probe pull
	// per PeerTimeout) until it is heard from again. Default 10s; negative:
	// never skip.
	PeerTimeout time.Duration
	// Filter is the seen-filter kind: "leveldb" (default with a DataDir) or
	// "memory" (default without).
	Filter string
	// FilterSync makes the leveldb filter fsync every write: it then survives
	// power loss, not only process crashes. Default false.
	FilterSync bool
	// MemoryFilterSize bounds the memory filter, in IDs. Default 1<<20.
	MemoryFilterSize int
	// Gossip tunes the protocol core: Fanout, Interval, MaxPacketSize,
	// MaxAge, cache bounds (see gossip.Config for their defaults). The node
	// sets ID, Peers, Filter and Rand itself.
	Gossip gossip.Config
	// UDP tunes the socket (buffer sizes).
	UDP transport.UDPConfig
	// Keyring holds the cluster keys. Nil: the keyring kept in DataDir
	// (keyring.json), or an empty one without a DataDir. With no key,
	// datagrams travel unencrypted (for development: the agent warns).
	Keyring *security.Keyring
	// Security tunes the replay window of sealed datagrams.
	Security security.SealerConfig
	// Cluster names the cluster; with a passphrase it salts the key, so
	// every node of a cluster must use the same name. Default "hearsay".
	Cluster string
	// KDF are the Argon2id parameters for passphrases installed at run time
	// (InstallPassphrase). Default security.DefaultKDFParams.
	KDF security.KDFParams
	// Retention is how long accepted messages are kept in the message log,
	// for anti-entropy and for resuming streams. Default: Gossip.MaxAge.
	Retention time.Duration
	// AEInterval is how often the node reconciles its log with a random
	// peer. Default 10s; negative: never.
	AEInterval time.Duration
	// LogMaxBytes bounds the message log. Default 64 MiB.
	LogMaxBytes int64
	// MaxBytesPerPeerRound caps the bytes sent to any one address per round
	// (Gossip.Interval), sealed, whatever the core asks: a safety net under
	// the core's own Gossip.MaxAnswerBytesPerRound. Default: twice
	// Gossip.MaxAnswerBytesPerRound, as sealed datagrams (about 2.1 MiB).
	MaxBytesPerPeerRound int
	// SubscriberBuffer is how many messages a subscriber may fall behind
	// before it is cut off with ErrSlowSubscriber. Default 1024.
	SubscriberBuffer int
	// Logger receives the node's logs. Default slog.Default().
	Logger *slog.Logger
}

// Node is a running hearsay node. Its methods are safe for concurrent use.
type Node struct {
	cfg     Config
	id      gossip.NodeID
	name    string
	logger  *slog.Logger
	udp     *transport.UDP
	filter  filter.SeenFilter
	log     msglog.Log // guarded by mu (the core writes it)
	started time.Time

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

	dht     *dht.Registry // nil unless Config.DHT
	dhtKick chan struct{} // wakes the DHT timer after an input
	ml      *memberlist.Registry

	tickSeconds prometheus.Histogram // time spent in one Tick and its sends

	done chan struct{}
	wg   sync.WaitGroup
}

// New creates a node: it loads or creates its identity, opens its seen
// filter and binds its UDP socket. Start runs it.
func New(cfg Config) (*Node, error) {
	if cfg.Bind == "" {
		cfg.Bind = "0.0.0.0:7600"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SubscriberBuffer <= 0 {
		cfg.SubscriberBuffer = 1024
	}
	if cfg.PeerTimeout == 0 {
		cfg.PeerTimeout = 10 * time.Second
	}
	if cfg.DHT != nil && cfg.Memberlist != nil {
		return nil, errors.New("node: Config.DHT and Config.Memberlist are exclusive")
	}
	if (cfg.DHT != nil || cfg.Memberlist != nil) && cfg.Registry != nil {
		return nil, errors.New("node: Config.Registry must be nil with Config.DHT or Config.Memberlist")
	}
	if cfg.Registry == nil {
		// Also the memberlist node's registry until Start replaces it.
		empty, err := static.New(static.Config{})
		if err != nil {
			return nil, err
		}
		cfg.Registry = empty
	}
	if cfg.Cluster == "" {
		cfg.Cluster = "hearsay"
	}
	if cfg.Filter == "" {
		cfg.Filter = FilterMemory
		if cfg.DataDir != "" {
			cfg.Filter = FilterLevelDB
		}
	}
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("node: data dir: %w", err)
		}
	}
	id, name, err := loadIdentity(cfg.DataDir, cfg.Name)
	if err != nil {
		return nil, err
	}
	if cfg.Keyring == nil {
		path := ""
		if cfg.DataDir != "" {
			path = filepath.Join(cfg.DataDir, "keyring.json")
		}
		ring, err := security.OpenKeyringFile(path)
		if err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		cfg.Keyring = ring
	}
	n := &Node{cfg: cfg, id: id, name: name, logger: cfg.Logger.With("node", name),
		subs: map[*Subscription]struct{}{}, done: make(chan struct{}),
		sealer: security.NewSealer(cfg.Keyring, cfg.Security), drops: map[string]uint64{}}
	n.tickSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "hearsay_round_duration_seconds",
		Help:    "Time the node spends in one gossip tick: digest, pulls sent, cache and filter upkeep.",
		Buckets: prometheus.ExponentialBuckets(10e-6, 4, 10),
	})

	switch cfg.Filter {
	case FilterMemory:
		n.filter = filter.NewMemory(filter.MemoryConfig{MaxEntries: cfg.MemoryFilterSize})
	case FilterLevelDB:
		if cfg.DataDir == "" {
			return nil, errors.New("node: the leveldb filter needs a data dir")
		}
		db, err := filter.OpenLevelDB(filepath.Join(cfg.DataDir, "seen"), filter.LevelDBConfig{Sync: cfg.FilterSync})
		if err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		n.filter = db
	default:
		return nil, fmt.Errorf("node: unknown filter %q (want leveldb or memory)", cfg.Filter)
	}

	if cfg.Filter == FilterLevelDB {
		n.log, err = msglog.OpenLevelDB(filepath.Join(cfg.DataDir, "log"), cfg.LogMaxBytes)
		if err != nil {
			n.filter.Close()
			return nil, fmt.Errorf("node: %w", err)
		}
	} else {
		n.log = msglog.NewMemory(cfg.LogMaxBytes)
	}
	timeout := cfg.PeerTimeout
	if timeout < 0 {
		timeout = time.Duration(math.MaxInt64)
	}
	n.peers = newPeerSet(cfg.Registry, timeout)
	n.peers.onChange = func(a netip.AddrPort, suspect bool) {
		if suspect {
			n.logger.Info("peer not answering, skipped for gossip until it does", "peer", a.String())
		} else {
			n.logger.Info("peer answering again", "peer", a.String())
		}
	}
	gc := cfg.Gossip
	gc.ID, gc.Peers, gc.Filter, gc.Log = id, n.peers, n.filter, n.log
	gc.Retention, gc.AEInterval = cfg.Retention, cfg.AEInterval
	// Room for sealing is always kept, so that a cluster can turn
	// encryption on without changing which messages fit.
	if gc.MaxPacketSize == 0 {
		gc.MaxPacketSize = 1400
	}
	gc.MaxPacketSize -= security.Overhead
	gc.Rand = secureRand()
	if n.core, err = gossip.New(gc); err != nil {
		n.filter.Close()
		n.log.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	gc = n.core.Config()
	perRound := cfg.MaxBytesPerPeerRound
	if perRound <= 0 {
		// The core sends a peer at most MaxAnswerBytesPerRound of messages
		// per round of its own; this window is not aligned with its rounds,
		// so it may see two rounds' worth. Counted as sealed: each datagram
		// grows by the sealing overhead.
		perDatagram := gc.MaxPacketSize + security.Overhead
		perRound = 2 * (gc.MaxAnswerBytesPerRound/gc.MaxPacketSize + 2) * perDatagram
	}
	n.limits = newSendLimits(perRound, gc.Interval, func() []netip.AddrPort { return n.peers.registry().Peers() })
	if n.udp, err = transport.ListenUDP(cfg.Bind, cfg.UDP); err != nil {
		n.filter.Close()
		n.log.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	if cfg.DHT != nil {
		if err := n.newDHT(gc.MaxPacketSize); err != nil {
			n.udp.Close()
			n.filter.Close()
			n.log.Close()
			return nil, err
		}
	}
	return n, nil
}

// Start runs the node's read loop and gossip timer.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	if !n.started.IsZero() {
		return errors.New("node: already started")
	}
	if n.cfg.Memberlist != nil {
		if err := n.startMemberlist(); err != nil {
			return err
		}
	}
	n.started = time.Now()
	n.wg.Add(2)
	go n.readLoop()
	go n.tickLoop()
	if n.dht != nil {
		n.wg.Add(1)
		go n.dhtLoop()
	}
	n.logger.Info("node started", "id", n.id.String(), "gossip_addr", n.Addr().String(), "filter", n.cfg.Filter)
	return nil
}

func (n *Node) readLoop() {
	defer n.wg.Done()
	err := n.udp.ServeBatch(func(batch []transport.Received) {
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.closed {
			return
		}
		now := time.Now()
		for _, r := range batch {
			n.receiveLocked(now, r.From, r.Data)
		}
	})
	if err != nil {
		n.logger.Error("UDP read loop stopped", "err", err)
	}
}

// receiveLocked opens and dispatches one datagram.
func (n *Node) receiveLocked(now time.Time, from netip.AddrPort, datagram []byte) {
	n.limits.received(from, len(datagram), now)
	if n.cfg.Keyring.Enabled() {
		plain, err := n.sealer.Open(n.openBuf[:0], datagram, now)
		if err != nil {
			n.drops[security.DropReason(err)]++
			return
		}
		n.openBuf, datagram = plain, plain
	} else if security.IsSealed(datagram) {
		n.drops["sealed"]++ // we have no key: a sealed datagram is not for us
		return
	}
	n.handleLocked(now, from, datagram)
}

// reloader is a registry that can re-read its source (a peers file).
type reloader interface {
	ReloadIfChanged() (bool, error)
}

func (n *Node) tickLoop() {
	defer n.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	reload := time.NewTicker(time.Second)
	defer reload.Stop()
	for {
		select {
		case <-n.done:
			return
		case <-reload.C:
			if r, ok := n.cfg.Registry.(reloader); ok {
				if changed, err := r.ReloadIfChanged(); err != nil {
					n.logger.Warn("peers file not reloaded, keeping the old peers", "err", err)
				} else if changed {
					n.logger.Info("peers file reloaded", "peers", len(n.cfg.Registry.Peers()))
				}
			}
			continue
		case <-timer.C:
		}
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			return
		}
		start := time.Now()
		n.core.Tick(start)
		n.flushLocked()
		next := n.core.NextTick()
		n.mu.Unlock()
		n.tickSeconds.Observe(time.Since(start).Seconds())
		timer.Reset(time.Until(next))
	}
}

// handleLocked parses an authentic (opened, or plaintext in a cluster
// without keys) datagram's header, once, and hands its body to the owner of
// its type: PULL_ACKs to peer hygiene, DHT packets to the DHT, the rest to
// the gossip core.
func (n *Node) handleLocked(now time.Time, from netip.AddrPort, datagram []byte) {
	t, body, err := wire.Parse(datagram)
	if err != nil {
		n.core.Handle(now, from, datagram) // the core counts what is wrong
		n.flushLocked()
		return
	}
	n.peers.heard(from)
	switch t.Owner() {
	case wire.OwnerPeers:
		return
	case wire.OwnerDHT:
		if n.dht != nil {
			rd := n.dht.HandlePacket(now, from, t, body)
			n.sendLocked(rd.Datagrams, now)
			n.kickDHT()
			return
		}
	}
	n.core.HandlePacket(now, from, t, body)
	if t == wire.Pull && !n.answersTo(from) && n.peers.shouldAck(from, now) {
		n.acks++
		n.sendLocked([]gossip.Datagram{{To: from, Data: wire.AppendHeader(nil, wire.PullAck)}}, now)
	}
	// Flushed per datagram: the core reuses its output buffers once they
	// were taken, at its next input.
	n.flushLocked()
}

// answersTo reports whether the core's pending datagrams include one to a.
func (n *Node) answersTo(a netip.AddrPort) bool {
	for _, d := range n.core.Ready().Datagrams {
		if d.To == a {
			return true
		}
	}
	return false
}

// flushLocked sends the core's datagrams and hands its messages to
// subscribers. The datagrams must go out before the core's next input.
func (n *Node) flushLocked() {
	rd := n.core.Ready()
	now := time.Now()
	for _, d := range rd.Datagrams {
		if t, _ := wire.TypeOf(d.Data); t == wire.Pull {
			n.peers.pulled(d.To, now)
		}
	}
	n.sendLocked(rd.Datagrams, now)
	for _, m := range rd.Messages {
		for s := range n.subs {
			s.offer(m)
		}
	}
}

// sendLocked seals (when encrypted) and sends datagrams, within the send
// limits, in one batch: one system call for up to 64 datagrams where the
// platform allows.
func (n *Node) sendLocked(datagrams []gossip.Datagram, now time.Time) {
	encrypted := n.cfg.Keyring.Enabled()
	if encrypted {
		// Sealed copies go into one arena, sized up front so that the
		// slices into it stay valid.
		size := 0
		for _, d := range datagrams {
			size += len(d.Data) + security.Overhead
		}
		if cap(n.sealBuf) < size {
			n.sealBuf = make([]byte, 0, size)
		}
		n.sealBuf = n.sealBuf[:0]
	}
	batch := n.batch[:0]
	for _, d := range datagrams {
		data := d.Data
		size := len(data)
		if encrypted {
			size += security.Overhead
		}
		// The DHT's own requests are not answers a forged source could aim
		// at a victim: they may go to addresses that never wrote to us.
		request := n.dht != nil && dht.IsRequest(data)
		if reason := n.limits.allow(d.To, size, now, request); reason != "" {
			n.drops[reason]++
			continue
		}
		if encrypted {
			start := len(n.sealBuf)
			sealed, err := n.sealer.Seal(n.sealBuf, data, now)
			if err != nil {
				n.drops["seal_error"]++
				continue
			}
			n.sealBuf, data = sealed, sealed[start:len(sealed):len(sealed)]
		}
		batch = append(batch, transport.Datagram{To: d.To, Data: data})
	}
	if len(batch) > 0 {
		before := n.udp.Stats().WriteErrors
		if err := n.udp.SendBatch(batch); err != nil {
			n.sendErr += n.udp.Stats().WriteErrors - before
			n.logger.Debug("send failed", "err", err)
		}
	}
	clear(batch) // drop the references to the core's buffers
	n.batch = batch[:0]
}

// Publish publishes a message to the cluster and returns its ID. The message
// is also delivered to this node's own subscribers. Errors:
// gossip.ErrInvalidTopic, gossip.ErrMessageTooLarge, gossip.ErrBackpressure
// (retry later), ErrClosed.
func (n *Node) Publish(ctx context.Context, topic string, payload []byte) (gossip.MessageID, error) {
	if err := ctx.Err(); err != nil {
		return gossip.MessageID{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return gossip.MessageID{}, ErrClosed
	}
	m, err := n.core.Push(time.Now(), topic, payload)
	if err != nil {
		switch { // the API counts what it refuses before reaching here itself
		case errors.Is(err, gossip.ErrBackpressure):
			n.refused[refusedBackpressure]++
		case errors.Is(err, gossip.ErrMessageTooLarge):
			n.refused[refusedTooLarge]++
		case errors.Is(err, gossip.ErrInvalidTopic):
			n.refused[refusedInvalidTopic]++
		default:
			n.refused[refusedError]++
		}
		return gossip.MessageID{}, err
	}
	n.flushLocked()
	return m.ID, nil
}

// Subscribe returns a subscription to the messages whose topic matches
// pattern (see ParsePattern), from now on.
func (n *Node) Subscribe(pattern string) (*Subscription, error) {
	p, err := ParsePattern(pattern)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.subscribeLocked(p)
}

func (n *Node) subscribeLocked(p Pattern) (*Subscription, error) {
	if n.closed {
		return nil, ErrClosed
	}
	ch := make(chan gossip.Message, n.cfg.SubscriberBuffer)
	s := &Subscription{C: ch, ch: ch, pattern: p, node: n}
	n.subs[s] = struct{}{}
	return s, nil
}

// Close stops the node gracefully: the loops end, subscriptions close with
// ErrClosed, and the seen filter is closed so LevelDB is left consistent.
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
	n.mu.Unlock()
	var err error
	if n.ml != nil {
		err = n.stopMemberlist()
	}
	close(n.done)
	if uerr := n.udp.Close(); uerr != nil && err == nil {
		err = uerr
	}
	n.wg.Wait()
	if n.dht != nil {
		if derr := n.saveDHT(); derr != nil && err == nil {
			err = derr
		}
	}
	if ferr := n.filter.Close(); ferr != nil && err == nil {
		err = fmt.Errorf("node: closing seen filter: %w", ferr)
	}
	if lerr := n.log.Close(); lerr != nil && err == nil {
		err = fmt.Errorf("node: closing message log: %w", lerr)
	}
	n.logger.Info("node stopped")
	return err
}

// ID returns the node's ID.
func (n *Node) ID() gossip.NodeID { return n.id }

// Name returns the node's name.
func (n *Node) Name() string { return n.name }

// Addr returns the bound UDP address.
func (n *Node) Addr() netip.AddrPort { return n.udp.LocalAddr() }

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

// Registry returns the node's registry: Config.Registry, or the DHT or
// memberlist registry it runs.
func (n *Node) Registry() registry.Registry { return n.peers.registry() }

// SuspectPeers returns the peers skipped for gossip because they stopped
// answering (Config.PeerTimeout).
func (n *Node) SuspectPeers() []netip.AddrPort {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.peers.suspects()
}

// Stats returns the core's counters, the socket's, and the number of
// subscribers.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	drops := make(map[string]uint64, len(n.drops))
	for k, v := range n.drops {
		drops[k] = v
	}
	return Stats{Gossip: n.core.Stats(), UDP: n.udp.Stats(), Subscribers: len(n.subs),
		FilterIDs: n.filter.Len(), Refused: n.refused, SendErrors: n.sendErr, Drops: drops,
		Peers: PeerStats{Suspects: len(n.peers.suspects()), Suspected: n.peers.suspected,
			Recovered: n.peers.recovered, PullsSkipped: n.peers.skipped, AcksSent: n.acks}}
}

// PeerStats counts peer hygiene.
type PeerStats struct {
	Suspects     int    // peers skipped now
	Suspected    uint64 // times a peer became a suspect
	Recovered    uint64 // times a suspect was heard from again
	PullsSkipped uint64 // pulls not sent to a suspect
	AcksSent     uint64 // PULL_ACKs sent
}

// Stats is a snapshot of a node's counters.
type Stats struct {
	Gossip      gossip.Stats
	UDP         transport.UDPStats
	Subscribers int
	FilterIDs   int
	Refused     [numRefusals]uint64 // publishes refused, indexed like RefusalReasons
	SendErrors  uint64
	// Drops counts datagrams dropped outside the core, by reason: security
	// (plaintext, sealed, truncated, unknown_key, auth_failed, stale,
	// replay) and send limits (amplification, peer_round_cap).
	Drops map[string]uint64
	Peers PeerStats
}

func (n *Node) merkleRoot() ([32]byte, int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	root, count := n.core.MerkleRoot()
	return root, count
}

func (n *Node) countRefusal(reason int) {
	n.mu.Lock()
	n.refused[reason]++
	n.mu.Unlock()
}

// Why a publish was refused; the labels of hearsay_messages_refused_total.
const (
	refusedBackpressure = iota
	refusedTooLarge
	refusedInvalidTopic
	refusedError
	numRefusals
)

// RefusalReasons names the entries of Stats.Refused.
var RefusalReasons = [numRefusals]string{"backpressure", "too_large", "invalid_topic", "error"}

// Status is a node's state as GET /v1/status shows it.
type Status struct {
	Name              string  `json:"name"`
	ID                string  `json:"id"`
	Version           string  `json:"version"`
	GossipAddr        string  `json:"gossip_addr"`
	BindAddr          string  `json:"bind_addr"`
	Peers             int     `json:"peers"`
	Filter            string  `json:"filter"`
	FilterIDs         int     `json:"filter_ids"`
	MessagesPublished uint64  `json:"messages_published"`
	MessagesDelivered uint64  `json:"messages_delivered"`
	Duplicates        uint64  `json:"duplicates"`
	CacheMessages     int     `json:"cache_messages"`
	CacheBytes        int     `json:"cache_bytes"`
	Subscribers       int     `json:"subscribers"`
	Rounds            uint64  `json:"rounds"`
	Fanout            int     `json:"fanout"`
	Interval          string  `json:"interval"`
	MaxPacketSize     int     `json:"max_packet_size"`
	Encrypted         bool    `json:"encrypted"`
	Keys              int     `json:"keys"`
	MerkleRoot        string  `json:"merkle_root"`
	LogMessages       int     `json:"log_messages"`
	LogBytes          int64   `json:"log_bytes"`
	UptimeSeconds     float64 `json:"uptime_seconds"`
}

// Status returns the node's status.
func (n *Node) Status() Status {
	st := n.Stats()
	gc := n.core.Config()
	s := Status{
		Name: n.name, ID: n.id.String(), Version: Version,
		GossipAddr: n.AdvertiseAddr(), BindAddr: n.Addr().String(),
		Peers: len(n.Peers()), Filter: n.cfg.Filter, FilterIDs: st.FilterIDs,
		MessagesPublished: st.Gossip.Published, MessagesDelivered: st.Gossip.Delivered,
		Duplicates: st.Gossip.Duplicates, CacheMessages: st.Gossip.CacheMessages,
		CacheBytes: st.Gossip.CacheBytes, Subscribers: st.Subscribers, Rounds: st.Gossip.Rounds,
		Fanout: gc.Fanout, Interval: gc.Interval.String(), MaxPacketSize: gc.MaxPacketSize + security.Overhead,
		Encrypted: n.cfg.Keyring.Enabled(), Keys: len(n.cfg.Keyring.List()),
	}
	n.mu.Lock()
	started := n.started
	root, logged := n.core.MerkleRoot()
	s.LogBytes = n.log.Bytes()
	n.mu.Unlock()
	s.MerkleRoot, s.LogMessages = root.String(), logged
	if !started.IsZero() {
		s.UptimeSeconds = time.Since(started).Seconds()
	}
	return s
}

// MaxPayload is the largest payload a message may carry here:
// Gossip.MaxMessageSize. Payloads that do not fit one datagram travel as
// chunks.
func (n *Node) MaxPayload() int { return n.core.Config().MaxMessageSize }

// Subscription delivers the messages matching a pattern on C. C is closed
// when the subscription ends: by Close, by the node closing, or because the
// subscriber fell more than Config.SubscriberBuffer messages behind; Err then
// says which.
type Subscription struct {
	C       <-chan gossip.Message
	ch      chan gossip.Message
	pattern Pattern
	node    *Node
	err     error // guarded by node.mu
}

// offer delivers m without ever blocking the node.
func (s *Subscription) offer(m gossip.Message) {
	if !s.pattern.Match(m.Topic) {
		return
	}
	select {
	case s.ch <- m:
	default:
		s.endLocked(ErrSlowSubscriber)
	}
}

func (s *Subscription) endLocked(err error) {
	if s.err != nil {
		return
	}
	s.err = err
	close(s.ch)
	delete(s.node.subs, s)
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.node.mu.Lock()
	defer s.node.mu.Unlock()
	s.endLocked(ErrClosed)
}

// Err reports why the subscription ended, or nil while it is open.
func (s *Subscription) Err() error {
	s.node.mu.Lock()
	defer s.node.mu.Unlock()
	return s.err
}

// Pattern returns the subscription's pattern.
func (s *Subscription) Pattern() Pattern { return s.pattern }
