package node

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/hearsay-io/hearsay/filter"
	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/msglog"
	"github.com/hearsay-io/hearsay/registry"
	"github.com/hearsay-io/hearsay/registry/dht"
	"github.com/hearsay-io/hearsay/registry/dns"
	"github.com/hearsay-io/hearsay/registry/memberlist"
	"github.com/hearsay-io/hearsay/security"
	"github.com/hearsay-io/hearsay/transport"
)

// Filter kinds.
const (
	FilterLevelDB = "leveldb"
	FilterMemory  = "memory"
)

// Config configures a Node. A zero field takes the default written beside
// it; DefaultConfig returns them filled in.
type Config struct {
	// Name is a human-readable name. Default: the name stored in DataDir,
	// else the hostname plus a short random suffix (then stored).
	Name string
	// DataDir holds the node's identity and, with the leveldb filter, its
	// seen filter and message log. Default empty: nothing is kept, the node
	// gets a new ID at every start, and Filter must be "memory".
	DataDir string
	// Bind is the UDP address gossip listens on. Default "0.0.0.0:7600".
	// Not used with a Transport.
	Bind string
	// Advertise is the address peers should use for this node, shown in
	// status. Default: the bound address.
	Advertise string
	// Transport carries the node's datagrams. Default nil: a UDP socket
	// bound on Bind, tuned by UDP. The node starts the transport and closes
	// it at Close (not when New fails).
	Transport transport.Transport
	// Clock is the time the node runs on: its timers and every time it
	// hands the protocol. Default nil: the system clock. A node on an
	// endpoint of a transport.Network runs on that Network (it is a Clock),
	// and its methods must then be called from the goroutine that drives
	// the network.
	Clock Clock
	// Rand is the source of the node's random choices (peers, request and
	// session IDs) and, when it has no stored identity, of its ID. Default
	// nil: seeded from crypto/rand. Set it only to make tests and
	// simulations reproducible: predictable request IDs let others forge
	// answers.
	Rand *rand.Rand
	// Registry supplies the peers. Default: an empty static registry, or
	// the DHT, DNS or memberlist registry the node runs itself when DHT, DNS
	// or Memberlist is set (Registry must then be nil).
	Registry registry.Registry
	// DHT, when set, makes the node run a Kademlia peer table (package
	// registry/dht) over its own transport, sealed like gossip, and gossip
	// with the peers it samples. The node sets Self, SelfAddr (from
	// Advertise, or the bound address), Rand and MaxPacketSize; Bootstrap
	// are other nodes' gossip addresses. With a DataDir, the table is saved
	// in DataDir/dht-peers every minute and at Close, and restored at start
	// so that a restart rejoins fast. Default nil.
	DHT *dht.Config
	// DNS, when set, makes the node's peers the addresses DNS names resolve
	// to (package registry/dns: A/AAAA of "name:port", SRV of
	// "_service._proto.name"), resolved at New and again every
	// DNS.Interval (default 30s) on the node's clock; addresses that appear
	// are pulled, those that disappear no longer are, and a failed
	// resolution keeps the last good ones. The node sets Self (Advertise, or
	// the bound address) and Logger unless given; bound to 0.0.0.0, set
	// LocalAddrs so the node finds itself among the records. Default nil.
	DNS *dns.Config
	// Memberlist, when set, makes the node run hashicorp/memberlist
	// membership (package registry/memberlist) from Start to Close, and
	// gossip with its live members. The node sets Name, GossipAddr, Label
	// (the cluster), Logger and, when encrypted, SecretKey and ExtraKeys
	// (derived from the keyring, and kept in step with key rotations);
	// BindPort defaults to the gossip port + 2. Memberlist uses real sockets
	// and real time whatever the Transport and Clock. Default nil.
	Memberlist *memberlist.Config
	// Join are memberlist addresses to join through (with Memberlist). The
	// node retries in the background until one answers. Default none.
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
	// MemoryFilterSize bounds the memory filter, in IDs. The filter holds
	// what the log holds (the core makes it forget what the log evicts), so
	// the default is one ID per 256 bytes of LogMaxBytes (4 Mi IDs for
	// 1 GiB), at least filter.DefaultMaxEntries (1<<20).
	MemoryFilterSize int
	// Log is the message log the gossip core keeps its retention window in,
	// for anti-entropy and resumed streams (see package msglog). Default
	// nil: a LevelDB log in DataDir/log with the leveldb filter, else an
	// in-memory one, both bounded by LogMaxBytes. The node closes it at
	// Close (not when New fails); it must have no other writer.
	Log msglog.Log
	// LogMaxBytes bounds the message log the node opens (not a given Log).
	// Default msglog.DefaultMaxBytes (1 GiB).
	LogMaxBytes int64
	// Sign makes the node sign the messages it publishes with its node key
	// (statements, docs/protocol.md) and accept, deliver and relay no
	// message its origin did not sign. Every node of the cluster must run
	// a version that knows statements before any signs, and all must sign
	// (a signing node drops unsigned messages). Default false.
	Sign bool
	// Validator, when set, decides on every message before the node
	// accepts it, received or published here (see Validator); a message
	// waits for its verdict, asked again while the validator fails, and
	// is never accepted unvalidated. Default nil: no validation.
	Validator Validator
	// ValidateTimeout bounds each call of Validator. Default 2s.
	ValidateTimeout time.Duration
	// ValidateConcurrency is how many calls of Validator may run at once.
	// Default 16.
	ValidateConcurrency int
	// Gossip tunes the protocol core: Fanout, Interval, MaxPacketSize,
	// MaxAge, cache bounds, Retention, AEInterval (their defaults are
	// gossip.DefaultConfig's). MaxPacketSize counts the sealing overhead,
	// which the node takes off what it gives the core, encrypted or not, so
	// that a cluster can turn encryption on without changing which messages
	// fit. The node sets ID, Peers, Filter, Log and Rand itself.
	Gossip gossip.Config
	// UDP tunes the socket the node binds (buffer sizes; see
	// transport.UDPConfig for the defaults). Not used with a Transport.
	UDP transport.UDPConfig
	// Keyring holds the cluster keys. Default nil: the keyring kept in
	// DataDir (keyring.json), or an empty one without a DataDir. With no
	// key, datagrams travel unencrypted (for development: the agent warns).
	Keyring *security.Keyring
	// Security tunes the replay window of sealed datagrams (see
	// security.SealerConfig for the defaults: 30s).
	Security security.SealerConfig
	// Cluster names the cluster; with a passphrase it salts the key, so
	// every node of a cluster must use the same name. Default "hearsay".
	Cluster string
	// KDF are the Argon2id parameters for passphrases installed at run time
	// (InstallPassphrase). Default security.DefaultKDFParams.
	KDF security.KDFParams
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

// DefaultConfig returns what New makes of a zero Config without a DataDir:
// every default filled in, Gossip's included (from gossip.DefaultConfig),
// but for those New finds at run time (Name, Registry, Keyring, the
// transport and the log). It is there to read the defaults from, for flags
// and docs. Some defaults derive from other fields (Filter from DataDir,
// MaxBytesPerPeerRound and several of Gossip's from other Gossip fields): a
// Config built from DefaultConfig keeps the derived values even when what
// they derive from changes, so set only the fields you change on a zero
// Config instead.
func DefaultConfig() Config {
	var c Config
	c.Gossip = gossip.DefaultConfig(gossip.NodeID{}, nil)
	c.Gossip.Peers, c.Gossip.Filter, c.Gossip.Rand = nil, nil, nil // the node's own
	c.setDefaults()
	c.MaxBytesPerPeerRound = defaultMaxBytesPerPeerRound(c.Gossip.MaxAnswerBytesPerRound, c.Gossip.MaxPacketSize)
	return c
}

// setDefaults fills the zero fields whose defaults are known before the
// node opens anything.
func (c *Config) setDefaults() {
	if c.Bind == "" {
		c.Bind = "0.0.0.0:7600"
	}
	if c.ValidateTimeout <= 0 {
		c.ValidateTimeout = 2 * time.Second
	}
	if c.ValidateConcurrency <= 0 {
		c.ValidateConcurrency = 16
	}
	if c.PeerTimeout == 0 {
		c.PeerTimeout = 10 * time.Second
	}
	if c.Filter == "" {
		c.Filter = FilterMemory
		if c.DataDir != "" {
			c.Filter = FilterLevelDB
		}
	}
	if c.LogMaxBytes <= 0 {
		c.LogMaxBytes = msglog.DefaultMaxBytes
	}
	if c.MemoryFilterSize <= 0 {
		c.MemoryFilterSize = int(max(filter.DefaultMaxEntries, c.LogMaxBytes/256))
	}
	if c.Gossip.MaxPacketSize == 0 {
		c.Gossip.MaxPacketSize = gossip.DefaultConfig(gossip.NodeID{}, nil).MaxPacketSize
	}
	if c.Cluster == "" {
		c.Cluster = "hearsay"
	}
	if c.Security.ReplayWindow <= 0 {
		c.Security.ReplayWindow = security.DefaultReplayWindow
	}
	if c.KDF == (security.KDFParams{}) {
		c.KDF = security.DefaultKDFParams
	}
	if c.SubscriberBuffer <= 0 {
		c.SubscriberBuffer = 1024
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// defaultMaxBytesPerPeerRound is MaxBytesPerPeerRound's default for the
// core's per-round answer budget and the datagram size (sealed). The core
// sends a peer at most perRound bytes of messages per round of its own;
// this window is not aligned with its rounds, so it may see two rounds'
// worth, each datagram grown by the sealing overhead.
func defaultMaxBytesPerPeerRound(perRound, sealedPacket int) int {
	return 2 * (perRound/(sealedPacket-security.Overhead) + 2) * sealedPacket
}

// validate reports a Config that cannot work, after setDefaults.
func (c *Config) validate() error {
	switch {
	case btoi(c.DHT != nil)+btoi(c.DNS != nil)+btoi(c.Memberlist != nil) > 1:
		return errors.New("node: Config.DHT, Config.DNS and Config.Memberlist are exclusive")
	case (c.DHT != nil || c.DNS != nil || c.Memberlist != nil) && c.Registry != nil:
		return errors.New("node: Config.Registry must be nil with Config.DHT, Config.DNS or Config.Memberlist")
	case c.Filter != FilterMemory && c.Filter != FilterLevelDB:
		return fmt.Errorf("node: unknown filter %q (want leveldb or memory)", c.Filter)
	case c.Filter == FilterLevelDB && c.DataDir == "":
		return errors.New("node: the leveldb filter needs a data dir")
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
