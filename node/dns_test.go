package node

import (
	"bytes"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/registry/dns"
	"github.com/hearsay-io/hearsay/registry/dns/dnstest"
)

// lockedBuffer is a log sink safe for the node's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A node on the DNS registry, over real UDP, against a real DNS server:
// an SRV record added becomes a peer it pulls, one removed stops being
// pulled, and a server that stops answering leaves the last good peers.
func TestDNSRegistryNode(t *testing.T) {
	t.Parallel()
	const name, interval = "_hearsay._udp.cluster.test.", 50 * time.Millisecond
	srv := dnstest.Start(t)
	srv.SetA("local.test", netip.MustParseAddr("127.0.0.1"))
	set := func(nodes ...*Node) {
		var ports []uint16
		for _, nd := range nodes {
			ports = append(ports, nd.Addr().Port())
		}
		srv.SetSRV(name, "local.test", ports...)
		srv.Fail(false)
	}
	// b and c have no peers of their own: every pull they get is a's.
	others := startCluster(t, 2, func(_ int, c *Config) { c.Registry = &settablePeers{} })
	b, c := others[0], others[1]
	set(b)

	logs := &lockedBuffer{}
	a, err := New(Config{Bind: "127.0.0.1:0", Name: "a", Gossip: fastGossip, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		DNS: &dns.Config{Names: []string{name}, Interval: interval, Resolver: dns.ServerResolver(srv.Addr())}})
	require.NoError(t, err)
	t.Cleanup(func() { a.Close() })
	require.Equal(t, []netip.AddrPort{b.Addr()}, a.Peers())
	require.NoError(t, a.Start())
	require.Eventually(t, func() bool { return b.Stats().Gossip.PullsIn > 0 }, 10*time.Second, time.Millisecond)

	// Added: c becomes a peer, and is pulled.
	set(b, c)
	start := time.Now()
	require.Eventually(t, func() bool { return slices.Contains(a.Peers(), c.Addr()) }, 10*time.Second, time.Millisecond)
	t.Logf("added record noticed after %v (interval %v)", time.Since(start).Round(time.Millisecond), interval)
	require.Eventually(t, func() bool { return c.Stats().Gossip.PullsIn > 0 }, 10*time.Second, time.Millisecond)

	// Removed: b is no longer a peer, and no longer pulled once the
	// pulls already sent have arrived.
	set(c)
	start = time.Now()
	require.Eventually(t, func() bool { return !slices.Contains(a.Peers(), b.Addr()) }, 10*time.Second, time.Millisecond)
	t.Logf("removed record noticed after %v (interval %v)", time.Since(start).Round(time.Millisecond), interval)
	waitRounds(t, a, 2)
	pulled := b.Stats().Gossip.PullsIn
	waitRounds(t, a, 10)
	require.Equal(t, pulled, b.Stats().Gossip.PullsIn, "b pulled after its record went")

	require.Equal(t, 2, strings.Count(logs.String(), "dns registry: peers changed"), logs.String())

	// The server fails: the last good peers stay, and the failure is
	// logged once, not at every refresh.
	srv.Fail(true)
	asked := srv.Queries()
	require.Eventually(t, func() bool { return srv.Queries() >= asked+4 }, 10*time.Second, time.Millisecond)
	require.Equal(t, []netip.AddrPort{c.Addr()}, a.Peers())
	require.Equal(t, 1, strings.Count(logs.String(), "resolution failed"), logs.String())
	set(c)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "resolving again") }, 10*time.Second, time.Millisecond)
	require.Equal(t, 2, strings.Count(logs.String(), "dns registry: peers changed"), "no change logged for a failure")
}

// waitRounds waits for nd to complete k more gossip rounds.
func waitRounds(t *testing.T, nd *Node, k uint64) {
	t.Helper()
	target := nd.Stats().Gossip.Rounds + k
	require.Eventually(t, func() bool { return nd.Stats().Gossip.Rounds >= target }, 10*time.Second, time.Millisecond)
}
