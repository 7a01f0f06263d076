package gossip_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/gossip/gossiptest"
	"github.com/hearsay-io/hearsay/merkle"
	"github.com/hearsay-io/hearsay/msglog"
	"github.com/hearsay-io/hearsay/wire"
)

// A node cut off while messages spread and left the caches gets them all
// from anti-entropy once it is back, exactly once, and every root agrees.
func TestAntiEntropyRepairsWhatGossipMissed(t *testing.T) {
	c := instant(t, 4, withLog(time.Second))
	isolated := true // nothing reaches node 3
	c.Intercept = func(p gossiptest.Packet) bool { return isolated && p.To == 3 }
	for i := 0; i < 40; i++ {
		c.Push(i%3, "ae.test", []byte(fmt.Sprintf("m%d", i)))
		c.Run(50 * time.Millisecond)
	}
	c.Run(3 * time.Second) // the caches forget them (3 rounds)
	require.Len(t, c.Delivered(0), 40)
	require.Empty(t, c.Delivered(3))
	for i := range 3 {
		require.Zero(t, c.Core(i).Stats().CacheMessages, "gossip can no longer deliver them")
	}
	isolated = false
	c.Run(5 * time.Second)
	require.Len(t, c.Delivered(3), 40, "anti-entropy delivered every message")
	requireOnceEach(t, c.Delivered(3))
	root, n := c.Core(0).MerkleRoot()
	require.Equal(t, 40, n)
	for i := range c.Len() {
		r, _ := c.Core(i).MerkleRoot()
		require.Equal(t, root, r, "node %d", i)
	}
	repaired := c.Core(3).Stats().AEMissing
	for i := range 3 {
		repaired += c.Core(i).Stats().AEPushed
	}
	require.NotZero(t, repaired)
}

// Both sides end with the union: messages published on both sides of a
// partition longer than the caches last.
func TestAntiEntropyPartitionBothSides(t *testing.T) {
	c := instant(t, 4, withLog(time.Second))
	c.Partition(func(i int) int { return i / 2 })
	for i := 0; i < 20; i++ {
		c.Push(i%4, "ae.split", []byte{byte(i)})
		c.Run(100 * time.Millisecond)
	}
	c.Run(10 * time.Second)
	require.Len(t, c.Delivered(0), 10)
	require.Len(t, c.Delivered(3), 10)
	c.Heal()
	c.Run(6 * time.Second)
	for i := range c.Len() {
		require.Len(t, c.Delivered(i), 20, "node %d has the union", i)
	}
	r0, _ := c.Core(0).MerkleRoot()
	for i := 1; i < c.Len(); i++ {
		r, _ := c.Core(i).MerkleRoot()
		require.Equal(t, r0, r)
	}
}

// A restarted core rebuilds its tree from the log it kept.
func TestAntiEntropyTreeRebuiltFromLog(t *testing.T) {
	log := msglog.NewMemory(0)
	c, err := gossip.New(gossip.Config{ID: gossiptest.ID(0), Peers: noPeers{}, Log: log})
	require.NoError(t, err)
	for i := 0; i < 10; i++ {
		_, err := c.Push(t0, "a", []byte{byte(i)})
		require.NoError(t, err)
	}
	root, n := c.MerkleRoot()
	require.Equal(t, 10, n)
	c2, err := gossip.New(gossip.Config{ID: gossiptest.ID(0), Peers: noPeers{}, Log: log})
	require.NoError(t, err)
	root2, n2 := c2.MerkleRoot()
	require.Equal(t, root, root2)
	require.Equal(t, 10, n2)
	// Past the retention window the log and tree are pruned together.
	c2.Tick(t0.Add(11 * time.Minute))
	_, n3 := c2.MerkleRoot()
	require.Zero(t, n3)
	require.Zero(t, log.Len())
}

func TestFetchAnswersFromTheLog(t *testing.T) {
	c, err := gossip.New(gossip.Config{ID: gossiptest.ID(0), Peers: noPeers{}, Log: msglog.NewMemory(0), MaxPacketSize: 600})
	require.NoError(t, err)
	var ids []gossip.MessageID
	for i := 0; i < 5; i++ {
		m, err := c.Push(t0, "a", make([]byte, 200))
		require.NoError(t, err)
		ids = append(ids, m.ID)
	}
	c.Ready()
	from := gossiptest.Addr(5)
	c.Handle(t0, from, gossip.AppendFetch(nil, append(ids, gossip.MessageID{9})))
	var got []gossip.Message
	for _, d := range c.Ready().Datagrams {
		require.LessOrEqual(t, len(d.Data), 600)
		ms, err := gossip.DecodeMessages(d.Data)
		require.NoError(t, err)
		got = append(got, ms...)
	}
	require.Len(t, got, 5, "every logged ID asked for, and nothing for the unknown one")
	// Without a log, fetches and anti-entropy packets are unknown types.
	plain, err := gossip.New(gossip.Config{ID: gossiptest.ID(1), Peers: noPeers{}})
	require.NoError(t, err)
	plain.Handle(t0, from, gossip.AppendFetch(nil, ids))
	plain.Handle(t0, from, []byte{'H', 'S', 1, 0x10, 1, 2, 3})
	require.Equal(t, uint64(2), plain.Stats().Dropped[gossip.DropUnknownType])
}

// feedOrigin hands core i the messages from..to-1 of origin, with payloads
// made by payload, a datagram of them at a time.
func feedOrigin(c *gossiptest.Cluster, i int, origin gossip.NodeID, topic string, from, to int, payload func(s int) []byte) {
	dg := wire.AppendHeader(nil, wire.Messages)
	for s := from; s < to; s++ {
		dg = gossip.AppendMessage(dg, origin, uint64(s+1), c.Now().UnixMilli(), topic, payload(s))
		if len(dg) > 1300 || s == to-1 {
			c.Handle(i, gossiptest.Addr(9), dg)
			dg = wire.AppendHeader(dg[:0], wire.Messages)
		}
	}
}

// Two replicas of 100,000 messages that differ by 100 on each side end,
// by anti-entropy alone, with equal roots and equal sets.
func TestAntiEntropyLargeReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("200,000 messages")
	}
	t.Parallel()
	logs := []*msglog.Memory{msglog.NewMemory(1 << 30), msglog.NewMemory(1 << 30)}
	c := instant(t, 2, func(i int, c *gossip.Config) {
		c.Log = logs[i]
		c.AEInterval = time.Second
		c.CacheMessages = 1 << 20
		c.CacheBytes = 1 << 30
		c.MaxAnswerBytes = 1 << 20
		c.CacheRounds = 5 // repairs wait for gossip's window (1s)
	})
	// Only anti-entropy: pulls are dropped.
	c.Intercept = func(p gossiptest.Packet) bool { return p.Type() == wire.Pull }
	origin := gossip.NodeID{0x77}
	payload := func(s int) []byte { return []byte{byte(s), byte(s >> 8), byte(s >> 16)} }
	const n = 100_000
	// Replica 0 accepts its messages as gossip would bring them; replica 1
	// is rebuilt from a log that holds the same first n, as a restarted
	// node's is, then accepts its own 100.
	feedOrigin(c, 0, origin, "replica", 0, n+100, payload) // the last 100 only on 0
	k := 0
	require.NoError(t, logs[0].ForEach(func(e msglog.Entry) bool {
		_, err := logs[1].Append(e.ID, e.Created, append([]byte(nil), e.Data...))
		require.NoError(t, err)
		k++
		return k < n
	}))
	c.Restart(1)
	feedOrigin(c, 1, origin, "replica", n+100, n+200, payload) // only on 1
	r0, n0 := c.Core(0).MerkleRoot()
	r1, n1 := c.Core(1).MerkleRoot()
	require.Equal(t, n+100, n0)
	require.Equal(t, n+100, n1)
	require.NotEqual(t, r0, r1)
	c.Run(5 * time.Second)
	r0, n0 = c.Core(0).MerkleRoot()
	r1, n1 = c.Core(1).MerkleRoot()
	require.Equal(t, n+200, n0)
	require.Equal(t, n+200, n1)
	require.Equal(t, r0, r1, "equal roots")
	for _, l := range logs {
		require.Equal(t, n+200, l.Len(), "equal sets")
	}
	s0, s1 := c.Core(0).Stats(), c.Core(1).Stats()
	t.Logf("anti-entropy bytes: %d out / %d in on node 0; sessions %d+%d; repaired %d+%d",
		s0.AEBytesOut, s0.AEBytesIn, s0.AESessions, s1.AESessions, s0.AEMissing, s1.AEMissing)
}

// A node that lacks thousands of messages fetches them a round's worth at
// a time: what it asks for per round, and so what the peer answers, stays
// about MaxAnswerBytes, within the peer's send limit per peer and round
// (node.Config.MaxBytesPerPeerRound, twice that), which would drop the
// excess of a fetch of everything at once. Every message arrives once.
func TestAntiEntropyFetchesARoundsWorthAtATime(t *testing.T) {
	t.Parallel()
	const answerBytes = 16 << 10
	c := instant(t, 2, func(i int, c *gossip.Config) {
		withLog(time.Second)(i, c)
		c.MaxAnswerBytes = answerBytes
		c.CacheMessages = 1 << 16
		c.CacheBytes = 1 << 26
	})
	// Only anti-entropy: pulls are dropped. Count what 0 sends 1 in answer
	// to fetches, per instant (delivery is instant).
	sentAt := map[time.Time]int{}
	c.Intercept = func(p gossiptest.Packet) bool {
		if p.Type() == wire.Messages && p.To == 1 {
			sentAt[p.At] += len(p.Data)
		}
		return p.Type() == wire.Pull
	}
	const n = 3000
	start := c.Now()
	feedOrigin(c, 0, gossip.NodeID{0x55}, "fetch", 0, n, func(s int) []byte { return bytes.Repeat([]byte{byte(s)}, 80) })
	c.Run(10 * time.Second)
	require.Len(t, c.Delivered(1), n, "every message fetched")
	requireOnceEach(t, c.Delivered(1))
	rounds := 0
	for at, b := range sentAt {
		require.LessOrEqual(t, b, answerBytes+2*1400, "bytes answered at %s", at.Sub(start))
		rounds++
	}
	require.Greater(t, rounds, 10, "the fetches were spread over rounds")
	require.Zero(t, c.Core(1).Stats().AERepairsQueued)
}

// A core answers anti-entropy queries of both versions, each in its own,
// so that a node of an older release, whose sessions speak v1, still
// reconciles with it.
func TestAntiEntropyAnswersBothVersions(t *testing.T) {
	c, err := gossip.New(gossip.Config{ID: gossiptest.ID(0), Peers: noPeers{}, Log: msglog.NewMemory(0)})
	require.NoError(t, err)
	for i := 0; i < 50; i++ {
		_, err := c.Push(t0, "a", []byte{byte(i)})
		require.NoError(t, err)
	}
	c.Ready()
	from := gossiptest.Addr(5)
	shape := merkle.DefaultTreeConfig()
	other := bytes.Repeat([]byte{0xee}, 8) // not the core's root
	c.Handle(t0, from, merkle.AppendQuery(nil, &merkle.Query{Session: 7, Shape: shape, HashSize: 8, MaxAnswerSize: 1400,
		Items: []merkle.QueryItem{{Hash: other}}}))
	c.Handle(t0, from, merkle.AppendQueryV2(nil, &merkle.QueryV2{Session: 8, Shape: shape, HashSize: 8, CheckSize: 2, MaxAnswerSize: 1400,
		Items: []merkle.ProbeItem{{Kind: merkle.ProbeRoot, Hash: other}}}))
	out := c.Ready().Datagrams
	require.Len(t, out, 2)
	typ, body, err := wire.Parse(out[0].Data)
	require.NoError(t, err)
	require.Equal(t, wire.AEAnswer, typ)
	v1, err := merkle.DecodeAnswer(body)
	require.NoError(t, err)
	require.Equal(t, uint32(7), v1.Session)
	require.Equal(t, merkle.EntryInner, v1.Entries[0].Kind, "50 IDs: the root is an inner node")
	typ, body, err = wire.Parse(out[1].Data)
	require.NoError(t, err)
	require.Equal(t, wire.AEAnswerV2, typ)
	v2, err := merkle.DecodeAnswerV2(body)
	require.NoError(t, err)
	require.Equal(t, uint32(8), v2.Session)
	require.Equal(t, merkle.ReportOverview, v2.Entries[0].Kind)
	require.Equal(t, uint64(50), v2.Entries[0].Count)

	// An answer of either version with no session running is stale, not
	// a drop.
	c.Handle(t0, from, out[0].Data)
	c.Handle(t0, from, out[1].Data)
	require.Zero(t, c.Stats().Dropped[gossip.DropUnknownType])
	require.Zero(t, c.Stats().Dropped[gossip.DropMalformed])
}
