package node

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/registry/dht"
	"github.com/hearsay-io/hearsay/registry/memberlist"
	"github.com/hearsay-io/hearsay/security"
)

// A node that dies is skipped for gossip once it has not answered for
// PeerTimeout, and pulled again once it answers; idle live peers, which
// lack nothing and so get no answers, are never suspected, thanks to
// PULL_ACK.
func TestPeerHygiene(t *testing.T) {
	const timeout = 600 * time.Millisecond
	nodes := startCluster(t, 3, func(_ int, c *Config) { c.PeerTimeout = timeout })
	// Idle for many timeouts: nobody lacks anything, nobody is suspected.
	time.Sleep(5 * timeout)
	for i, nd := range nodes {
		st := nd.Stats()
		require.Zero(t, st.Peers.Suspected, "node %d suspected a live idle peer", i)
		require.NotZero(t, st.Peers.AcksSent, "node %d never acknowledged a pull", i)
	}

	dead := nodes[2].Addr()
	require.NoError(t, nodes[2].Close())
	for _, nd := range nodes[:2] {
		require.Eventually(t, func() bool {
			s := nd.SuspectPeers()
			return len(s) == 1 && s[0] == dead
		}, 20*timeout, 20*time.Millisecond)
	}
	// The survivors keep gossiping with each other.
	sub, err := nodes[1].Subscribe(">")
	require.NoError(t, err)
	id, err := nodes[0].Publish(context.Background(), "t", []byte("after the death"))
	require.NoError(t, err)
	got := collect(t, sub)
	require.Eventually(t, func() bool { return got.count(id) == 1 }, 5*time.Second, 10*time.Millisecond)
	before := nodes[0].Stats().Peers.PullsSkipped
	require.Eventually(t, func() bool { return nodes[0].Stats().Peers.PullsSkipped > before }, 10*timeout, 10*time.Millisecond)

	// The dead node comes back on its address: a probe pull (or its own
	// pulls) clears the suspicion.
	back, err := New(Config{Bind: dead.String(), Registry: peersOf(nodes[0].Addr(), nodes[1].Addr()),
		Gossip: fastGossip, Name: "back", PeerTimeout: timeout})
	require.NoError(t, err)
	t.Cleanup(func() { back.Close() })
	require.NoError(t, back.Start())
	for _, nd := range nodes[:2] {
		require.Eventually(t, func() bool { return len(nd.SuspectPeers()) == 0 }, 20*timeout, 20*time.Millisecond)
		require.NotZero(t, nd.Stats().Peers.Recovered)
	}
}

func peersOf(addrs ...netip.AddrPort) *settablePeers {
	p := &settablePeers{}
	p.set(addrs)
	return p
}

// fastDHT keeps the DHT's timers short, for tests.
func fastDHT(bootstrap ...netip.AddrPort) *dht.Config {
	return &dht.Config{Bootstrap: bootstrap, RequestTimeout: 200 * time.Millisecond,
		PingInterval: time.Second, RefreshInterval: 2 * time.Second, SampleInterval: time.Second}
}

// Nodes running the DHT over their own sealed UDP sockets find each other
// through one seed, gossip with what they find, and keep their table in the
// data dir across a restart.
func TestDHTNodes(t *testing.T) {
	ring := func() *security.Keyring {
		k, err := security.DeriveKey([]byte("dht test passphrase"), "hearsay", fastKDF)
		require.NoError(t, err)
		r, err := security.NewKeyring(k)
		require.NoError(t, err)
		return r
	}
	dirs := make([]string, 6)
	nodes := make([]*Node, 6)
	start := func(i int, bootstrap ...netip.AddrPort) *Node {
		if dirs[i] == "" {
			dirs[i] = t.TempDir()
		}
		nd, err := New(Config{Bind: "127.0.0.1:0", DataDir: dirs[i], DHT: fastDHT(bootstrap...),
			Gossip: fastGossip, Name: fmt.Sprintf("d%d", i), Keyring: ring()})
		require.NoError(t, err)
		t.Cleanup(func() { nd.Close() })
		require.NoError(t, nd.Start())
		return nd
	}
	nodes[0] = start(0)
	for i := 1; i < len(nodes); i++ {
		nodes[i] = start(i, nodes[0].Addr())
	}
	for i, nd := range nodes {
		require.Eventually(t, func() bool { return len(nd.Peers()) == len(nodes)-1 }, 15*time.Second,
			20*time.Millisecond, "node %d peers %v", i, nd.Peers())
	}
	info := nodes[0].PeersInfo()
	require.Equal(t, RegistryDHT, info.Registry)
	require.NotEmpty(t, info.Buckets)
	require.Len(t, info.Contacts, len(nodes)-1)

	subs := make([]*collector, len(nodes))
	for i, nd := range nodes {
		s, err := nd.Subscribe(">")
		require.NoError(t, err)
		subs[i] = collect(t, s)
	}
	id, err := nodes[3].Publish(context.Background(), "dht.test", []byte("found through the DHT"))
	require.NoError(t, err)
	for i, c := range subs {
		require.Eventually(t, func() bool { return c.count(id) == 1 }, 10*time.Second, 10*time.Millisecond, "node %d", i)
	}
	for i, nd := range nodes {
		require.Zero(t, nd.Stats().Drops["amplification"], "node %d", i)
	}

	// A restart without bootstrap addresses rejoins from the saved table.
	addr := nodes[5].Addr()
	require.NoError(t, nodes[5].Close())
	_, err = os.Stat(filepath.Join(dirs[5], dhtPeersFile))
	require.NoError(t, err)
	nd, err := New(Config{Bind: addr.String(), DataDir: dirs[5], DHT: fastDHT(), Gossip: fastGossip,
		Name: "d5", Keyring: ring()})
	require.NoError(t, err)
	t.Cleanup(func() { nd.Close() })
	require.NoError(t, nd.Start())
	require.Eventually(t, func() bool { return len(nd.Peers()) == len(nodes)-1 }, 15*time.Second, 20*time.Millisecond)
}

// A corrupt saved table is reported and the node joins through its
// bootstrap addresses all the same.
func TestDHTCorruptTable(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, dhtPeersFile), []byte("garbage"), 0o600))
	nd, err := New(Config{Bind: "127.0.0.1:0", DataDir: dir, DHT: fastDHT(), Gossip: fastGossip})
	require.NoError(t, err)
	require.NoError(t, nd.Close())
}

// Nodes running memberlist join through one seed, gossip with the live
// members, and drop a member that leaves.
func TestMemberlistNodes(t *testing.T) {
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

	sub, err := nodes[3].Subscribe(">")
	require.NoError(t, err)
	got := collect(t, sub)
	id, err := nodes[0].Publish(context.Background(), "ml", []byte("through memberlist's members"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return got.count(id) == 1 }, 10*time.Second, 10*time.Millisecond)

	require.NoError(t, nodes[2].Close()) // leaves
	gone := nodes[2].Addr().String()
	for _, nd := range []*Node{nodes[0], nodes[1], nodes[3]} {
		require.Eventually(t, func() bool { return !contains(nd.PeersInfo().Peers, gone) }, 10*time.Second, 20*time.Millisecond)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (c *collector) count(id gossip.MessageID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got[id]
}

// Large messages travel as chunks and the log holds the chunks: a resumed
// stream still gets them whole, and can resume after one.
func TestResumeAcrossLargeMessages(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	sub, err := nodes[1].Subscribe(">")
	require.NoError(t, err)
	got := collect(t, sub)
	ctx := context.Background()
	large := make([]byte, 200_000)
	for i := range large {
		large[i] = byte(i * 7)
	}
	first, err := nodes[0].Publish(ctx, "a", []byte("small one"))
	require.NoError(t, err)
	big, err := nodes[0].Publish(ctx, "a", large)
	require.NoError(t, err)
	last, err := nodes[0].Publish(ctx, "a", []byte("small two"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return got.distinct() == 3 }, 10*time.Second, 10*time.Millisecond)
	got.mu.Lock()
	for _, m := range got.all {
		if m.ID == big {
			require.Equal(t, large, m.Payload, "delivered whole")
		}
	}
	got.mu.Unlock()

	replayed := func(after gossip.MessageID) (bool, []gossip.Message) {
		s, r, err := nodes[1].SubscribeAfter(">", after)
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
}
