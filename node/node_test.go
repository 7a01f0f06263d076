package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
)

// settablePeers is a registry the test fills once every node is bound: it
// also shows that any type with these two methods plugs in as a registry.
type settablePeers struct {
	mu    sync.RWMutex
	peers []netip.AddrPort
}

func (p *settablePeers) set(peers []netip.AddrPort) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.peers = peers
}

func (p *settablePeers) Peers() []netip.AddrPort {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return append([]netip.AddrPort(nil), p.peers...)
}

func (p *settablePeers) SamplePeers(rng *rand.Rand, n int, dst []netip.AddrPort) []netip.AddrPort {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, i := range rng.Perm(len(p.peers)) {
		if n == 0 {
			break
		}
		dst = append(dst, p.peers[i])
		n--
	}
	return dst
}

var fastGossip = gossip.Config{Interval: 30 * time.Millisecond}

// startCluster starts n nodes on 127.0.0.1, each with every other as peer.
func startCluster(t *testing.T, n int, tweak func(i int, c *Config)) []*Node {
	t.Helper()
	var nodes []*Node
	var regs []*settablePeers
	for i := 0; i < n; i++ {
		reg := &settablePeers{}
		cfg := Config{Bind: "127.0.0.1:0", Registry: reg, Gossip: fastGossip, Name: fmt.Sprintf("n%d", i)}
		if tweak != nil {
			tweak(i, &cfg)
		}
		nd, err := New(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { nd.Close() })
		nodes = append(nodes, nd)
		regs = append(regs, reg)
	}
	for i, reg := range regs {
		var peers []netip.AddrPort
		for j, nd := range nodes {
			if j != i {
				peers = append(peers, nd.Addr())
			}
		}
		reg.set(peers)
	}
	for _, nd := range nodes {
		require.NoError(t, nd.Start())
	}
	return nodes
}

// collector gathers a subscription's messages.
type collector struct {
	mu  sync.Mutex
	got map[gossip.MessageID]int
	all []gossip.Message
}

func collect(t *testing.T, s *Subscription) *collector {
	c := &collector{got: map[gossip.MessageID]int{}}
	go func() {
		for m := range s.C {
			c.mu.Lock()
			c.got[m.ID]++
			c.all = append(c.all, m)
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *collector) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

func (c *collector) counts() map[gossip.MessageID]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[gossip.MessageID]int{}
	for k, v := range c.got {
		out[k] = v
	}
	return out
}

// Ten nodes on real UDP sockets, 500 messages from three origins: every
// node delivers each exactly once.
func TestRealUDPClusterDeliversExactlyOnce(t *testing.T) {
	const nodes, messages = 10, 500
	cluster := startCluster(t, nodes, nil)
	var cols []*collector
	for _, nd := range cluster {
		s, err := nd.Subscribe(">")
		require.NoError(t, err)
		cols = append(cols, collect(t, s))
	}
	ids := map[gossip.MessageID]bool{}
	for i := 0; i < messages; i++ {
		id, err := cluster[i%3].Publish(context.Background(), "test.udp", []byte(fmt.Sprintf("message %d", i)))
		require.NoError(t, err)
		ids[id] = true
		if i%50 == 49 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	require.Len(t, ids, messages)
	for i, c := range cols {
		require.Eventually(t, func() bool { return c.distinct() == messages }, 60*time.Second, 20*time.Millisecond,
			"node %d delivered %d of %d", i, c.distinct(), messages)
	}
	// A few more rounds: nothing is delivered twice.
	time.Sleep(20 * fastGossip.Interval)
	for i, c := range cols {
		counts := c.counts()
		require.Len(t, counts, messages, "node %d", i)
		for id, k := range counts {
			require.True(t, ids[id], "node %d delivered a message nobody published", i)
			require.Equal(t, 1, k, "node %d delivered %v %d times", i, id, k)
		}
	}
	st := cluster[9].Stats()
	require.Equal(t, uint64(messages), st.Gossip.Delivered)
	require.NotZero(t, st.UDP.DatagramsIn)
}

// A burst larger than one answer reaches a sealed node over real UDP in
// answers that end with MORE, each pulled again at once: every message
// once, MOREs sent and acted on, and what they say visible in /metrics.
func TestBurstComesInAnswersPulledAgainOnMore(t *testing.T) {
	const messages = 2000
	cluster := startCluster(t, 2, func(i int, c *Config) {
		c.Gossip.MaxAnswerBytes = 16 << 10
		c.Keyring = ringFor(t, "burst passphrase")
	})
	s, err := cluster[1].Subscribe(">")
	require.NoError(t, err)
	col := collect(t, s)
	payload := bytes.Repeat([]byte("m"), 200)
	for i := 0; i < messages; i++ {
		_, err := cluster[0].Publish(context.Background(), "burst", payload)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return col.distinct() == messages }, 60*time.Second, 20*time.Millisecond,
		"delivered %d of %d", col.distinct(), messages)
	for _, k := range col.counts() {
		require.Equal(t, 1, k)
	}
	sent, got := cluster[0].Stats().Gossip, cluster[1].Stats().Gossip
	require.NotZero(t, sent.MoresOut, "answers were cut short and said so")
	require.NotZero(t, got.Repulls, "and were pulled again")
	require.Zero(t, got.Duplicates)

	srv := apiServer(t, cluster[1], APIConfig{})
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
	cluster := startCluster(t, 2, func(i int, c *Config) {
		if i == 0 {
			c.DataDir = dir
			c.Name = ""
		}
	})
	a, b := cluster[0], cluster[1]
	bAddr := b.Addr()
	sub, err := a.Subscribe(">")
	require.NoError(t, err)
	col := collect(t, sub)
	first, err := b.Publish(context.Background(), "test.restart", []byte("before"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return col.distinct() == 1 }, 30*time.Second, 10*time.Millisecond)
	oldID := a.ID()
	require.NoError(t, a.Close())

	// Reopen: same ID, and b still offers the first message (its cache
	// keeps it 30 rounds): a must not deliver it again.
	reg := &settablePeers{}
	reg.set([]netip.AddrPort{bAddr})
	a2, err := New(Config{Bind: "127.0.0.1:0", DataDir: dir, Registry: reg, Gossip: fastGossip})
	require.NoError(t, err)
	t.Cleanup(func() { a2.Close() })
	require.Equal(t, oldID, a2.ID())
	sub2, err := a2.Subscribe(">")
	require.NoError(t, err)
	col2 := collect(t, sub2)
	require.NoError(t, a2.Start())
	require.Eventually(t, func() bool { return a2.Stats().Gossip.Duplicates > 0 }, 30*time.Second, 10*time.Millisecond,
		"the reopened node is offered the old message again")
	second, err := b.Publish(context.Background(), "test.restart", []byte("after"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return col2.distinct() == 1 }, 30*time.Second, 10*time.Millisecond)
	counts := col2.counts()
	require.Equal(t, 1, counts[second])
	require.Zero(t, counts[first], "delivered again after restart")
}

func TestPublishErrors(t *testing.T) {
	nd := startCluster(t, 1, func(i int, c *Config) {
		c.Gossip.MaxPacketSize = 600
		c.Gossip.MaxMessageSize = 600
	})[0]
	ctx := context.Background()
	_, err := nd.Publish(ctx, "bad topic", nil)
	require.ErrorIs(t, err, gossip.ErrInvalidTopic)
	_, err = nd.Publish(ctx, "ok", make([]byte, 700))
	require.ErrorIs(t, err, gossip.ErrMessageTooLarge)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = nd.Publish(cctx, "ok", nil)
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, nd.Close())
	_, err = nd.Publish(ctx, "ok", nil)
	require.ErrorIs(t, err, ErrClosed)
	_, err = nd.Subscribe(">")
	require.ErrorIs(t, err, ErrClosed)
}

func TestSlowSubscriberIsCutOffAlone(t *testing.T) {
	nd := startCluster(t, 1, func(i int, c *Config) { c.SubscriberBuffer = 3 })[0]
	slow, err := nd.Subscribe(">")
	require.NoError(t, err)
	fast, err := nd.Subscribe("a.*")
	require.NoError(t, err)
	fastCol := collect(t, fast)
	for i := 0; i < 10; i++ {
		_, err := nd.Publish(context.Background(), "a.b", []byte{byte(i)})
		require.NoError(t, err)
		time.Sleep(time.Millisecond) // let the fast reader keep up
	}
	n := 0
	for range slow.C {
		n++
	}
	require.Equal(t, 3, n, "the slow subscriber got its buffer, then its channel closed")
	require.ErrorIs(t, slow.Err(), ErrSlowSubscriber)
	require.Eventually(t, func() bool { return fastCol.distinct() == 10 }, 10*time.Second, time.Millisecond)
	require.NoError(t, fast.Err())
	fast.Close()
	require.ErrorIs(t, fast.Err(), ErrClosed)
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
	id1, name1, err := loadIdentity(dir, "", testID)
	require.NoError(t, err)
	require.NotEmpty(t, name1)
	id2, name2, err := loadIdentity(dir, "", testID)
	require.NoError(t, err)
	require.Equal(t, id1, id2)
	require.Equal(t, name1, name2)
	_, name3, err := loadIdentity(dir, "renamed", testID)
	require.NoError(t, err)
	require.Equal(t, "renamed", name3)
	require.NoError(t, os.WriteFile(filepath.Join(dir, identityFile), []byte("{not json"), 0o600))
	_, _, err = loadIdentity(dir, "", testID)
	require.ErrorContains(t, err, "corrupt")
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
}

func testID() gossip.NodeID { return gossip.NodeID{1, 2, 3} }
