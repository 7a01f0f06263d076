// Package memberlist is a registry of gossip peers kept by
// github.com/hashicorp/memberlist: SWIM membership and failure detection,
// on a port of its own beside the gossip socket.
//
// Every member carries its gossip address in its memberlist metadata. The
// gossip peers are the members memberlist holds alive (or suspects, until it
// declares them dead); members declared dead or gone stop being peers at
// once. Joining takes memberlist addresses, as serf's "agent -join" does.
//
//	reg, err := memberlist.New(memberlist.Config{
//		Name:       nodeName,
//		GossipAddr: gossipAddr,                             // what other nodes pull from
//		BindPort:   int(gossipAddr.Port()) + 2,             // memberlist's own TCP and UDP port
//		SecretKey:  memberlist.DeriveSecretKey(clusterKey), // when the cluster is encrypted
//		Label:      clusterName,
//		Logger:     logger,
//	})
//	n, err := reg.Join([]string{"10.0.0.1:7602"})
//	...
//	defer reg.Shutdown()
//	defer reg.Leave(5 * time.Second)
package memberlist

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	ml "github.com/hashicorp/memberlist"

	"github.com/hearsay-io/hearsay/registry"
	"github.com/hearsay-io/hearsay/security"
)

var _ registry.Registry = (*Registry)(nil)

// Errors callers branch on.
var (
	// ErrShutdown is returned by Join and Leave after Shutdown.
	ErrShutdown = errors.New("memberlist: registry shut down")
	// ErrNoneJoined is wrapped by Join when no address could be joined.
	ErrNoneJoined = errors.New("memberlist: no member joined")
)

// Profile is a set of memberlist timings.
type Profile string

// Profiles, as hashicorp/memberlist's DefaultLANConfig, DefaultWANConfig and
// DefaultLocalConfig.
const (
	// ProfileLAN: probe every 1s with a 500ms timeout, gossip every 200ms.
	ProfileLAN Profile = "lan"
	// ProfileWAN: probe every 5s with a 3s timeout, gossip every 500ms.
	ProfileWAN Profile = "wan"
	// ProfileLocal: probe every 1s with a 200ms timeout, gossip every 100ms;
	// for a single machine.
	ProfileLocal Profile = "local"
)

// Config configures a Registry. Name and GossipAddr are required; zero
// values take the defaults written beside each field.
type Config struct {
	// Name is this member's name, unique in the cluster: the node's name
	// or ID. Required.
	Name string
	// GossipAddr is this node's gossip address, carried to the others in
	// its metadata: what they pull from. An unspecified IP (0.0.0.0 or ::)
	// stands for the IP memberlist advertises. Required.
	GossipAddr netip.AddrPort

	// BindAddr is the IP memberlist listens on, TCP and UDP. Default
	// "0.0.0.0".
	BindAddr string
	// BindPort is memberlist's port, TCP and UDP. 0 picks a free port (see
	// Addr); a node uses its gossip port + 2.
	BindPort int
	// AdvertiseAddr and AdvertisePort are what other members use to reach
	// this one, when that differs from the bound address (NAT). Default:
	// memberlist's choice, the bound address or, bound to 0.0.0.0, a
	// private IP of this host.
	AdvertiseAddr string
	AdvertisePort int

	// Profile sets memberlist's timings. Default ProfileLAN.
	Profile Profile
	// ProbeInterval is how often a random member is probed. Default: the
	// profile's.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a probe's direct answer is awaited. Default:
	// the profile's.
	ProbeTimeout time.Duration
	// GossipInterval is how often membership changes are gossiped.
	// Default: the profile's.
	GossipInterval time.Duration
	// SuspicionMult scales how long a suspect member has to refute before it
	// is declared dead: SuspicionMult × log10(N+1) × ProbeInterval. Default:
	// the profile's (4 for LAN).
	SuspicionMult int
	// PushPullInterval is how often full state is exchanged with a random
	// member over TCP. Default: the profile's (30s for LAN).
	PushPullInterval time.Duration

	// SecretKey turns on memberlist's encryption (AES-GCM) with a key of
	// 16, 24 or 32 bytes; DeriveSecretKey makes one from the cluster key.
	// Members without the key cannot join. Default: no encryption.
	SecretKey []byte
	// ExtraKeys are also accepted from others, for a key rotation:
	// install the new key everywhere as an extra key first, then make it
	// the SecretKey. Default: none.
	ExtraKeys [][]byte
	// Label, if set, is memberlist's label: members with another label are
	// ignored, so that two clusters on one network never merge. The
	// cluster name is a good label. Default: none.
	Label string

	// Logger receives memberlist's logs, at their levels. Default
	// slog.Default().
	Logger *slog.Logger
}

// DeriveSecretKey derives memberlist's 32-byte key (AES-256) from a cluster
// key: HKDF-SHA256 with the label "hearsay/memberlist-key/v1". Memberlist
// and gossip thus never share key bytes, and a cluster passphrase sets
// both.
func DeriveSecretKey(k security.Key) []byte {
	out, err := hkdf.Key(sha256.New, k[:], nil, "hearsay/memberlist-key/v1", 32)
	if err != nil {
		panic(err) // only for lengths beyond 255 hash sizes; 32 is fixed
	}
	return out
}

// MemberInfo describes a member, for /v1/peers.
type MemberInfo struct {
	Name string
	// Addr is its memberlist address, what Join takes.
	Addr netip.AddrPort
	// GossipAddr is its gossip address; invalid if its metadata is not one.
	GossipAddr netip.AddrPort
	// State is "alive" (memberlist holds it alive, or suspects it but has
	// not declared it dead yet: it does not say which) or "gone" (declared
	// dead, or left).
	State string
	// Self marks this node.
	Self bool
}

// Registry is a registry.Registry backed by a hashicorp/memberlist
// instance. It is safe for concurrent use.
type Registry struct {
	cfg     Config
	list    *ml.Memberlist
	keyring *ml.Keyring // nil without encryption
	logger  *slog.Logger

	mu       sync.RWMutex
	alive    map[string]member // members memberlist holds alive or suspect, but us
	departed map[string]member // recently dead or left, for Members
	peers    []netip.AddrPort  // gossip addresses of alive, deduplicated and sorted
	dirty    bool              // peers needs a rebuild

	lifeMu sync.Mutex // serialises Leave and Shutdown
	down   bool
}

type member struct {
	node   ml.Node // a copy: memberlist reuses its structures
	gossip netip.AddrPort
	when   time.Time // departed only
}

// maxDeparted bounds the dead and left members remembered for Members.
const maxDeparted = 256

// New starts a memberlist instance, listening at once, alone until Join.
func New(cfg Config) (*Registry, error) {
	if cfg.Name == "" {
		return nil, errors.New("memberlist: Config.Name is required")
	}
	if !cfg.GossipAddr.IsValid() || cfg.GossipAddr.Port() == 0 {
		return nil, fmt.Errorf("memberlist: Config.GossipAddr %s is not a gossip address", cfg.GossipAddr)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	mc, err := cfg.memberlistConfig()
	if err != nil {
		return nil, err
	}
	r := &Registry{
		cfg:      cfg,
		logger:   cfg.Logger,
		alive:    make(map[string]member),
		departed: make(map[string]member),
	}
	mc.Delegate = delegate{meta: encodeMeta(cfg.GossipAddr)}
	mc.Events = events{r}
	mc.Logger = log.New(&logWriter{logger: cfg.Logger.With("component", "memberlist")}, "", 0)
	r.keyring = mc.Keyring
	if r.list, err = ml.Create(mc); err != nil {
		return nil, fmt.Errorf("memberlist: %w", err)
	}
	return r, nil
}

func (cfg *Config) memberlistConfig() (*ml.Config, error) {
	var mc *ml.Config
	switch cfg.Profile {
	case ProfileLAN, "":
		mc = ml.DefaultLANConfig()
	case ProfileWAN:
		mc = ml.DefaultWANConfig()
	case ProfileLocal:
		mc = ml.DefaultLocalConfig()
	default:
		return nil, fmt.Errorf("memberlist: unknown profile %q (want lan, wan or local)", cfg.Profile)
	}
	mc.Name = cfg.Name
	mc.BindAddr = orDefault(cfg.BindAddr, "0.0.0.0")
	mc.BindPort = cfg.BindPort
	mc.AdvertiseAddr = cfg.AdvertiseAddr
	mc.AdvertisePort = cfg.AdvertisePort
	if mc.AdvertisePort == 0 {
		mc.AdvertisePort = cfg.BindPort // memberlist fills in the chosen port when 0
	}
	if cfg.ProbeInterval > 0 {
		mc.ProbeInterval = cfg.ProbeInterval
	}
	if cfg.ProbeTimeout > 0 {
		mc.ProbeTimeout = cfg.ProbeTimeout
	}
	if cfg.GossipInterval > 0 {
		mc.GossipInterval = cfg.GossipInterval
	}
	if cfg.SuspicionMult > 0 {
		mc.SuspicionMult = cfg.SuspicionMult
	}
	if cfg.PushPullInterval > 0 {
		mc.PushPullInterval = cfg.PushPullInterval
	}
	if len(cfg.SecretKey) > 0 {
		ring, err := ml.NewKeyring(cfg.ExtraKeys, cfg.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("memberlist: secret key: %w", err)
		}
		mc.Keyring = ring
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	} else if len(cfg.ExtraKeys) > 0 {
		return nil, errors.New("memberlist: ExtraKeys without a SecretKey")
	}
	mc.Label = cfg.Label
	return mc, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Join contacts the members at addrs (memberlist addresses, "host:port")
// and merges their view of the cluster. It returns how many it reached; the
// error, if any, wraps ErrNoneJoined when none was.
func (r *Registry) Join(addrs []string) (int, error) {
	if r.isDown() {
		return 0, ErrShutdown
	}
	n, err := r.list.Join(addrs)
	if err != nil {
		if n == 0 {
			return 0, fmt.Errorf("%w: %w", ErrNoneJoined, err)
		}
		return n, fmt.Errorf("memberlist: join: %w", err)
	}
	return n, nil
}

// Leave tells the cluster this member is leaving, waiting up to timeout for
// the news to go out, so that the others drop it at once rather than after
// failure detection. It keeps listening until Shutdown.
func (r *Registry) Leave(timeout time.Duration) error {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	if r.down {
		return ErrShutdown // memberlist panics on Leave after Shutdown
	}
	if err := r.list.Leave(timeout); err != nil {
		return fmt.Errorf("memberlist: leave: %w", err)
	}
	return nil
}

// Shutdown stops memberlist. Without Leave first, the others see this
// member fail and drop it after their failure detection. It may be called
// more than once.
func (r *Registry) Shutdown() error {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	r.down = true
	if err := r.list.Shutdown(); err != nil {
		return fmt.Errorf("memberlist: shutdown: %w", err)
	}
	return nil
}

// ErrNotEncrypted is returned by the key methods of a Registry created
// without a SecretKey: memberlist cannot turn encryption on while running.
var ErrNotEncrypted = errors.New("memberlist: encryption is off (no SecretKey at start)")

// AddKey installs another key (16, 24 or 32 bytes) that this member
// accepts, for a rotation: add the new key everywhere, then UseKey it
// everywhere, then RemoveKey the old one.
func (r *Registry) AddKey(key []byte) error {
	return r.withKeyring(func(k *ml.Keyring) error { return k.AddKey(key) })
}

// UseKey makes an installed key the one this member encrypts with.
func (r *Registry) UseKey(key []byte) error {
	return r.withKeyring(func(k *ml.Keyring) error { return k.UseKey(key) })
}

// RemoveKey uninstalls a key; the one in use cannot be removed.
func (r *Registry) RemoveKey(key []byte) error {
	return r.withKeyring(func(k *ml.Keyring) error { return k.RemoveKey(key) })
}

func (r *Registry) withKeyring(f func(*ml.Keyring) error) error {
	if r.keyring == nil {
		return ErrNotEncrypted
	}
	if err := f(r.keyring); err != nil {
		return fmt.Errorf("memberlist: %w", err)
	}
	return nil
}

func (r *Registry) isDown() bool {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	return r.down
}

// Addr returns this member's memberlist address as advertised: what others
// Join.
func (r *Registry) Addr() netip.AddrPort {
	n := r.list.LocalNode()
	return nodeAddr(n)
}

// Name returns this member's name.
func (r *Registry) Name() string { return r.cfg.Name }

// Peers returns the gossip addresses of the members memberlist holds alive
// or suspect, without this node, sorted.
func (r *Registry) Peers() []netip.AddrPort {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rebuildLocked()
	return slices.Clone(r.peers)
}

// SamplePeers appends up to n distinct peers chosen uniformly at random
// with rng, and no other randomness, and returns the extended slice.
func (r *Registry) SamplePeers(rng *rand.Rand, n int, dst []netip.AddrPort) []netip.AddrPort {
	r.mu.RLock()
	if r.dirty {
		r.mu.RUnlock()
		r.mu.Lock()
		r.rebuildLocked()
		r.mu.Unlock()
		r.mu.RLock()
	}
	defer r.mu.RUnlock()
	return registry.Sample(rng, r.peers, n, dst)
}

func (r *Registry) rebuildLocked() {
	if !r.dirty {
		return
	}
	r.dirty = false
	r.peers = r.peers[:0]
	for _, m := range r.alive {
		if m.gossip.IsValid() {
			r.peers = append(r.peers, m.gossip)
		}
	}
	slices.SortFunc(r.peers, func(a, b netip.AddrPort) int { return a.Compare(b) })
	r.peers = slices.Compact(r.peers)
}

// Members describes this node, the members alive (or suspect), and up to
// 256 of those recently gone, sorted by name.
func (r *Registry) Members() []MemberInfo {
	var out []MemberInfo
	live := map[string]bool{}
	for _, n := range r.list.Members() { // alive and suspect
		live[n.Name] = true
		info := MemberInfo{Name: n.Name, Addr: nodeAddr(n), State: "alive", Self: n.Name == r.cfg.Name}
		info.GossipAddr, _ = decodeMeta(n.Meta, info.Addr.Addr())
		out = append(out, info)
	}
	r.mu.RLock()
	for name, m := range r.departed {
		if !live[name] {
			out = append(out, MemberInfo{Name: name, Addr: nodeAddr(&m.node), GossipAddr: m.gossip, State: "gone"})
		}
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b MemberInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func nodeAddr(n *ml.Node) netip.AddrPort {
	a, _ := netip.AddrFromSlice(n.Addr)
	return netip.AddrPortFrom(a.Unmap(), n.Port)
}

// events keeps the peer list from memberlist's notifications, which come
// one at a time.
type events struct{ r *Registry }

func (e events) NotifyJoin(n *ml.Node)   { e.r.upsert(n) }
func (e events) NotifyUpdate(n *ml.Node) { e.r.upsert(n) }

func (e events) NotifyLeave(n *ml.Node) {
	r := e.r
	if n.Name == r.cfg.Name {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.alive[n.Name]
	if !ok {
		return
	}
	delete(r.alive, n.Name)
	r.dirty = true
	m.node = copyNode(n)
	m.when = time.Now()
	if len(r.departed) >= maxDeparted {
		r.forgetOldestDepartedLocked()
	}
	r.departed[n.Name] = m
	// memberlist's Node.State is not kept up to date: dead and left look
	// the same from here.
	r.logger.Info("member gone (dead or left)", "name", n.Name, "gossip_addr", m.gossip.String())
}

func (r *Registry) upsert(n *ml.Node) {
	if n.Name == r.cfg.Name {
		return
	}
	addr := nodeAddr(n)
	gossipAddr, err := decodeMeta(n.Meta, addr.Addr())
	if err != nil {
		r.logger.Warn("member without a gossip address: not a peer", "name", n.Name, "addr", addr.String(), "err", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old, had := r.alive[n.Name]
	r.alive[n.Name] = member{node: copyNode(n), gossip: gossipAddr}
	delete(r.departed, n.Name)
	if !had || old.gossip != gossipAddr {
		r.dirty = true
		r.logger.Info("member joined", "name", n.Name, "addr", addr.String(), "gossip_addr", gossipAddr.String())
	}
}

func (r *Registry) forgetOldestDepartedLocked() {
	oldest := ""
	for name, m := range r.departed {
		if oldest == "" || m.when.Before(r.departed[oldest].when) {
			oldest = name
		}
	}
	delete(r.departed, oldest)
}

func copyNode(n *ml.Node) ml.Node {
	c := *n
	c.Addr = slices.Clone(n.Addr)
	c.Meta = slices.Clone(n.Meta)
	return c
}

// delegate hands memberlist our metadata; hearsay sends no user messages
// through memberlist.
type delegate struct{ meta []byte }

func (d delegate) NodeMeta(limit int) []byte {
	if len(d.meta) > limit {
		return nil
	}
	return d.meta
}
func (delegate) NotifyMsg([]byte)                       {}
func (delegate) GetBroadcasts(int, int) [][]byte        { return nil }
func (delegate) LocalState(bool) []byte                 { return nil }
func (delegate) MergeRemoteState(buf []byte, join bool) {}

// Metadata: version 1 | family (4 or 6) | IP (4 or 16 bytes) | port
// (u16be): 8 or 20 bytes.
const metaVersion = 1

func encodeMeta(ap netip.AddrPort) []byte {
	a := ap.Addr().Unmap()
	b := []byte{metaVersion}
	if a.Is4() {
		b = append(b, 4)
	} else {
		b = append(b, 6)
	}
	b = append(b, a.AsSlice()...)
	return binary.BigEndian.AppendUint16(b, ap.Port())
}

var errBadMeta = errors.New("metadata is not a hearsay gossip address")

// decodeMeta decodes a member's gossip address. An unspecified IP stands
// for memberIP, the IP memberlist knows the member by.
func decodeMeta(b []byte, memberIP netip.Addr) (netip.AddrPort, error) {
	if len(b) < 2 || b[0] != metaVersion {
		return netip.AddrPort{}, errBadMeta
	}
	var size int
	switch b[1] {
	case 4:
		size = 4
	case 6:
		size = 16
	default:
		return netip.AddrPort{}, errBadMeta
	}
	if len(b) != 2+size+2 {
		return netip.AddrPort{}, errBadMeta
	}
	a, _ := netip.AddrFromSlice(b[2 : 2+size])
	port := binary.BigEndian.Uint16(b[2+size:])
	if port == 0 {
		return netip.AddrPort{}, errBadMeta
	}
	if a.IsUnspecified() {
		if !memberIP.IsValid() {
			return netip.AddrPort{}, errBadMeta
		}
		a = memberIP
	}
	return netip.AddrPortFrom(a.Unmap(), port), nil
}

// logWriter turns memberlist's log lines ("[WARN] memberlist: ...") into
// slog records at the matching level.
type logWriter struct{ logger *slog.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimRight(p, "\n"))
	level := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{
		"[DEBUG]": slog.LevelDebug, "[TRACE]": slog.LevelDebug, "[INFO]": slog.LevelInfo,
		"[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError, "[ERROR]": slog.LevelError,
	} {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			level, line = l, strings.TrimSpace(rest)
			break
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	w.logger.Log(context.Background(), level, line)
	return len(p), nil
}

var (
	_ io.Writer        = (*logWriter)(nil)
	_ ml.EventDelegate = events{}
	_ ml.Delegate      = delegate{}
)
