package dht

import (
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/registry"
	"github.com/hearsay-io/hearsay/transport"
)

var _ registry.Registry = (*Registry)(nil)

// TestRegistryConcurrentUse drives a Registry from the network's goroutine
// while others read it, as the node's API and gossip core do.
func TestRegistryConcurrentUse(t *testing.T) {
	t.Parallel()
	net := transport.NewNetwork(transport.NetworkConfig{Seed: 1, Latency: 5 * time.Millisecond})
	var regs []*Registry
	for i := range 12 {
		addr := simAddr(i + 1)
		cfg := Config{Self: nodeID(byte(i*20 + 1)), SelfAddr: addr}
		if i > 0 {
			cfg.Bootstrap = []netip.AddrPort{simAddr(1)}
		}
		r, err := NewRegistry(cfg)
		require.NoError(t, err)
		regs = append(regs, r)
		var ep *transport.Endpoint
		send := func(rd Ready) {
			for _, d := range rd.Datagrams {
				require.NoError(t, ep.Send(d.To, d.Data))
			}
		}
		ep, err = net.Attach(addr, func(from netip.AddrPort, d []byte) { send(r.Handle(net.Now(), from, d)) })
		require.NoError(t, err)
		var tick func()
		tick = func() {
			send(r.Tick(net.Now()))
			net.At(r.NextTick(), tick)
		}
		net.At(net.Now(), tick)
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 3 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 0))
			var dst []netip.AddrPort
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := regs[rng.IntN(len(regs))]
				dst = r.SamplePeers(rng, 3, dst[:0])
				_ = r.Peers()
				_ = r.Buckets()
				_ = r.Contacts()
				_ = r.Stats()
				_ = r.Snapshot()
			}
		})
	}
	rd := regs[3].Lookup(net.Now(), nodeID(0x77))
	require.Empty(t, rd.Datagrams, "before the first Tick the lookup waits")
	require.Empty(t, rd.Lookups)
	net.RunUntil(net.Now().Add(20 * time.Second))
	close(stop)
	wg.Wait()
	for _, r := range regs {
		require.Len(t, r.Peers(), 11)
	}
}

func TestSaveAndLoadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dht-peers")
	tb, _ := newTestTable(t, 50)
	r := &Registry{t: tb}
	require.NoError(t, r.SaveFile(path))
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left")

	fresh, err := NewRegistry(Config{Self: nodeID(0x55)})
	require.NoError(t, err)
	require.NoError(t, fresh.LoadFile(path))
	saved := tb.Stats().Answering
	require.Len(t, fresh.t.restored, saved)
	// The first Tick pings them all.
	rd := fresh.Tick(testStart)
	require.Len(t, rd.Datagrams, saved)

	// A first start has no file: nothing to do.
	require.NoError(t, fresh.LoadFile(filepath.Join(dir, "absent")))
	// A damaged file is reported, naming it.
	require.NoError(t, os.WriteFile(path, []byte("HSDT\x01garbage"), 0o600))
	err = fresh.LoadFile(path)
	require.ErrorIs(t, err, ErrCorruptSnapshot)
	require.ErrorContains(t, err, path)
	// So is an unwritable place.
	require.Error(t, r.SaveFile(filepath.Join(dir, "no", "such", "dir", "x")))
}
