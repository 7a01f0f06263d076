package node

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/registry/dht"
	"github.com/hearsay-io/hearsay/registry/memberlist"
	"github.com/hearsay-io/hearsay/security"
	"github.com/hearsay-io/hearsay/transport"
)

// A node that dies is skipped for gossip once it has not answered for
// PeerTimeout, and pulled again once it answers; idle live peers, which
// lack nothing and so get no answers, are never suspected, thanks to
// PULL_ACK.
func TestPeerHygiene(t *testing.T) {
	const timeout = 600 * time.Millisecond
	c := newMemCluster(t, 3, func(_ int, c *Config) { c.PeerTimeout = timeout })
	nodes := c.nodes
	// Idle for many timeouts: nobody lacks anything, nobody is suspected.
	c.run(5 * timeout)
	for i, nd := range nodes {
		st := nd.Stats()
		require.Zero(t, st.Peers.Suspected, "node %d suspected a live idle peer", i)
		require.NotZero(t, st.Peers.AcksSent, "node %d never acknowledged a pull", i)
	}

	dead := nodes[2].Addr()
	require.NoError(t, nodes[2].Close())
	for _, nd := range nodes[:2] {
		c.waitFor(20*timeout, func() bool {
			s := nd.SuspectPeers()
			return len(s) == 1 && s[0] == dead
		})
	}
	// The survivors keep gossiping with each other.
	got := subscribe(t, nodes[1], ">")
	id, err := nodes[0].Publish(context.Background(), "t", []byte("after the death"))
	require.NoError(t, err)
	c.waitFor(5*time.Second, func() bool { return got.count(id) == 1 })
	before := nodes[0].Stats().Peers.PullsSkipped
	c.waitFor(10*timeout, func() bool { return nodes[0].Stats().Peers.PullsSkipped > before })

	// The dead node comes back on its address: a probe pull (or its own
	// pulls) clears the suspicion.
	back := c.newNode(2, Config{Registry: c.peersBut(2, 3), Name: "back", PeerTimeout: timeout})
	require.NoError(t, back.Start())
	for _, nd := range nodes[:2] {
		c.waitFor(20*timeout, func() bool { return len(nd.SuspectPeers()) == 0 })
		require.NotZero(t, nd.Stats().Peers.Recovered)
	}
}

// fastDHT keeps the DHT's timers short.
func fastDHT(bootstrap ...netip.AddrPort) *dht.Config {
	return &dht.Config{Bootstrap: bootstrap, RequestTimeout: 200 * time.Millisecond,
		PingInterval: time.Second, RefreshInterval: 2 * time.Second, SampleInterval: time.Second}
}

// Nodes running the DHT over their own sealed transports find each other
// through one seed, gossip with what they find, and keep their table in the
// data dir across a restart.
func TestDHTNodes(t *testing.T) {
	t.Parallel()
	const size = 6
	c := newMemNetwork(t, transport.NetworkConfig{})
	dirs := make([]string, size)
	start := func(i int, bootstrap ...netip.AddrPort) *Node {
		if dirs[i] == "" {
			dirs[i] = t.TempDir()
		}
		nd := c.newNode(i, Config{DataDir: dirs[i], DHT: fastDHT(bootstrap...), Name: fmt.Sprintf("d%d", i),
			Keyring: ringFor(t, "dht test passphrase")})
		require.NoError(t, nd.Start())
		return nd
	}
	nodes := []*Node{start(0)}
	for i := 1; i < size; i++ {
		nodes = append(nodes, start(i, memAddr(0)))
	}
	c.nodes = nodes
	for i, nd := range nodes {
		c.waitFor(15*time.Second, func() bool { return len(nd.Peers()) == size-1 }, "node %d peers %v", i, nd.Peers())
	}
	info := nodes[0].PeersInfo()
	require.Equal(t, RegistryDHT, info.Registry)
	require.NotEmpty(t, info.Buckets)
	require.Len(t, info.Contacts, size-1)

	boxes := c.inboxes()
	id, err := nodes[3].Publish(context.Background(), "dht.test", []byte("found through the DHT"))
	require.NoError(t, err)
	for i, b := range boxes {
		c.waitFor(10*time.Second, func() bool { return b.count(id) == 1 }, "node %d", i)
	}
	for i, nd := range nodes {
		require.Zero(t, nd.Stats().Drops["amplification"], "node %d", i)
	}

	// A restart without bootstrap addresses rejoins from the saved table.
	require.NoError(t, nodes[5].Close())
	_, err = os.Stat(filepath.Join(dirs[5], dhtPeersFile))
	require.NoError(t, err)
	nd := start(5)
	c.waitFor(15*time.Second, func() bool { return len(nd.Peers()) == size-1 })
}

// A corrupt saved table is reported and the node joins through its
// bootstrap addresses all the same; while it runs, its table is saved
// again every minute.
func TestDHTCorruptTable(t *testing.T) {
	dir := t.TempDir()
	saved := filepath.Join(dir, dhtPeersFile)
	require.NoError(t, os.WriteFile(saved, []byte("garbage"), 0o600))
	c := newMemNetwork(t, transport.NetworkConfig{})
	seed := c.newNode(0, Config{DHT: fastDHT()})
	require.NoError(t, seed.Start())
	nd := c.newNode(1, Config{DataDir: dir, DHT: fastDHT(memAddr(0))})
	require.NoError(t, nd.Start())
	c.waitFor(10*time.Second, func() bool { return len(nd.Peers()) == 1 })
	c.run(dhtSaveInterval)
	b, err := os.ReadFile(saved)
	require.NoError(t, err)
	require.NotEqual(t, "garbage", string(b), "saved while running")
	require.NoError(t, nd.Close())
}

// Nodes running memberlist join through one seed, gossip with the live
// members, and drop a member that leaves. Memberlist has sockets and timers
// of its own, so these nodes run on real sockets.
func TestMemberlistNodes(t *testing.T) {
	t.Parallel()
	k, err := security.DeriveKey([]byte("memberlist test passphrase"), "hearsay", fastKDF)
	require.NoError(t, err)
	var nodes []*Node
	var seed string
	for i := range 4 {
		ring, err := security.NewKeyring(k)
		require.NoError(t, err)
		// The LAN profile: the local one's 200 ms probe timeout took live
		// members for dead under -race with other packages' tests running.
		cfg := Config{Bind: "127.0.0.1:0", Gossip: fastGossip, Name: fmt.Sprintf("m%d", i), Keyring: ring,
			Memberlist: &memberlist.Config{BindPort: -1, Profile: memberlist.ProfileLAN}}
		if seed != "" {
			cfg.Join = []string{seed}
		}
		nd, err := New(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { nd.Close() })
		require.NoError(t, nd.Start())
		if i == 0 {
			seed = nd.Memberlist().Addr().String()
		}
		nodes = append(nodes, nd)
	}
	for i, nd := range nodes {
		require.Eventually(t, func() bool { return len(nd.Peers()) == len(nodes)-1 }, 20*time.Second,
			20*time.Millisecond, "node %d", i)
	}
	info := nodes[1].PeersInfo()
	require.Equal(t, RegistryMemberlist, info.Registry)
	require.Len(t, info.Members, len(nodes))
	require.Contains(t, info.Peers, nodes[0].Addr().String(), "members carry their gossip address")

	got := subscribe(t, nodes[3], ">")
	id, err := nodes[0].Publish(context.Background(), "ml", []byte("through memberlist's members"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return got.count(id) == 1 }, 10*time.Second, 10*time.Millisecond)

	require.NoError(t, nodes[2].Close()) // leaves
	gone := nodes[2].Addr().String()
	for _, nd := range []*Node{nodes[0], nodes[1], nodes[3]} {
		require.Eventually(t, func() bool { return !slices.Contains(nd.PeersInfo().Peers, gone) }, 10*time.Second, 20*time.Millisecond)
	}
}

// Large messages travel as chunks and the log holds the chunks: a resumed
// stream still gets them whole, and can resume after one.
func TestResumeAcrossLargeMessages(t *testing.T) {
	c := newMemCluster(t, 2, nil)
	got := subscribe(t, c.nodes[1], ">")
	ctx := context.Background()
	large := make([]byte, 200_000)
	for i := range large {
		large[i] = byte(i * 7)
	}
	first, err := c.nodes[0].Publish(ctx, "a", []byte("small one"))
	require.NoError(t, err)
	big, err := c.nodes[0].Publish(ctx, "a", large)
	require.NoError(t, err)
	last, err := c.nodes[0].Publish(ctx, "a", []byte("small two"))
	require.NoError(t, err)
	c.waitFor(10*time.Second, func() bool { return got.distinct() == 3 })
	for _, m := range got.all {
		if m.ID == big {
			require.Equal(t, large, m.Payload, "delivered whole")
		}
	}

	replayed := func(after gossip.MessageID) (bool, []gossip.Message) {
		s, r, err := c.nodes[1].SubscribeAfter(">", after)
		require.NoError(t, err)
		defer s.Close()
		var out []gossip.Message
		for b := r.Next(); b != nil; b = r.Next() {
			out = append(out, b...)
		}
		require.NoError(t, r.Err())
		return r.Found(), out
	}
	found, out := replayed(first)
	require.True(t, found)
	require.Len(t, out, 2)
	require.Equal(t, big, out[0].ID)
	require.Equal(t, large, out[0].Payload)
	require.Equal(t, last, out[1].ID)

	found, out = replayed(big)
	require.True(t, found, "a large message is a resume point too")
	require.Len(t, out, 1)
	require.Equal(t, last, out[0].ID)

	found, out = replayed(gossip.MessageID{1})
	require.False(t, found)
	require.Empty(t, out)

	// SubscribeLogged replays the whole log, the large message whole.
	s, r, err := c.nodes[1].SubscribeLogged("a")
	require.NoError(t, err)
	defer s.Close()
	require.True(t, r.Found())
	var all []gossip.MessageID
	for b := r.Next(); b != nil; b = r.Next() {
		for _, m := range b {
			all = append(all, m.ID)
		}
	}
	require.NoError(t, r.Err())
	require.Equal(t, []gossip.MessageID{first, big, last}, all)
}
