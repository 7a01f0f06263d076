// Package static is a Registry of peers listed by hand: in the
// configuration, in a peers file, or both.
//
// A peers file holds one host:port per line; blank lines and everything
// after a '#' are ignored:
//
//	# rack 1
//	10.0.0.1:7946
//	node-b.example.internal:7946   # resolved when the file is read
//	[2001:db8::7]:7946
//
// Names are resolved when the list is loaded, not on every use. Reload
// re-reads the file and re-resolves every entry (wire it to SIGHUP);
// ReloadIfChanged does so only when the file's size or modification time
// changed, cheap enough to call every few seconds.
package static

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearsay-io/hearsay/registry"
)

var (
	_ registry.Registry = (*Registry)(nil)
	_ registry.Registry = (*Deferred)(nil)
)

// Config configures a static Registry.
type Config struct {
	// Peers are "host:port" entries. Default: none.
	Peers []string
	// File is an optional peers file, one "host:port" per line, '#' starts a
	// comment. Its entries come after Peers. Default: no file.
	File string
	// Self is this node's own address, left out of the peer list so that a
	// node can share its peers file with the rest of the cluster.
	// Default: none excluded.
	Self netip.AddrPort
	// Resolve turns an entry into an address. Default: net.ResolveUDPAddr,
	// preferring IPv4, with IPv4-mapped IPv6 addresses unmapped.
	Resolve func(hostport string) (netip.AddrPort, error)
}

// EntryError reports a peer entry that could not be turned into an address.
type EntryError struct {
	File  string // the peers file; empty for an entry of Config.Peers
	Line  int    // 1-based line in File; 0 for an entry of Config.Peers
	Entry string // the entry as written, without comment or spaces
	Err   error  // why
}

func (e *EntryError) Error() string {
	msg := e.Err.Error()
	// net's errors repeat the entry ("address foo: missing port in
	// address"); say it once.
	var addrErr *net.AddrError
	if errors.As(e.Err, &addrErr) && addrErr.Addr == e.Entry {
		msg = addrErr.Err
	}
	if e.File != "" {
		return fmt.Sprintf("static: peers file %s line %d: %q: %s", e.File, e.Line, e.Entry, msg)
	}
	return fmt.Sprintf("static: peer %q: %s", e.Entry, msg)
}

func (e *EntryError) Unwrap() error { return e.Err }

// Registry is a fixed list of peers, optionally reloaded from a file. It is
// safe for concurrent use.
type Registry struct {
	cfg Config

	// reloadMu serialises reloads so that two of them cannot install their
	// lists in the opposite order of the file versions they read.
	reloadMu sync.Mutex
	fileSize int64     // size of File when last read; guarded by reloadMu
	fileMod  time.Time // modification time of File when last read; guarded by reloadMu

	mu    sync.RWMutex
	peers []netip.AddrPort // never modified in place, only replaced
}

// New resolves the configured peers and reads the peers file, if any. It
// returns an *EntryError naming the first bad entry (with the file and line
// for file entries), or the error reading the file.
func New(cfg Config) (*Registry, error) {
	if cfg.Resolve == nil {
		cfg.Resolve = resolveUDP
	}
	cfg.Self = unmap(cfg.Self)
	cfg.Peers = append([]string(nil), cfg.Peers...) // the caller may reuse its slice
	r := &Registry{cfg: cfg}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Peers returns a copy of the peer list: deduplicated, without Self, in the
// order entries first appear (Config.Peers, then the file).
func (r *Registry) Peers() []netip.AddrPort {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]netip.AddrPort(nil), r.peers...)
}

// Len is the number of peers.
func (r *Registry) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.peers)
}

// Deferred is a Registry handed to a node before its peers are known: the
// nodes of a cluster bound to port 0 learn each other's addresses only once
// all are bound. It has no peers until Set. It is safe for concurrent use.
type Deferred struct {
	reg atomic.Pointer[Registry]
}

// Set makes r the registry d answers from.
func (d *Deferred) Set(r *Registry) { d.reg.Store(r) }

// Peers returns the peers of the registry set, or none.
func (d *Deferred) Peers() []netip.AddrPort {
	if r := d.reg.Load(); r != nil {
		return r.Peers()
	}
	return nil
}

// SamplePeers samples the registry set, as Registry.SamplePeers; before
// Set it returns dst unchanged.
func (d *Deferred) SamplePeers(rng *rand.Rand, n int, dst []netip.AddrPort) []netip.AddrPort {
	if r := d.reg.Load(); r != nil {
		return r.SamplePeers(rng, n, dst)
	}
	return dst
}

// smallSample is the largest n sampled by rejection, checking duplicates
// by scanning what was already drawn: for gossip fanouts (a handful) that
// is the fastest way and needs no scratch space.
const smallSample = 16

// bitsetPool holds scratch bitsets for larger samples.
var bitsetPool sync.Pool // of *[]uint64

// SamplePeers appends up to n distinct peers, chosen uniformly at random
// with rng, to dst and returns the extended slice. When n covers every peer
// it appends them all in random order. It draws only from rng, so a seeded
// rng gives a reproducible sample, and for n up to 16 it allocates nothing
// beyond growing dst.
func (r *Registry) SamplePeers(rng *rand.Rand, n int, dst []netip.AddrPort) []netip.AddrPort {
	r.mu.RLock()
	defer r.mu.RUnlock()
	peers := r.peers
	if n <= 0 || len(peers) == 0 {
		return dst
	}
	start := len(dst)
	switch {
	case n >= len(peers):
		dst = append(dst, peers...)
		shuffle(rng, dst[start:])
	case n <= smallSample:
		// Rejection: at most 16 of at least 17 peers, so a draw repeats with
		// probability below 16/17 and the expected draws stay small. The
		// order of draws is uniform, no shuffle needed.
		for len(dst)-start < n {
			p := peers[rng.IntN(len(peers))]
			if !contains(dst[start:], p) {
				dst = append(dst, p)
			}
		}
	default:
		dst = sampleFloyd(rng, peers, n, dst)
		shuffle(rng, dst[start:])
	}
	return dst
}

// sampleFloyd appends a uniform random n-subset of peers (n < len(peers))
// with Robert Floyd's algorithm: exactly n draws, whatever n is. The subset
// is uniform but its order is not; the caller shuffles.
func sampleFloyd(rng *rand.Rand, peers []netip.AddrPort, n int, dst []netip.AddrPort) []netip.AddrPort {
	words := (len(peers) + 63) / 64
	bp, _ := bitsetPool.Get().(*[]uint64)
	if bp == nil || cap(*bp) < words {
		b := make([]uint64, words)
		bp = &b
	}
	chosen := (*bp)[:words]
	clear(chosen)
	for j := len(peers) - n; j < len(peers); j++ {
		i := rng.IntN(j + 1)
		if chosen[i/64]&(1<<(i%64)) != 0 {
			i = j // j itself cannot have been chosen yet
		}
		chosen[i/64] |= 1 << (i % 64)
		dst = append(dst, peers[i])
	}
	bitsetPool.Put(bp)
	return dst
}

func shuffle(rng *rand.Rand, s []netip.AddrPort) {
	for i := len(s) - 1; i > 0; i-- {
		j := rng.IntN(i + 1)
		s[i], s[j] = s[j], s[i]
	}
}

func contains(s []netip.AddrPort, p netip.AddrPort) bool {
	for _, q := range s {
		if q == p {
			return true
		}
	}
	return false
}

// Reload resolves Config.Peers again and re-reads the peers file now. On
// error the current list stays in effect and the error is returned.
func (r *Registry) Reload() error {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	return r.reloadLocked()
}

// ReloadIfChanged reloads when the peers file's size or modification time
// differs from when it was last read. changed reports that it did differ;
// the new list is in effect only if err is nil. A failed reload is not
// retried until the file changes again (or Reload is called), so polling
// reports each bad version of the file once. Without a File it does nothing.
func (r *Registry) ReloadIfChanged() (changed bool, err error) {
	if r.cfg.File == "" {
		return false, nil
	}
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	info, err := os.Stat(r.cfg.File)
	if err != nil {
		return false, fmt.Errorf("static: peers file: %w", err)
	}
	if info.Size() == r.fileSize && info.ModTime().Equal(r.fileMod) {
		return false, nil
	}
	return true, r.reloadLocked()
}

func (r *Registry) reloadLocked() error {
	peers := make([]netip.AddrPort, 0, len(r.cfg.Peers))
	for _, entry := range r.cfg.Peers {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		ap, err := r.resolve(entry)
		if err != nil {
			return &EntryError{Entry: entry, Err: err}
		}
		peers = append(peers, ap)
	}
	if r.cfg.File != "" {
		// Stat before reading: a write that lands in between then shows as
		// a change on the next ReloadIfChanged.
		info, err := os.Stat(r.cfg.File)
		if err != nil {
			return fmt.Errorf("static: peers file: %w", err)
		}
		data, err := os.ReadFile(r.cfg.File)
		if err != nil {
			return fmt.Errorf("static: peers file: %w", err)
		}
		// Remember this version even if it is bad; see ReloadIfChanged.
		r.fileSize, r.fileMod = info.Size(), info.ModTime()
		peers, err = r.appendFilePeers(peers, string(data))
		if err != nil {
			return err
		}
	}
	peers = r.dedup(peers)

	r.mu.Lock()
	r.peers = peers
	r.mu.Unlock()
	return nil
}

func (r *Registry) appendFilePeers(peers []netip.AddrPort, data string) ([]netip.AddrPort, error) {
	for lineNo := 1; data != ""; lineNo++ {
		var line string
		line, data, _ = strings.Cut(data, "\n")
		line, _, _ = strings.Cut(line, "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		ap, err := r.resolve(line)
		if err != nil {
			return nil, &EntryError{File: r.cfg.File, Line: lineNo, Entry: line, Err: err}
		}
		peers = append(peers, ap)
	}
	return peers, nil
}

func (r *Registry) resolve(entry string) (netip.AddrPort, error) {
	ap, err := r.cfg.Resolve(entry)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap = unmap(ap)
	switch {
	case !ap.IsValid():
		return netip.AddrPort{}, errors.New("invalid address")
	case ap.Port() == 0:
		return netip.AddrPort{}, errors.New("port 0 cannot be reached")
	case ap.Addr().IsUnspecified():
		return netip.AddrPort{}, errors.New("unspecified address cannot be reached")
	}
	return ap, nil
}

// dedup removes repeats and Self in place, keeping first appearances.
func (r *Registry) dedup(peers []netip.AddrPort) []netip.AddrPort {
	seen := make(map[netip.AddrPort]struct{}, len(peers))
	out := peers[:0]
	for _, p := range peers {
		if _, dup := seen[p]; dup || p == r.cfg.Self {
			continue
		}
		seen[p] = struct{}{}
		out = append(out, p)
	}
	return out
}

// resolveUDP is the default Config.Resolve.
func resolveUDP(hostport string) (netip.AddrPort, error) {
	// Literal addresses, the common case, need no resolver.
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap, nil
	}
	// "udp" (not "udp4" or "udp6") makes net prefer an IPv4 address when a
	// name has both.
	ua, err := net.ResolveUDPAddr("udp", hostport)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return ua.AddrPort(), nil
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().Is4In6() {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return ap
}
