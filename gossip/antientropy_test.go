package gossip

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/msglog"
	"github.com/hearsay-io/hearsay/wire"
)

func withLog(aeInterval time.Duration) func(i int, c *Config) {
	return func(i int, c *Config) {
		c.Log = msglog.NewMemory(0)
		c.AEInterval = aeInterval
		c.CacheRounds = 3 // gossip gives up quickly: what it misses is anti-entropy's
	}
}

// A node cut off while messages spread and left the caches gets them all
// from anti-entropy once it is back, exactly once, and every root agrees.
func TestAntiEntropyRepairsWhatGossipMissed(t *testing.T) {
	h := newHarness(t, 4, withLog(time.Second))
	cut := addr(3)
	h.drop = func(d Datagram) bool { return d.To == cut }
	isolated := true
	orig := h.drop
	h.drop = func(d Datagram) bool { return isolated && orig(d) }
	for i := 0; i < 40; i++ {
		h.push(i%3, "ae.test", []byte(fmt.Sprintf("m%d", i)))
		h.run(50 * time.Millisecond)
	}
	h.run(3 * time.Second) // the caches forget them (3 rounds)
	require.Len(t, h.delivered[0], 40)
	require.Empty(t, h.delivered[3])
	for _, c := range h.cores[:3] {
		require.Zero(t, c.Stats().CacheMessages, "gossip can no longer deliver them")
	}
	isolated = false
	h.run(5 * time.Second)
	require.Len(t, h.delivered[3], 40, "anti-entropy delivered every message")
	seen := map[MessageID]bool{}
	for _, m := range h.delivered[3] {
		require.False(t, seen[m.ID], "delivered twice")
		seen[m.ID] = true
	}
	root, n := h.cores[0].MerkleRoot()
	require.Equal(t, 40, n)
	for i, c := range h.cores {
		r, _ := c.MerkleRoot()
		require.Equal(t, root, r, "node %d", i)
	}
	require.NotZero(t, h.cores[3].Stats().AEMissing+h.cores[0].Stats().AEPushed+h.cores[1].Stats().AEPushed+h.cores[2].Stats().AEPushed)
}

// Both sides end with the union: messages published on both sides of a
// partition longer than the caches last.
func TestAntiEntropyPartitionBothSides(t *testing.T) {
	h := newHarness(t, 4, withLog(time.Second))
	side := func(i int) int { return i / 2 }
	index := map[string]int{}
	for i := range h.cores {
		index[addr(i).String()] = i
	}
	partitioned := true
	h.drop = func(d Datagram) bool {
		return partitioned && side(index[d.To.String()]) != side(h.sender)
	}
	for i := 0; i < 20; i++ {
		h.push(i%4, "ae.split", []byte{byte(i)})
		h.run(100 * time.Millisecond)
	}
	h.run(10 * time.Second)
	require.Len(t, h.delivered[0], 10)
	require.Len(t, h.delivered[3], 10)
	partitioned = false
	h.run(6 * time.Second)
	for i := range h.cores {
		require.Len(t, h.delivered[i], 20, "node %d has the union", i)
	}
	r0, _ := h.cores[0].MerkleRoot()
	for _, c := range h.cores[1:] {
		r, _ := c.MerkleRoot()
		require.Equal(t, r0, r)
	}
}

// A restarted core rebuilds its tree from the log it kept.
func TestAntiEntropyTreeRebuiltFromLog(t *testing.T) {
	log := msglog.NewMemory(0)
	c, err := New(Config{ID: testOrigin(1), Peers: fixedPeers{}, Log: log})
	require.NoError(t, err)
	for i := 0; i < 10; i++ {
		_, err := c.Push(t0, "a", []byte{byte(i)})
		require.NoError(t, err)
	}
	root, n := c.MerkleRoot()
	require.Equal(t, 10, n)
	c2, err := New(Config{ID: testOrigin(1), Peers: fixedPeers{}, Log: log})
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
	c, err := New(Config{ID: testOrigin(1), Peers: fixedPeers{}, Log: msglog.NewMemory(0), MaxPacketSize: 600})
	require.NoError(t, err)
	var ids []MessageID
	for i := 0; i < 5; i++ {
		m, err := c.Push(t0, "a", make([]byte, 200))
		require.NoError(t, err)
		ids = append(ids, m.ID)
	}
	c.Ready()
	c.Handle(t0, addr(5), AppendFetch(nil, append(ids, MessageID{9})))
	var got []Message
	for _, d := range c.Ready().Datagrams {
		require.LessOrEqual(t, len(d.Data), 600)
		ms, err := DecodeMessages(d.Data)
		require.NoError(t, err)
		got = append(got, ms...)
	}
	require.Len(t, got, 5, "every logged ID asked for, and nothing for the unknown one")
	// Without a log, fetches and anti-entropy packets are unknown types.
	plain, err := New(Config{ID: testOrigin(2), Peers: fixedPeers{}})
	require.NoError(t, err)
	plain.Handle(t0, addr(5), AppendFetch(nil, ids))
	plain.Handle(t0, addr(5), []byte{'H', 'S', 1, 0x10, 1, 2, 3})
	require.Equal(t, uint64(2), plain.Stats().Dropped[DropUnknownType])
}

// Two replicas of 100,000 messages that differ by 100 on each side end,
// by anti-entropy alone, with equal roots and equal sets.
func TestAntiEntropyLargeReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("200,000 messages")
	}
	h := newHarness(t, 2, func(i int, c *Config) {
		c.Log = msglog.NewMemory(1 << 30)
		c.AEInterval = time.Second
		c.CacheMessages = 1 << 20
		c.CacheBytes = 1 << 30
		c.MaxAnswerBytes = 1 << 20
		c.CacheRounds = 5 // repairs wait for gossip's window (1s)
	})
	// Only anti-entropy: pulls are dropped.
	h.drop = func(d Datagram) bool { typ, _, _ := wire.Parse(d.Data); return typ == wire.Pull }
	var origin NodeID
	origin[0] = 0x77
	feed := func(c *Core, from, to int) {
		dg := wire.AppendHeader(nil, wire.Messages)
		for s := from; s < to; s++ {
			dg = appendMessage(dg, origin, uint64(s+1), h.now.UnixMilli(), "replica", []byte{byte(s), byte(s >> 8), byte(s >> 16)})
			if len(dg) > 1300 || s == to-1 {
				c.Handle(h.now, addr(9), dg)
				c.Ready()
				dg = wire.AppendHeader(dg[:0], wire.Messages)
			}
		}
	}
	const n = 100_000
	feed(h.cores[0], 0, n)
	feed(h.cores[1], 0, n)
	feed(h.cores[0], n, n+100)     // only on 0
	feed(h.cores[1], n+100, n+200) // only on 1
	r0, n0 := h.cores[0].MerkleRoot()
	r1, n1 := h.cores[1].MerkleRoot()
	require.Equal(t, n+100, n0)
	require.Equal(t, n+100, n1)
	require.NotEqual(t, r0, r1)
	h.run(5 * time.Second)
	r0, n0 = h.cores[0].MerkleRoot()
	r1, n1 = h.cores[1].MerkleRoot()
	require.Equal(t, n+200, n0)
	require.Equal(t, n+200, n1)
	require.Equal(t, r0, r1, "equal roots")
	for _, c := range h.cores {
		require.Equal(t, n+200, c.ae.log.Len(), "equal sets")
	}
	s0, s1 := h.cores[0].Stats(), h.cores[1].Stats()
	t.Logf("anti-entropy bytes: %d out / %d in on node 0; sessions %d+%d; repaired %d+%d",
		s0.AEBytesOut, s0.AEBytesIn, s0.AESessions, s1.AESessions, s0.AEMissing, s1.AEMissing)
}

// A node that lacks thousands of messages fetches them a round's worth at
// a time: what it asks for per round, and so what the peer answers, stays
// about MaxAnswerBytes, within the peer's send limit per peer and round
// (node.Config.MaxBytesPerPeerRound, twice that), which would drop the
// excess of a fetch of everything at once. Every message arrives once.
func TestAntiEntropyFetchesARoundsWorthAtATime(t *testing.T) {
	const answerBytes = 16 << 10
	h := newHarness(t, 2, func(i int, c *Config) {
		withLog(time.Second)(i, c)
		c.MaxAnswerBytes = answerBytes
		c.CacheMessages = 1 << 16
		c.CacheBytes = 1 << 26
	})
	// Only anti-entropy: pulls are dropped. Count what 0 sends 1 in answer
	// to fetches, per instant (the harness answers at once).
	sentAt := map[time.Time]int{}
	h.drop = func(d Datagram) bool {
		typ, _, _ := wire.Parse(d.Data)
		if typ == wire.Messages && d.To == addr(1) {
			sentAt[h.now] += len(d.Data)
		}
		return typ == wire.Pull
	}
	var origin NodeID
	origin[0] = 0x55
	const n = 3000
	dg := wire.AppendHeader(nil, wire.Messages)
	for s := 0; s < n; s++ {
		dg = appendMessage(dg, origin, uint64(s+1), h.now.UnixMilli(), "fetch", bytes.Repeat([]byte{byte(s)}, 80))
		if len(dg) > 1300 || s == n-1 {
			h.cores[0].Handle(h.now, addr(9), dg)
			h.cores[0].Ready()
			dg = wire.AppendHeader(dg[:0], wire.Messages)
		}
	}
	h.run(10 * time.Second)
	require.Len(t, h.delivered[1], n, "every message fetched")
	seen := map[MessageID]bool{}
	for _, m := range h.delivered[1] {
		require.False(t, seen[m.ID], "delivered twice")
		seen[m.ID] = true
	}
	rounds := 0
	for at, b := range sentAt {
		require.LessOrEqual(t, b, answerBytes+2*1400, "bytes answered at %s", at.Sub(t0))
		rounds++
	}
	require.Greater(t, rounds, 10, "the fetches were spread over rounds")
	require.Zero(t, h.cores[1].Stats().AERepairsQueued)
}
