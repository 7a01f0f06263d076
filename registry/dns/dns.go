// Package dns is a Registry whose peers are the addresses DNS names resolve
// to: A/AAAA records of "name:port" entries, and SRV records (port from the
// record) of "_service._proto.name" entries. Refresh re-resolves them; this
// is how a Kubernetes headless Service or Docker's embedded DNS is used.
package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hearsay-io/hearsay/registry"
)

var _ registry.Registry = (*Registry)(nil)

// Resolver is the part of *net.Resolver the registry uses.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
}

// Config configures a DNS Registry.
type Config struct {
	// Names are "host:port" entries, or "_service._proto.name" SRV names
	// (an optional ":port" after an SRV name is ignored). Required.
	Names []string
	// Interval is how often the caller should call Refresh. Default:
	// DefaultConfig().Interval (30s).
	Interval time.Duration
	// Self is this node's own address, left out of the peers. Default: none.
	Self netip.AddrPort
	// LocalAddrs are this host's addresses. When Self's address is
	// unspecified (bound to 0.0.0.0 or ::), Self's port on any of them is
	// this node too: a headless Service's records include the pod itself.
	// Default: none.
	LocalAddrs []netip.Addr
	// Resolver looks names up. Default: net.DefaultResolver.
	Resolver Resolver
	// Logger receives a line when resolution starts or stops failing.
	// Default: slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{Interval: 30 * time.Second} }

type entry struct {
	raw  string
	host string // A/AAAA host, or the SRV name
	port uint16 // 0 for SRV
	srv  bool
	last []netip.AddrPort // last good resolution
	err  string           // last failure logged, "" when resolving
}

// Registry holds the addresses the names last resolved to. It is safe for
// concurrent use.
type Registry struct {
	cfg       Config
	refreshMu sync.Mutex
	entries   []*entry // guarded by refreshMu

	mu    sync.RWMutex
	peers []netip.AddrPort
}

// New parses the names and resolves them once. A malformed name is an
// error; a name that does not resolve yet is logged and retried by Refresh.
func New(ctx context.Context, cfg Config) (*Registry, error) {
	d := DefaultConfig()
	if cfg.Interval <= 0 {
		cfg.Interval = d.Interval
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Self = netip.AddrPortFrom(cfg.Self.Addr().Unmap(), cfg.Self.Port())
	if len(cfg.Names) == 0 {
		return nil, errors.New("dns: no names")
	}
	r := &Registry{cfg: cfg}
	for _, raw := range cfg.Names {
		e, err := parse(raw)
		if err != nil {
			return nil, err
		}
		r.entries = append(r.entries, e)
	}
	r.Refresh(ctx)
	return r, nil
}

// CheckName reports whether raw is a name Config.Names accepts, with the
// error New would return for it.
func CheckName(raw string) error {
	_, err := parse(raw)
	return err
}

func parse(raw string) (*entry, error) {
	s := strings.TrimSpace(raw)
	if strings.HasPrefix(s, "_") {
		name := s
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			name = s[:i]
		}
		if parts := strings.SplitN(name, ".", 3); len(parts) < 3 || !strings.HasPrefix(parts[1], "_") || parts[2] == "" {
			return nil, fmt.Errorf("dns: %q: SRV name must be _service._proto.name", raw)
		}
		return &entry{raw: raw, host: name, srv: true}, nil
	}
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		return nil, fmt.Errorf("dns: %q: %w", raw, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 || host == "" {
		return nil, fmt.Errorf("dns: %q: want NAME:PORT with a port in 1-65535", raw)
	}
	return &entry{raw: raw, host: host, port: uint16(port)}, nil
}

// Interval is how often Refresh should be called.
func (r *Registry) Interval() time.Duration { return r.cfg.Interval }

// Refresh re-resolves every name. A name that fails keeps its last good
// addresses; the failure is logged once, not on every Refresh.
func (r *Registry) Refresh(ctx context.Context) {
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	var all []netip.AddrPort
	for _, e := range r.entries {
		addrs, err := r.resolve(ctx, e)
		if err != nil {
			if msg := err.Error(); msg != e.err {
				e.err = msg
				r.cfg.Logger.Warn("dns registry: resolution failed, keeping last addresses", "name", e.raw, "err", err, "kept", len(e.last))
			}
		} else {
			if e.err != "" {
				r.cfg.Logger.Info("dns registry: resolving again", "name", e.raw, "addresses", len(addrs))
			}
			e.err = ""
			e.last = addrs
		}
		for _, a := range e.last {
			if !r.isSelf(a) && !slices.Contains(all, a) {
				all = append(all, a)
			}
		}
	}
	r.mu.Lock()
	r.peers = all
	r.mu.Unlock()
}

// isSelf reports whether a is this node: Self, or Self's port on one of
// LocalAddrs when Self's address is unspecified.
func (r *Registry) isSelf(a netip.AddrPort) bool {
	self := r.cfg.Self
	if a == self {
		return true
	}
	return self.Addr().IsUnspecified() && a.Port() == self.Port() && slices.Contains(r.cfg.LocalAddrs, a.Addr())
}

// ServerResolver is a Resolver that asks the DNS server at addr
// ("host:port", over UDP, and TCP for truncated answers) instead of the
// system's, as for Consul's DNS interface on port 8600.
func ServerResolver(addr string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

func (r *Registry) resolve(ctx context.Context, e *entry) ([]netip.AddrPort, error) {
	if !e.srv {
		ips, err := r.cfg.Resolver.LookupNetIP(ctx, "ip", e.host)
		if err != nil {
			return nil, fmt.Errorf("dns: lookup %s: %w", e.host, err)
		}
		out := make([]netip.AddrPort, 0, len(ips))
		for _, ip := range ips {
			out = append(out, netip.AddrPortFrom(ip.Unmap(), e.port))
		}
		return out, nil
	}
	_, srvs, err := r.cfg.Resolver.LookupSRV(ctx, "", "", e.host)
	if err != nil {
		return nil, fmt.Errorf("dns: lookup SRV %s: %w", e.host, err)
	}
	var out []netip.AddrPort
	for _, s := range srvs {
		ips, err := r.cfg.Resolver.LookupNetIP(ctx, "ip", s.Target)
		if err != nil {
			return nil, fmt.Errorf("dns: lookup %s (SRV target of %s): %w", s.Target, e.host, err)
		}
		for _, ip := range ips {
			out = append(out, netip.AddrPortFrom(ip.Unmap(), s.Port))
		}
	}
	return out, nil
}

// Peers returns a copy of the current peers, without Self.
func (r *Registry) Peers() []netip.AddrPort {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.peers)
}

// SamplePeers appends up to n distinct peers chosen with rng.
func (r *Registry) SamplePeers(rng *rand.Rand, n int, dst []netip.AddrPort) []netip.AddrPort {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return registry.Sample(rng, r.peers, n, dst)
}
