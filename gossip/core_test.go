package gossip

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/wire"
)

// fixedPeers samples from a fixed list.
type fixedPeers []netip.AddrPort

func (p fixedPeers) SamplePeers(rng *rand.Rand, n int, dst []netip.AddrPort) []netip.AddrPort {
	perm := rng.Perm(len(p))
	for i := 0; i < n && i < len(perm); i++ {
		dst = append(dst, p[perm[i]])
	}
	return dst
}

var t0 = time.Unix(1_700_000_000, 0)

func addr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(i + 1)}), 7600)
}

// harness runs cores with instant delivery, in a deterministic order.
type harness struct {
	t         *testing.T
	now       time.Time
	cores     []*Core
	byAddr    map[netip.AddrPort]*Core
	delivered [][]Message
	sent      []Datagram // every datagram, copied
	drop      func(Datagram) bool
	sender    int // index of the node whose datagram drop is looking at
}

func newHarness(t *testing.T, n int, tweak func(i int, c *Config)) *harness {
	h := &harness{t: t, now: t0, byAddr: map[netip.AddrPort]*Core{}, delivered: make([][]Message, n)}
	for i := 0; i < n; i++ {
		c := newTestCore(t, i, n, tweak)
		h.cores = append(h.cores, c)
		h.byAddr[addr(i)] = c
	}
	for _, c := range h.cores {
		c.Tick(h.now)
	}
	return h
}

// newTestCore makes core i of n, whose peers are all the others, as tweak
// has its config.
func newTestCore(t *testing.T, i, n int, tweak func(i int, c *Config)) *Core {
	t.Helper()
	var peers fixedPeers
	for j := 0; j < n; j++ {
		if j != i {
			peers = append(peers, addr(j))
		}
	}
	cfg := Config{ID: testOrigin(byte(16 * (i + 1))), Peers: peers}
	if tweak != nil {
		tweak(i, &cfg)
	}
	c, err := New(cfg)
	require.NoError(t, err)
	return c
}

func (h *harness) index(c *Core) int {
	for i, x := range h.cores {
		if x == c {
			return i
		}
	}
	return -1
}

// flush acts on c's Ready, delivering datagrams at once, recursively.
func (h *harness) flush(c *Core) {
	type inflight struct {
		from netip.AddrPort
		d    Datagram
	}
	queue := []inflight{}
	take := func(c *Core) {
		rd := c.Ready()
		i := h.index(c)
		h.delivered[i] = append(h.delivered[i], rd.Messages...)
		for _, d := range rd.Datagrams {
			d.Data = append([]byte(nil), d.Data...)
			h.sent = append(h.sent, d)
			h.sender = i
			if h.drop != nil && h.drop(d) {
				continue
			}
			queue = append(queue, inflight{addr(i), d})
		}
	}
	take(c)
	for len(queue) > 0 {
		f := queue[0]
		queue = queue[1:]
		dst := h.byAddr[f.d.To]
		require.LessOrEqual(h.t, len(f.d.Data), dst.cfg.MaxPacketSize)
		dst.Handle(h.now, f.from, f.d.Data)
		take(dst)
	}
}

// run ticks the cores until d has passed.
func (h *harness) run(d time.Duration) {
	end := h.now.Add(d)
	for {
		var next *Core
		for _, c := range h.cores {
			if next == nil || c.NextTick().Before(next.NextTick()) {
				next = c
			}
		}
		if next.NextTick().After(end) {
			h.now = end
			return
		}
		h.now = next.NextTick()
		next.Tick(h.now)
		h.flush(next)
	}
}

func (h *harness) push(i int, topic string, payload []byte) Message {
	m, err := h.cores[i].Push(h.now, topic, payload)
	require.NoError(h.t, err)
	h.flush(h.cores[i])
	return m
}

func TestPushIsDeliveredEverywhereOnce(t *testing.T) {
	h := newHarness(t, 5, nil)
	m := h.push(0, "orders.created", []byte("hello"))
	h.run(3 * time.Second)
	for i := range h.cores {
		require.Len(t, h.delivered[i], 1, "node %d", i)
		got := h.delivered[i][0]
		require.Equal(t, m.ID, got.ID)
		require.Equal(t, "orders.created", got.Topic)
		require.Equal(t, []byte("hello"), got.Payload)
		require.Equal(t, m.Created, got.Created)
		require.Equal(t, uint64(1), h.cores[i].Stats().Delivered)
	}
	require.Equal(t, uint64(1), h.cores[0].Stats().Published)
}

// A node that holds every message gets no message bodies in answer to its
// pulls: the digest works.
func TestDigestSuppressesBodies(t *testing.T) {
	h := newHarness(t, 4, func(i int, c *Config) { c.CacheRounds = 1000 })
	for i := 0; i < 60; i++ {
		h.push(i%3, fmt.Sprintf("t.%d", i%5), bytes.Repeat([]byte{byte(i)}, 100))
	}
	h.run(5 * time.Second)
	for i := range h.cores {
		require.Len(t, h.delivered[i], 60)
	}
	before := h.cores[3].Stats()
	h.sent = nil
	h.run(10 * time.Second)
	after := h.cores[3].Stats()
	require.Greater(t, after.PullsSent, before.PullsSent+100)
	require.Equal(t, before.MessagesIn, after.MessagesIn, "no message bodies reached node 3")
	var bodyBytes int
	for _, d := range h.sent {
		typ, _, err := wire.Parse(d.Data)
		require.NoError(t, err)
		if typ == wire.Messages {
			bodyBytes += len(d.Data)
		}
	}
	require.Zero(t, bodyBytes, "no messages datagram was sent by anyone")
	require.Equal(t, 3, after.Origins)
}

func TestDigestPartitionsManyOrigins(t *testing.T) {
	// 300 origins do not fit in one 512-byte pull: the digest is split.
	const origins = 300
	var peers fixedPeers = []netip.AddrPort{addr(1)}
	a, err := New(Config{ID: testOrigin(1), Peers: peers, MaxPacketSize: 512, CacheRounds: 100})
	require.NoError(t, err)
	b, err := New(Config{ID: testOrigin(2), Peers: fixedPeers{addr(0)}, MaxPacketSize: 512, CacheRounds: 100})
	require.NoError(t, err)
	now := t0
	// Feed both the same 300 messages, one per origin.
	for i := 0; i < origins; i++ {
		var o NodeID
		o[0], o[1], o[15] = byte(i), byte(i>>8), byte(i*7)
		dg := appendMessage(wire.AppendHeader(nil, wire.Messages), o, 1, now.UnixMilli(), "x", []byte("p"))
		a.Handle(now, addr(9), dg)
		b.Handle(now, addr(9), dg)
	}
	a.Ready()
	b.Ready()
	require.Equal(t, uint64(origins), a.Stats().Delivered)
	a.Tick(now)
	now = a.NextTick()
	a.Tick(now)
	rd := a.Ready()
	require.Greater(t, len(rd.Datagrams), 1, "the digest was split")
	total := 0
	for _, d := range rd.Datagrams {
		require.LessOrEqual(t, len(d.Data), 512)
		req, err := DecodePullRequest(d.Data)
		require.NoError(t, err)
		total += len(req.Origins)
		b.Handle(now, addr(0), d.Data)
	}
	require.Equal(t, origins, total, "every origin is listed in some partition")
	require.Empty(t, b.Ready().Datagrams, "b sends nothing: a holds all it has")
}

// pushThenPullOnce publishes 100 messages of 200 bytes on node 0, then has
// node 1 pull once; h.sent holds what that pull set off. It returns node 1.
func pushThenPullOnce(h *harness) *Core {
	for i := 0; i < 100; i++ {
		h.push(0, "a", bytes.Repeat([]byte("x"), 200))
	}
	c1 := h.cores[1]
	h.now = c1.NextTick()
	c1.Tick(h.now)
	h.sent = nil
	h.flush(c1)
	return c1
}

func TestAnswerRespectsBudgetAndPacketSize(t *testing.T) {
	h := newHarness(t, 2, func(i int, c *Config) {
		c.MaxAnswerBytes = 4000
		c.MaxAnswerBytesPerRound = 4000 // one answer per round: no MORE
		c.MaxPacketSize = 1000
	})
	pushThenPullOnce(h)
	answered := 0
	for _, d := range h.sent {
		require.LessOrEqual(t, len(d.Data), 1000)
		if typ, _, _ := wire.Parse(d.Data); typ == wire.Messages {
			answered += len(d.Data) - wire.HeaderSize
		}
	}
	require.LessOrEqual(t, answered, 4000)
	require.Greater(t, answered, 3000)
	require.Less(t, len(h.delivered[1]), 100)
	h.run(5 * time.Second)
	require.Len(t, h.delivered[1], 100, "the rest arrives on later pulls")
}

// An answer cut short by MaxAnswerBytes ends with MORE, and the puller
// pulls again at once, until the responder's budget for the round
// (MaxAnswerBytesPerRound) is spent: each answer within MaxAnswerBytes, the
// round's within MaxAnswerBytesPerRound, and no message sent twice.
func TestMoreBringsAPullAgainWithinTheRoundBudget(t *testing.T) {
	h := newHarness(t, 2, func(i int, c *Config) {
		c.MaxAnswerBytes = 4000
		c.MaxAnswerBytesPerRound = 12000
		c.MaxPacketSize = 1000
	})
	c1 := pushThenPullOnce(h)
	var answers []int // bytes of each answer, split at each pull
	pulls, mores := 0, 0
	for _, d := range h.sent {
		switch typ, _, _ := wire.Parse(d.Data); typ {
		case wire.Pull:
			pulls++
			answers = append(answers, 0)
		case wire.Messages:
			answers[len(answers)-1] += len(d.Data) - wire.HeaderSize
		case wire.More:
			mores++
		}
	}
	require.Equal(t, 3, pulls, "the first pull and two pulls again")
	require.Equal(t, 2, mores, "no MORE once the round's budget is spent")
	total := 0
	for _, b := range answers {
		require.LessOrEqual(t, b, 4000)
		require.Greater(t, b, 3000)
		total += b
	}
	require.LessOrEqual(t, total, 12000)
	require.Zero(t, c1.Stats().Duplicates)
	require.Equal(t, uint64(2), c1.Stats().Repulls)
	h.run(5 * time.Second)
	require.Len(t, h.delivered[1], 100)
	require.Zero(t, c1.Stats().Duplicates)
}

// A pull whose digest comes in several partitions gets one MORE, after
// its last partition, however many of the partitions' answers were cut.
func TestOneMorePerPartitionedPull(t *testing.T) {
	h := newHarness(t, 2, func(i int, c *Config) {
		c.MaxPacketSize = 512
		c.MaxAnswerBytes = 2048
		c.MaxAnswerBytesPerRound = 16 << 10
	})
	feed := func(c *Core, maxSeq uint64) {
		for o := 0; o < 100; o++ {
			origin := testOrigin(byte(100 + o))
			for s := uint64(1); s <= maxSeq; s++ {
				dg := appendMessage(wire.AppendHeader(nil, wire.Messages), origin, s, h.now.UnixMilli(), "p", bytes.Repeat([]byte{byte(s)}, 100))
				c.Handle(h.now, addr(9), dg)
				c.Ready()
			}
		}
	}
	feed(h.cores[1], 1) // a digest of 100 origins: several partitions
	feed(h.cores[0], 6) // and every partition's answer is cut short
	c1 := h.cores[1]
	h.now = c1.NextTick()
	c1.Tick(h.now)
	h.sent = nil
	h.flush(c1)
	partitions, pulls, mores := 0, 0, 0
	for _, d := range h.sent {
		switch typ, _, _ := wire.Parse(d.Data); typ {
		case wire.Pull:
			req, err := DecodePullRequest(d.Data)
			require.NoError(t, err)
			partitions = 1 << req.PartitionBits
			if int(req.Partition) == partitions-1 {
				pulls++
			}
		case wire.More:
			mores++
		}
	}
	require.Greater(t, partitions, 1, "the digest was split")
	require.Greater(t, mores, 0)
	require.Equal(t, pulls-1, mores, "one MORE per whole pull but the last, which found the round's budget spent or nothing cut")
	require.Zero(t, c1.Stats().Duplicates)
}

// A MORE from a peer this node did not pull, or beyond the pulls again
// allowed per round, is ignored; a MORE with a body is malformed.
func TestMoreFromAPeerNotPulledIsIgnored(t *testing.T) {
	c := newTestCore(t, 0, 3, nil)
	more := wire.AppendHeader(nil, wire.More)
	c.Handle(t0, addr(7), more)
	require.Empty(t, c.Ready().Datagrams)
	require.Equal(t, uint64(1), c.Stats().MoresIgnored)
	c.Handle(t0, addr(1), append(more, 0))
	require.Equal(t, uint64(1), c.Stats().Dropped[DropMalformed])

	c.Tick(t0)
	c.Tick(c.NextTick()) // the first round: its peers are pulled
	c.Ready()
	peer := c.roundPeers[0]
	for i := 0; i < maxRepullsPerRound+3; i++ {
		c.Handle(t0, peer, more)
	}
	pulls := 0
	for _, d := range c.Ready().Datagrams {
		if typ, _, _ := wire.Parse(d.Data); typ == wire.Pull && d.To == peer {
			pulls++
		}
	}
	require.Equal(t, maxRepullsPerRound, pulls)
	require.Equal(t, uint64(4), c.Stats().MoresIgnored)
}

func TestBackpressure(t *testing.T) {
	h := newHarness(t, 2, func(i int, c *Config) { c.CacheMessages = 3; c.CacheRounds = 5 })
	for i := 0; i < 3; i++ {
		h.push(0, "a", []byte("x"))
	}
	_, err := h.cores[0].Push(h.now, "a", []byte("x"))
	require.ErrorIs(t, err, ErrBackpressure)
	require.Equal(t, uint64(1), h.cores[0].Stats().Backpressure)
	h.run(2 * time.Second) // 10 rounds: the first three leave the cache
	h.push(0, "a", []byte("y"))
	h.run(2 * time.Second)
	require.Len(t, h.delivered[1], 4, "every accepted message arrived")

	// The byte bound refuses too.
	c, err := New(Config{ID: testOrigin(1), Peers: fixedPeers{}, CacheBytes: 1400})
	require.NoError(t, err)
	for {
		if _, err = c.Push(t0, "a", bytes.Repeat([]byte("z"), 300)); err != nil {
			break
		}
	}
	require.ErrorIs(t, err, ErrBackpressure)
	require.LessOrEqual(t, c.Stats().CacheBytes, 1400)
}

// A receiver whose cache is full drops what it cannot hold, counts it, and
// pulls it again later: nothing is lost.
func TestReceiverCacheFullLosesNothing(t *testing.T) {
	h := newHarness(t, 2, func(i int, c *Config) {
		c.CacheRounds = 3
		if i == 1 {
			c.CacheMessages = 5
		} else {
			c.CacheRounds = 50
		}
	})
	for i := 0; i < 12; i++ {
		h.push(0, "a", []byte{byte(i)})
	}
	h.run(6 * time.Second)
	require.Len(t, h.delivered[1], 12)
	require.NotZero(t, h.cores[1].Stats().Dropped[DropCacheFull])
}

func TestMessageTooLarge(t *testing.T) {
	c, err := New(Config{ID: testOrigin(1), Peers: fixedPeers{}, MaxPacketSize: 512, MaxMessageSize: 4000})
	require.NoError(t, err)
	_, err = c.Push(t0, "a", make([]byte, 4001))
	require.ErrorIs(t, err, ErrMessageTooLarge)
	// The largest payload that fits in one datagram travels as one message,
	// byte for byte as before chunking existed.
	seq := uint64(t0.UnixMicro())
	fit := 512 - wire.HeaderSize - EncodedMessageSize(seq, t0.UnixMilli(), 1, 0) - 1
	for EncodedMessageSize(seq, t0.UnixMilli(), 1, fit+1)+wire.HeaderSize <= 512 {
		fit++
	}
	payload := bytes.Repeat([]byte{7}, fit)
	m, err := c.Push(t0, "a", payload)
	require.NoError(t, err)
	require.Equal(t, ComputeMessageID(testOrigin(1), seq, t0.UnixMilli(), "a", payload), m.ID)
	require.Equal(t, appendMessage(nil, testOrigin(1), seq, t0.UnixMilli(), "a", payload), c.cache.origins[0].entries[0].enc)
	require.Zero(t, c.Stats().Chunks)
	// One byte more is cut in two chunks.
	_, err = c.Push(t0, "a", make([]byte, fit+1))
	require.NoError(t, err)
	require.Equal(t, uint64(2), c.Stats().Chunks)
	require.Equal(t, 3, c.Stats().CacheMessages)
	_, err = c.Push(t0, "bad topic", nil)
	require.ErrorIs(t, err, ErrInvalidTopic)
}

func TestAgeLimits(t *testing.T) {
	c, err := New(Config{ID: testOrigin(1), Peers: fixedPeers{}})
	require.NoError(t, err)
	old := appendMessage(wire.AppendHeader(nil, wire.Messages), testOrigin(2), 1, t0.Add(-11*time.Minute).UnixMilli(), "a", nil)
	future := appendMessage(wire.AppendHeader(nil, wire.Messages), testOrigin(2), 2, t0.Add(time.Minute).UnixMilli(), "a", nil)
	fresh := appendMessage(wire.AppendHeader(nil, wire.Messages), testOrigin(2), 3, t0.Add(-9*time.Minute).UnixMilli(), "a", nil)
	c.Handle(t0, addr(1), old)
	c.Handle(t0, addr(1), future)
	c.Handle(t0, addr(1), fresh)
	s := c.Stats()
	require.Equal(t, uint64(1), s.Dropped[DropTooOld])
	require.Equal(t, uint64(1), s.Dropped[DropFromFuture])
	require.Equal(t, uint64(1), s.Delivered)
	require.Len(t, c.Ready().Messages, 1)
	// The future message is accepted once the clocks agree.
	c.Handle(t0.Add(time.Minute), addr(1), future)
	require.Equal(t, uint64(2), c.Stats().Delivered)
}

func TestMalformedDatagramsAreCounted(t *testing.T) {
	h := newHarness(t, 2, nil)
	c := h.cores[1]
	good := appendMessage(wire.AppendHeader(nil, wire.Messages), testOrigin(3), 1, t0.UnixMilli(), "a", []byte("ok"))
	bad := [][]byte{
		nil, {1}, []byte("GET / HTTP/1.1\r\n"), {'H', 'S', 2, 1}, {'H', 'S', 1, 0x7f, 1, 2, 3},
		{'H', 'S', 1, 1, 0xff}, good[:len(good)-1],
		append(append([]byte(nil), good...), 0xff), // a valid message followed by garbage: all refused
	}
	for _, b := range bad {
		c.Handle(h.now, addr(0), b)
	}
	s := c.Stats()
	require.Equal(t, uint64(len(bad)-2), s.Dropped[DropMalformed])
	require.Equal(t, uint64(1), s.Dropped[DropVersion])
	require.Equal(t, uint64(1), s.Dropped[DropUnknownType])
	require.Zero(t, s.Delivered, "nothing of a malformed datagram is accepted")
	// And the node still works.
	h.push(0, "a", []byte("x"))
	h.run(2 * time.Second)
	require.Len(t, h.delivered[1], 1)
}

func TestDeterministic(t *testing.T) {
	trace := func() []byte {
		h := newHarness(t, 6, nil)
		for i := 0; i < 20; i++ {
			h.push(i%6, "a", []byte{byte(i)})
			h.run(100 * time.Millisecond)
		}
		h.run(3 * time.Second)
		var all []byte
		for _, d := range h.sent {
			all = append(all, d.To.String()...)
			all = append(all, d.Data...)
		}
		return all
	}
	require.Equal(t, trace(), trace())
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no id":         {Peers: fixedPeers{}},
		"no peers":      {ID: testOrigin(1)},
		"packet small":  {ID: testOrigin(1), Peers: fixedPeers{}, MaxPacketSize: 100},
		"packet large":  {ID: testOrigin(1), Peers: fixedPeers{}, MaxPacketSize: 70000},
		"fanout":        {ID: testOrigin(1), Peers: fixedPeers{}, Fanout: -1},
		"answer budget": {ID: testOrigin(1), Peers: fixedPeers{}, MaxAnswerBytes: 10},
		"message size":  {ID: testOrigin(1), Peers: fixedPeers{}, MaxMessageSize: MaxChunkedSize + 1},
		"partial bytes": {ID: testOrigin(1), Peers: fixedPeers{}, MaxMessageSize: 1 << 20, MaxPartialBytes: 2 << 20},
		"reassembly":    {ID: testOrigin(1), Peers: fixedPeers{}, ReassemblyTimeout: 11 * time.Minute},
	} {
		_, err := New(cfg)
		require.Error(t, err, name)
	}
	d := DefaultConfig(testOrigin(1), fixedPeers{})
	require.Equal(t, 3, d.Fanout)
	require.Equal(t, 200*time.Millisecond, d.Interval)
	require.Equal(t, 1400, d.MaxPacketSize)
	require.Equal(t, 10*time.Minute, d.MaxAge)
	require.Equal(t, 1<<20, d.MaxMessageSize)
	require.Equal(t, 32<<20, d.MaxPartialBytes)
	require.Equal(t, 2*time.Minute, d.ReassemblyTimeout)
	short := Config{ID: testOrigin(1), Peers: fixedPeers{}, MaxAge: time.Minute, MaxMessageSize: 64 << 20}
	short.setDefaults()
	require.Equal(t, time.Minute, short.ReassemblyTimeout, "never past MaxAge")
	require.Equal(t, 128<<20+4096, short.MaxPartialBytes, "room for two of the largest messages")
}

func TestHoldingsRanges(t *testing.T) {
	h := holdings{maxRanges: 3}
	o := testOrigin(1)
	for _, s := range []uint64{5, 7, 6, 1, 2, 10} {
		h.add(o, s, 1)
	}
	require.Equal(t, []SeqRange{{1, 3}, {5, 8}, {10, 11}}, h.find(o).ranges)
	require.True(t, h.contains(o, 6))
	require.False(t, h.contains(o, 4))
	h.add(o, 20, 2) // a fourth range: the oldest gap (3..4) is given up
	require.Equal(t, []SeqRange{{1, 8}, {10, 11}, {20, 21}}, h.find(o).ranges)
	h.add(o, 3, 3)
	require.Equal(t, []SeqRange{{1, 8}, {10, 11}, {20, 21}}, h.find(o).ranges)
	h.add(testOrigin(2), 1, 9)
	h.expire(5)
	require.Nil(t, h.find(o))
	require.NotNil(t, h.find(testOrigin(2)))
	require.True(t, h.contains(testOrigin(2), 1))
}

func FuzzCoreHandle(f *testing.F) {
	f.Add(appendMessage(wire.AppendHeader(nil, wire.Messages), testOrigin(1), 1, t0.UnixMilli(), "a", []byte("x")))
	f.Add(AppendPullRequest(nil, &PullRequest{Origins: []OriginRanges{{Origin: TagOf(testOrigin(1)), Ranges: []SeqRange{{0, 1}}}}}))
	f.Add([]byte{'H', 'S', 1, 1, 0, 0, 0})
	// The core starts with chunk 0 of this message: the others complete it.
	large := newChunkSet(testOrigin(2), 100, t0.UnixMilli(), "large", bytes.Repeat([]byte{3}, 400), 3)
	f.Add(append(large.datagram(1, nil), large.enc(2, nil)...))
	f.Add(large.datagram(1, func(h *chunkHeader, _ *[]byte) { h.total++ }))
	f.Add(large.datagram(2, func(h *chunkHeader, _ *[]byte) { h.whole[0]++ }))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := New(Config{ID: testOrigin(9), Peers: fixedPeers{addr(1)}, MaxPacketSize: 512, MaxMessageSize: 1 << 16})
		require.NoError(t, err)
		_, err = c.Push(t0, "seed", []byte("cached"))
		require.NoError(t, err)
		c.Handle(t0, addr(1), large.datagram(0, nil))
		c.Ready()
		c.Handle(t0, addr(1), b)
		rd := c.Ready()
		for _, d := range rd.Datagrams {
			require.LessOrEqual(t, len(d.Data), 512)
		}
		for _, m := range rd.Messages {
			// Whatever is delivered, whole or not, is what its ID says.
			require.Equal(t, ComputeMessageID(m.Origin, m.Seq, m.Created.UnixMilli(), m.Topic, m.Payload), m.ID)
		}
		require.LessOrEqual(t, c.Stats().PartialBytes, c.Config().MaxPartialBytes)
	})
}

// FuzzReassembler: entries (each a 2-byte length and its bytes) fed to a
// Reassembler never panic, never exceed its bound, and only give out
// messages whose payload matches their ID.
func FuzzReassembler(f *testing.F) {
	entries := func(encs ...[]byte) []byte {
		var b []byte
		for _, e := range encs {
			b = binary.BigEndian.AppendUint16(b, uint16(len(e)))
			b = append(b, e...)
		}
		return b
	}
	s := newChunkSet(testOrigin(2), 100, t0.UnixMilli(), "large", bytes.Repeat([]byte{3}, 400), 3)
	f.Add(entries(s.enc(2, nil), appendMessage(nil, testOrigin(1), 1, 1, "a", nil), s.enc(0, nil), s.enc(1, nil)))
	f.Add(entries(s.enc(0, nil), s.enc(1, func(h *chunkHeader, _ *[]byte) { h.total++ })))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReassembler(4096)
		for len(b) >= 2 {
			n := min(int(binary.BigEndian.Uint16(b)), len(b)-2)
			enc := b[2 : 2+n]
			b = b[2+n:]
			m, ok, err := r.Add(enc)
			if ok {
				require.NoError(t, err)
				require.Equal(t, ComputeMessageID(m.Origin, m.Seq, m.Created.UnixMilli(), m.Topic, m.Payload), m.ID)
			}
			_, used := r.Partial()
			require.LessOrEqual(t, used, 4096)
		}
	})
}
