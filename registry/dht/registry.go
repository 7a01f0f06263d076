package dht

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/registry"
	"github.com/hearsay-io/hearsay/wire"
)

var _ registry.Registry = (*Registry)(nil)

// Registry is a Table behind a mutex: the registry.Registry a node shares
// between its read loop, its timer and its gossip core. Every method may be
// called from any goroutine.
//
// Tick, Handle and Lookup return the Ready of that input as a private copy,
// so two goroutines driving the same Registry never see each other's
// buffers reused.
type Registry struct {
	mu sync.Mutex
	t  *Table
}

// NewRegistry returns a Registry around a new Table for cfg.
func NewRegistry(cfg Config) (*Registry, error) {
	t, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return &Registry{t: t}, nil
}

// Tick calls Table.Tick and returns what to send.
func (r *Registry) Tick(now time.Time) Ready {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t.Tick(now)
	return r.takeLocked()
}

// Handle calls Table.Handle with a DHT datagram (see IsPacket) and returns
// what to send.
func (r *Registry) Handle(now time.Time, from netip.AddrPort, datagram []byte) Ready {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t.Handle(now, from, datagram)
	return r.takeLocked()
}

// HandlePacket calls Table.HandlePacket with the parsed header and body of
// a DHT datagram and returns what to send.
func (r *Registry) HandlePacket(now time.Time, from netip.AddrPort, t wire.PacketType, body []byte) Ready {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t.HandlePacket(now, from, t, body)
	return r.takeLocked()
}

// Lookup starts a lookup of target (Table.Lookup) and returns what to send.
// The result comes in the Ready of a later input.
func (r *Registry) Lookup(now time.Time, target gossip.NodeID) Ready {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t.Lookup(now, target)
	return r.takeLocked()
}

// takeLocked copies the table's Ready into memory of its own.
func (r *Registry) takeLocked() Ready {
	rd := r.t.Ready()
	var out Ready
	if len(rd.Datagrams) > 0 {
		size := 0
		for _, d := range rd.Datagrams {
			size += len(d.Data)
		}
		buf := make([]byte, 0, size)
		out.Datagrams = make([]gossip.Datagram, len(rd.Datagrams))
		for i, d := range rd.Datagrams {
			start := len(buf)
			buf = append(buf, d.Data...)
			out.Datagrams[i] = gossip.Datagram{To: d.To, Data: buf[start:len(buf):len(buf)]}
		}
	}
	if len(rd.Lookups) > 0 {
		out.Lookups = append([]LookupResult(nil), rd.Lookups...)
	}
	return out
}

// NextTick returns when Tick is next due (Table.NextTick).
func (r *Registry) NextTick() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.t.NextTick()
}

// Peers returns the addresses of every contact that answered its last
// request, without this node.
func (r *Registry) Peers() []netip.AddrPort {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.t.Peers()
}

// SamplePeers appends up to n distinct peers chosen uniformly at random with
// rng from the sample pool, which is spread uniformly over the network (see
// Table.SamplePeers).
func (r *Registry) SamplePeers(rng *rand.Rand, n int, dst []netip.AddrPort) []netip.AddrPort {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.t.SamplePeers(rng, n, dst)
}

// Buckets describes the buckets, for /v1/peers.
func (r *Registry) Buckets() []BucketInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.t.Buckets()
}

// Contacts describes every contact, for /v1/peers.
func (r *Registry) Contacts() []ContactInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.t.Contacts()
}

// Stats returns the table's counters and gauges.
func (r *Registry) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.t.Stats()
}

// Snapshot encodes the answering contacts (Table.Snapshot).
func (r *Registry) Snapshot() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.t.Snapshot()
}

// Restore adds a snapshot's contacts as join candidates (Table.Restore).
func (r *Registry) Restore(b []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.t.Restore(b)
}

// SaveFile writes a snapshot to path atomically (a temporary file renamed
// over it), with mode 0600.
func (r *Registry) SaveFile(path string) error {
	if err := writeFileAtomic(path, r.Snapshot()); err != nil {
		return fmt.Errorf("dht: saving peers: %w", err)
	}
	return nil
}

// LoadFile restores the snapshot at path. A missing file is not an error:
// there is nothing to restore on a node's first start. A corrupt one is,
// wrapping ErrCorruptSnapshot; the node can log it and join through its
// bootstrap addresses.
func (r *Registry) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("dht: loading peers: %w", err)
	}
	if err := r.Restore(b); err != nil {
		return fmt.Errorf("dht: loading peers from %s: %w", path, err)
	}
	return nil
}
