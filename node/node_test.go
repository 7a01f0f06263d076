package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/msglog"
	"github.com/hearsay-io/hearsay/security"
	"github.com/hearsay-io/hearsay/transport"
)

// Ten nodes, 500 messages from three origins, datagrams reordered by
// jitter: every node delivers each exactly once, and a while later still
// only once.
func TestClusterDeliversExactlyOnce(t *testing.T) {
	const nodes, messages = 10, 500
	c := newMemNetwork(t, transport.NetworkConfig{Latency: time.Millisecond, Jitter: 3 * time.Millisecond})
	for i := range nodes {
		c.nodes = append(c.nodes, c.newNode(i, Config{Name: fmt.Sprintf("n%d", i), Registry: c.peersBut(i, nodes)}))
		require.NoError(t, c.nodes[i].Start())
	}
	boxes := c.inboxes()
	ids := map[gossip.MessageID]bool{}
	for i := range messages {
		id, err := c.nodes[i%3].Publish(context.Background(), "test.mem", []byte(fmt.Sprintf("message %d", i)))
		require.NoError(t, err)
		ids[id] = true
		if i%50 == 49 {
			c.run(10 * time.Millisecond)
		}
	}
	require.Len(t, ids, messages)
	for i, b := range boxes {
		c.waitFor(time.Minute, func() bool { return b.distinct() == messages }, "node %d delivered %d of %d", i, b.distinct(), messages)
	}
	c.run(20 * gossip.DefaultConfig(gossip.NodeID{}, nil).Interval)
	for i, b := range boxes {
		b.requireOnce(t, ids, "node %d", i)
	}
	st := c.nodes[9].Stats()
	require.Equal(t, uint64(messages), st.Gossip.Delivered)
	require.NotZero(t, st.UDP.DatagramsIn, "the endpoint counts")
}

// The same cluster over real UDP sockets, sealed: the socket path, batch
// reads and writes, and sealing, end to end.
func TestRealUDPClusterSealedDeliversExactlyOnce(t *testing.T) {
	t.Parallel()
	const nodes, messages = 5, 200
	cluster := startCluster(t, nodes, func(i int, c *Config) { c.Keyring = ringFor(t, "real UDP passphrase") })
	var boxes []*inbox
	for _, nd := range cluster {
		boxes = append(boxes, subscribe(t, nd, ">"))
		require.True(t, nd.Encrypted())
	}
	ids := map[gossip.MessageID]bool{}
	for i := range messages {
		id, err := cluster[i%3].Publish(context.Background(), "test.udp", []byte(fmt.Sprintf("message %d", i)))
		require.NoError(t, err)
		ids[id] = true
	}
	for i, b := range boxes {
		require.Eventually(t, func() bool { return b.distinct() == messages }, 60*time.Second, 10*time.Millisecond,
			"node %d delivered %d of %d", i, b.distinct(), messages)
	}
	// Twenty more rounds everywhere: nothing is delivered twice.
	rounds := make([]uint64, nodes)
	for i, nd := range cluster {
		rounds[i] = nd.Stats().Gossip.Rounds
	}
	for i, nd := range cluster {
		require.Eventually(t, func() bool { return nd.Stats().Gossip.Rounds >= rounds[i]+20 }, 30*time.Second, 10*time.Millisecond)
	}
	for i, b := range boxes {
		b.requireOnce(t, ids, "node %d", i)
	}
	st := cluster[nodes-1].Stats()
	require.Equal(t, uint64(messages), st.Gossip.Delivered)
	require.NotZero(t, st.UDP.DatagramsIn)
	require.NotZero(t, st.UDP.DatagramsOut)
	require.Zero(t, st.Drops["auth_failed"]+st.Drops["plaintext"])
}

// A burst larger than one answer reaches a sealed node in answers that end
// with MORE, each pulled again at once: every message once, MOREs sent and
// acted on, and what they say visible in /metrics.
func TestBurstComesInAnswersPulledAgainOnMore(t *testing.T) {
	const messages = 2000
	c := newMemCluster(t, 2, func(i int, c *Config) {
		c.Gossip.MaxAnswerBytes = 16 << 10
		c.Keyring = ringFor(t, "burst passphrase")
		c.SubscriberBuffer = messages
	})
	got := subscribe(t, c.nodes[1], ">")
	payload := bytes.Repeat([]byte("m"), 200)
	for range messages {
		_, err := c.nodes[0].Publish(context.Background(), "burst", payload)
		require.NoError(t, err)
	}
	c.waitFor(time.Minute, func() bool { return got.distinct() == messages }, "delivered %d of %d", got.distinct(), messages)
	got.requireOnce(t, nil)
	sent, recv := c.nodes[0].Stats().Gossip, c.nodes[1].Stats().Gossip
	require.NotZero(t, sent.MoresOut, "answers were cut short and said so")
	require.NotZero(t, recv.Repulls, "and were pulled again")
	require.Zero(t, recv.Duplicates)

	srv := apiServer(t, c.nodes[1], APIConfig{})
	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Regexp(t, `hearsay_repulls_total [1-9]`, string(text))
	require.Contains(t, string(text), `hearsay_mores_total{direction="ignored"}`)
}

// A node with the leveldb filter, closed and reopened on the same data dir,
// never delivers again a message it delivered before.
func TestLevelDBRestartNeverRedelivers(t *testing.T) {
	dir := t.TempDir()
	c := newMemCluster(t, 2, func(i int, c *Config) {
		if i == 0 {
			c.DataDir, c.Name = dir, ""
		}
	})
	a, b := c.nodes[0], c.nodes[1]
	got := subscribe(t, a, ">")
	first, err := b.Publish(context.Background(), "test.restart", []byte("before"))
	require.NoError(t, err)
	c.waitFor(10*time.Second, func() bool { return got.distinct() == 1 })
	oldID := a.ID()
	require.NoError(t, a.Close())

	// Reopen: same ID, and b still offers the first message (its cache
	// keeps it 30 rounds): a must not deliver it again.
	a2 := c.newNode(0, Config{DataDir: dir, Registry: c.peersBut(0, 2)})
	require.Equal(t, oldID, a2.ID())
	require.Equal(t, FilterLevelDB, a2.Status().Filter)
	got2 := subscribe(t, a2, ">")
	require.NoError(t, a2.Start())
	c.waitFor(10*time.Second, func() bool { return a2.Stats().Gossip.Duplicates > 0 },
		"the reopened node is offered the old message again")
	second, err := b.Publish(context.Background(), "test.restart", []byte("after"))
	require.NoError(t, err)
	c.waitFor(10*time.Second, func() bool { return got2.distinct() == 1 })
	require.Equal(t, 1, got2.count(second))
	require.Zero(t, got2.count(first), "delivered again after restart")
}

func TestPublishErrors(t *testing.T) {
	nd := newMemCluster(t, 1, func(i int, c *Config) {
		c.Gossip.MaxPacketSize = 600
		c.Gossip.MaxMessageSize = 600
	}).nodes[0]
	ctx := context.Background()
	_, err := nd.Publish(ctx, "bad topic", nil)
	require.ErrorIs(t, err, gossip.ErrInvalidTopic)
	_, err = nd.Publish(ctx, "ok", make([]byte, 700))
	require.ErrorIs(t, err, gossip.ErrMessageTooLarge)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = nd.Publish(cctx, "ok", nil)
	require.ErrorIs(t, err, context.Canceled)
	st := nd.Stats()
	require.Equal(t, uint64(1), st.Refused[refusedInvalidTopic])
	require.Equal(t, uint64(1), st.Refused[refusedTooLarge])
	require.NoError(t, nd.Close())
	_, err = nd.Publish(ctx, "ok", nil)
	require.ErrorIs(t, err, ErrClosed)
	_, err = nd.Subscribe(">")
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, nd.Start(), ErrClosed)
	require.NoError(t, nd.Close(), "closing again")
}

func TestSlowSubscriberIsCutOffAlone(t *testing.T) {
	nd := newMemCluster(t, 1, func(i int, c *Config) { c.SubscriberBuffer = 3 }).nodes[0]
	slow, err := nd.Subscribe(">")
	require.NoError(t, err)
	fast := subscribe(t, nd, "a.*")
	for i := range 10 {
		_, err := nd.Publish(context.Background(), "a.b", []byte{byte(i)})
		require.NoError(t, err)
		fast.read() // the fast reader keeps up
	}
	n := 0
	for range slow.C {
		n++
	}
	require.Equal(t, 3, n, "the slow subscriber got its buffer, then its channel closed")
	require.ErrorIs(t, slow.Err(), ErrSlowSubscriber)
	require.Equal(t, 10, fast.distinct())
	require.NoError(t, fast.sub.Err())
	fast.sub.Close()
	require.ErrorIs(t, fast.sub.Err(), ErrClosed)
}

// A cluster on the in-memory network is a pure function of its seeds: the
// same run twice ends in the same state, counter for counter.
func TestInMemoryClusterIsDeterministic(t *testing.T) {
	run := func() []gossip.Stats {
		c := newMemCluster(t, 4, func(i int, c *Config) { c.Keyring = ringFor(t, "deterministic passphrase") })
		for i := range 40 {
			_, err := c.nodes[i%4].Publish(context.Background(), "det", []byte{byte(i)})
			require.NoError(t, err)
			c.run(7 * time.Millisecond)
		}
		c.run(15 * time.Second) // an anti-entropy session or so too
		var out []gossip.Stats
		for _, nd := range c.nodes {
			out = append(out, nd.Stats().Gossip)
			require.NoError(t, nd.Close())
		}
		return out
	}
	first := run()
	require.NotZero(t, first[0].AESessions)
	require.Equal(t, first, run())
}

// DefaultConfig is what New makes of a zero Config: a node given it runs
// as one given nothing.
func TestDefaultConfig(t *testing.T) {
	def := DefaultConfig()
	g := gossip.DefaultConfig(gossip.NodeID{}, nil)
	require.Equal(t, "0.0.0.0:7600", def.Bind)
	require.Equal(t, "hearsay", def.Cluster)
	require.Equal(t, FilterMemory, def.Filter)
	require.Equal(t, 10*time.Second, def.PeerTimeout)
	require.Equal(t, 1024, def.SubscriberBuffer)
	require.Equal(t, security.DefaultKDFParams, def.KDF)
	require.Equal(t, g.Fanout, def.Gossip.Fanout)
	require.Equal(t, g.MaxPacketSize, def.Gossip.MaxPacketSize)
	require.Equal(t, g.Retention, def.Gossip.Retention)
	require.Equal(t, g.AEInterval, def.Gossip.AEInterval)
	require.Nil(t, def.Gossip.Filter, "the node's own")
	require.InDelta(t, 2.1*(1<<20), def.MaxBytesPerPeerRound, 0.05*(1<<20))

	c := newMemNetwork(t, transport.NetworkConfig{})
	zero := c.newNode(0, Config{})
	fromDefaults := c.newNode(1, DefaultConfig())
	require.Equal(t, zero.core.Config().MaxPacketSize, fromDefaults.core.Config().MaxPacketSize)
	require.Equal(t, g.MaxPacketSize-security.Overhead, zero.core.Config().MaxPacketSize, "sealing room kept")
	require.Equal(t, zero.limits.maxPerRound, fromDefaults.limits.maxPerRound)
	require.Equal(t, def.MaxBytesPerPeerRound, zero.limits.maxPerRound)
	zs, ds := zero.Status(), fromDefaults.Status()
	require.Equal(t, zs.Fanout, ds.Fanout)
	require.Equal(t, zs.Interval, ds.Interval)
	require.Equal(t, zs.MaxPacketSize, ds.MaxPacketSize)
	require.Equal(t, zero.core.Config().AEInterval, fromDefaults.core.Config().AEInterval)
}

// Config.Gossip's Retention and AEInterval reach the core; nothing
// overrides them.
func TestGossipConfigReachesTheCore(t *testing.T) {
	nd := newMemCluster(t, 1, func(i int, c *Config) {
		c.Gossip.Retention = time.Minute
		c.Gossip.AEInterval = -1
	}).nodes[0]
	require.Equal(t, time.Minute, nd.core.Config().Retention)
	require.Negative(t, nd.core.Config().AEInterval)
}

// A log given in Config.Log is the one the core keeps messages in, and the
// node closes it with itself.
func TestConfigLog(t *testing.T) {
	log := msglog.NewMemory(0)
	c := newMemCluster(t, 2, func(i int, c *Config) {
		if i == 1 {
			c.Log = log
		}
	})
	id, err := c.nodes[0].Publish(context.Background(), "logged", []byte("kept"))
	require.NoError(t, err)
	c.waitFor(10*time.Second, func() bool { return log.Len() == 1 })
	ok, err := log.Contains(id)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 1, c.nodes[1].Status().LogMessages)
	require.NoError(t, c.nodes[1].Close())
	_, err = log.Contains(id)
	require.ErrorIs(t, err, msglog.ErrClosed)
}

func TestPatterns(t *testing.T) {
	cases := []struct {
		pattern, topic string
		match          bool
	}{
		{">", "a", true}, {">", "a.b.c", true},
		{"orders.*", "orders.created", true}, {"orders.*", "orders.eu.created", false}, {"orders.*", "orders", false},
		{"orders.>", "orders.created", true}, {"orders.>", "orders.eu.created", true}, {"orders.>", "orders", false},
		{"*.created", "orders.created", true}, {"*.created", "orders.deleted", false},
		{"a.b", "a.b", true}, {"a.b", "a.b.c", false}, {"a.b", "a", false}, {"*", "a", true}, {"*", "a.b", false},
		{"a.*.c", "a.x.c", true}, {"a.*.c", "a.x.d", false},
	}
	for _, c := range cases {
		p, err := ParsePattern(c.pattern)
		require.NoError(t, err)
		require.Equal(t, c.match, p.Match(c.topic), "%s ~ %s", c.pattern, c.topic)
	}
	for _, bad := range []string{"a.>.b", "a..b", "a b", ".", "a.", "é"} {
		_, err := ParsePattern(bad)
		require.Error(t, err, bad)
	}
	p, err := ParsePattern("")
	require.NoError(t, err)
	require.Equal(t, ">", p.String())
}

func TestIdentityPersistsAndCorruptionIsClear(t *testing.T) {
	dir := t.TempDir()
	id1, err := loadIdentity(dir, "", testKey(1))
	require.NoError(t, err)
	k1, _ := testKey(1)()
	require.Equal(t, gossip.NodeIDOf(k1.Public().(ed25519.PublicKey)), id1.ID, "the ID derives from the key")
	require.NotEmpty(t, id1.Name)
	require.True(t, id1.Replaced.IsZero())
	fi, err := os.Stat(filepath.Join(dir, keyFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the key is a secret")
	id2, err := loadIdentity(dir, "", testKey(2))
	require.NoError(t, err)
	require.Equal(t, id1.ID, id2.ID, "the stored key, not a new one")
	require.Equal(t, id1.Key, id2.Key)
	require.Equal(t, id1.Name, id2.Name)
	id3, err := loadIdentity(dir, "renamed", testKey(2))
	require.NoError(t, err)
	require.Equal(t, "renamed", id3.Name)

	require.NoError(t, os.WriteFile(filepath.Join(dir, identityFile), []byte("{not json"), 0o600))
	_, err = loadIdentity(dir, "", testKey(1))
	require.ErrorContains(t, err, "corrupt")
	require.NoError(t, os.WriteFile(filepath.Join(dir, keyFile), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600))
	_, err = loadIdentity(dir, "", testKey(1))
	require.ErrorContains(t, err, keyFile+" is corrupt")
}

// A data dir of a version before node keys holds only node.json with a
// random ID: the node gets a key, and with it a new ID, and says so.
func TestIdentityOfAnOlderDataDir(t *testing.T) {
	dir := t.TempDir()
	old := gossip.NodeID{0xaa, 0xbb}
	require.NoError(t, os.WriteFile(filepath.Join(dir, identityFile),
		[]byte(`{"id": "`+old.String()+`", "name": "veteran"}`), 0o600))
	id, err := loadIdentity(dir, "", testKey(3))
	require.NoError(t, err)
	require.Equal(t, old, id.Replaced)
	require.NotEqual(t, old, id.ID)
	require.Equal(t, "veteran", id.Name, "the name is kept")
	again, err := loadIdentity(dir, "", testKey(4))
	require.NoError(t, err)
	require.Equal(t, id.ID, again.ID)
	require.True(t, again.Replaced.IsZero(), "said once")
	b, err := os.ReadFile(filepath.Join(dir, identityFile))
	require.NoError(t, err)
	require.Contains(t, string(b), id.ID.String(), "node.json shows the new ID")
}

func TestIdentityWithoutDataDir(t *testing.T) {
	a, err := loadIdentity("", "", func() (ed25519.PrivateKey, error) {
		_, k, err := ed25519.GenerateKey(nil)
		return k, err
	})
	require.NoError(t, err)
	b, err := loadIdentity("", "", func() (ed25519.PrivateKey, error) {
		_, k, err := ed25519.GenerateKey(nil)
		return k, err
	})
	require.NoError(t, err)
	require.NotEqual(t, a.ID, b.ID, "a fresh key each start")
}

func testKey(seed byte) func() (ed25519.PrivateKey, error) {
	return func() (ed25519.PrivateKey, error) {
		return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)), nil
	}
}

func TestBadConfig(t *testing.T) {
	_, err := New(Config{Bind: "127.0.0.1:0", Filter: "redis"})
	require.ErrorContains(t, err, "unknown filter")
	_, err = New(Config{Bind: "127.0.0.1:0", Filter: FilterLevelDB})
	require.ErrorContains(t, err, "needs a data dir")
	_, err = New(Config{Bind: "not-an-address"})
	require.Error(t, err)
	// A data dir locked by another node is refused with a clear error.
	dir := t.TempDir()
	a, err := New(Config{Bind: "127.0.0.1:0", DataDir: dir})
	require.NoError(t, err)
	defer a.Close()
	_, err = New(Config{Bind: "127.0.0.1:0", DataDir: dir})
	require.ErrorContains(t, err, "in use")
	// A failed New leaves what it was given open.
	net := transport.NewNetwork(transport.NetworkConfig{})
	ep, err := net.Listen(memAddr(0))
	require.NoError(t, err)
	log := msglog.NewMemory(0)
	_, err = New(Config{Transport: ep, Clock: net, Log: log, Gossip: gossip.Config{Fanout: 100}})
	require.ErrorContains(t, err, "Fanout")
	require.NoError(t, ep.Start(func([]transport.Received) {}), "the transport is still usable")
	_, err = log.Contains(msglog.ID{})
	require.NoError(t, err, "the log is still open")
}
