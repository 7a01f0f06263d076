package gossip

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/wire"
)

// holder is a core that pulls from no one (its peer list is empty), so
// that only the pulls fed to it make it send anything.
func holder(t *testing.T, tweak func(*Config)) *Core {
	t.Helper()
	cfg := Config{ID: testOrigin(200), Peers: fixedPeers{}, MaxPark: time.Second} // long-poll is off by default
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := New(cfg)
	require.NoError(t, err)
	c.Tick(t0)
	c.Ready()
	return c
}

// longPollFrom hands c, at now, a long-poll pull with an empty digest from
// peer i, and returns what c sent.
func longPollFrom(c *Core, now time.Time, i int, lp LongPoll) []Datagram {
	c.Handle(now, addr(i), AppendPullRequest(nil, &PullRequest{LongPoll: lp}))
	return c.Ready().Datagrams
}

// sent returns the datagrams of Ready by type, with the messages of each
// MESSAGES datagram counted.
func sent(t *testing.T, ds []Datagram) (messages []int, hints int, others int) {
	t.Helper()
	for _, d := range ds {
		typ, _, err := wire.Parse(d.Data)
		require.NoError(t, err)
		switch typ {
		case wire.Messages:
			ms, err := DecodeMessages(d.Data)
			require.NoError(t, err)
			messages = append(messages, len(ms))
		case wire.Hint:
			hints++
		default:
			others++
		}
	}
	return messages, hints, others
}

func push(t *testing.T, c *Core, now time.Time, payload string) []Datagram {
	t.Helper()
	_, err := c.Push(now, "park.test", []byte(payload))
	require.NoError(t, err)
	return c.Ready().Datagrams
}

var subscribing = LongPoll{Park: time.Second, Eager: time.Second}

// A subscription gets each new message at once, then, within BatchWindow
// of the last datagram, what came meanwhile in one datagram at the end of
// the window: NextTick names that time.
func TestParkedPullGetsNewMessagesBatched(t *testing.T) {
	c := holder(t, nil)
	longPollFrom(c, t0, 1, subscribing)
	require.Equal(t, 1, c.Stats().ParkedPulls)

	ms, _, _ := sent(t, push(t, c, t0.Add(time.Millisecond), "first"))
	require.Equal(t, []int{1}, ms, "the first at once")
	ms, _, _ = sent(t, push(t, c, t0.Add(2*time.Millisecond), "second"))
	require.Empty(t, ms, "within the window: held")
	ms, _, _ = sent(t, push(t, c, t0.Add(3*time.Millisecond), "third"))
	require.Empty(t, ms)
	due := t0.Add(time.Millisecond + c.Config().BatchWindow)
	require.Equal(t, due, c.NextTick(), "the window's end is a deadline")
	c.Tick(due.Add(-time.Microsecond))
	ms, _, _ = sent(t, c.Ready().Datagrams)
	require.Empty(t, ms)
	c.Tick(due)
	ms, _, _ = sent(t, c.Ready().Datagrams)
	require.Equal(t, []int{2}, ms, "both in one datagram")
	require.True(t, c.NextTick().After(due))
	require.Equal(t, uint64(2), c.Stats().ParkedSends)
}

// A batch that fills a datagram goes at once, before the window ends: a
// fast stream waits only as long as a datagram takes to fill.
func TestParkedPullBatchGoesWhenADatagramIsFull(t *testing.T) {
	c := holder(t, nil)
	longPollFrom(c, t0, 1, subscribing)
	ms, _, _ := sent(t, push(t, c, t0.Add(time.Millisecond), "first"))
	require.Equal(t, []int{1}, ms, "the first at once")
	big := strings.Repeat("x", c.Config().MaxPacketSize/3)
	var held int
	for i := 2; ; i++ {
		ms, _, _ = sent(t, push(t, c, t0.Add(time.Duration(i)*time.Millisecond), big))
		if len(ms) > 0 {
			require.Equal(t, []int{held}, ms[:1], "what was held goes in a datagram")
			break
		}
		held++
		require.Less(t, time.Duration(i)*time.Millisecond, c.Config().BatchWindow, "sent within the window")
	}
	require.Equal(t, 2, held, "two fill a third of the datagram each; the third overflows it")
}

// Past its eager time a parked pull gets one hint of the first new message
// it lacks, and is forgotten; a message its digest holds gets nothing.
func TestLazyParkedPullGetsOneHint(t *testing.T) {
	c := holder(t, nil)
	m, err := c.Push(t0, "park.test", []byte("held"))
	require.NoError(t, err)
	c.Ready()
	req := &PullRequest{LongPoll: LongPoll{Park: 400 * time.Millisecond},
		Origins: []OriginRanges{{Origin: TagOf(m.Origin), Ranges: []SeqRange{{m.Seq, m.Seq + 1}}}}}
	c.Handle(t0.Add(time.Millisecond), addr(1), AppendPullRequest(nil, req))
	require.Empty(t, c.Ready().Datagrams, "it lacks nothing")

	ds := push(t, c, t0.Add(2*time.Millisecond), "new")
	ms, hints, _ := sent(t, ds)
	require.Empty(t, ms, "no payload to a lazy pull")
	require.Equal(t, 1, hints)
	origins, err := DecodeHint(ds[0].Data)
	require.NoError(t, err)
	require.Equal(t, []OriginRanges{{Origin: TagOf(m.Origin), Ranges: []SeqRange{{m.Seq + 1, m.Seq + 2}}}}, origins)
	require.Zero(t, c.Stats().ParkedPulls, "hinted: forgotten")
	require.Empty(t, push(t, c, t0.Add(3*time.Millisecond), "newer"))
	require.Equal(t, uint64(1), c.Stats().HintsOut)
}

// A pull that skips what is fresh is answered without what arrived here
// less than an Interval ago.
func TestSkipFreshLeavesOutFreshMessages(t *testing.T) {
	c := holder(t, nil)
	push(t, c, t0, "x")
	skip := LongPoll{SkipFresh: true}
	ms, _, _ := sent(t, longPollFrom(c, t0.Add(10*time.Millisecond), 1, skip))
	require.Empty(t, ms)
	ms, _, _ = sent(t, longPollFrom(c, t0.Add(c.Config().Interval+time.Millisecond), 1, skip))
	require.Equal(t, []int{1}, ms)
	ms, _, _ = sent(t, longPollFrom(c, t0.Add(10*time.Millisecond), 2, LongPoll{}))
	require.Equal(t, []int{1}, ms, "a plain pull gets everything, as from a node that predates long-poll")
	require.Zero(t, c.Stats().ParkedPulls, "none of them asked to be parked")
}

// Parked pulls are bounded: one per peer, MaxParked in all, each for at
// most MaxPark.
func TestParkedPullsAreBounded(t *testing.T) {
	c := holder(t, func(cfg *Config) { cfg.MaxParked = 4; cfg.MaxPark = 300 * time.Millisecond })
	for i := 1; i <= 6; i++ {
		longPollFrom(c, t0, i, LongPoll{Park: 5 * time.Second})
	}
	longPollFrom(c, t0, 1, LongPoll{Park: 5 * time.Second})
	s := c.Stats()
	require.Equal(t, 4, s.ParkedPulls, "one per peer, MaxParked in all")
	require.Equal(t, uint64(2), s.ParkRefused)
	require.Equal(t, uint64(5), s.Parked, "peer 1's second pull replaced its first")
	require.Equal(t, uint64(7), s.PullsIn, "every pull answered")

	// Expired at MaxPark, not at the 5 s the pulls asked for.
	for now := t0; now.Before(t0.Add(time.Second)); now = now.Add(50 * time.Millisecond) {
		c.Tick(now)
	}
	require.Zero(t, c.Stats().ParkedPulls)
	require.Equal(t, uint64(4), c.Stats().ParkExpired)
	require.Empty(t, push(t, c, t0.Add(time.Second), "late"))
}

// Parked sends are charged to the peer's budget of the round: past it the
// pull gets a hint of the rest instead, and is forgotten.
func TestParkedSendsRespectTheRoundBudget(t *testing.T) {
	c := holder(t, func(cfg *Config) {
		cfg.MaxPacketSize = 1000
		cfg.MaxAnswerBytes = 1000
		cfg.MaxAnswerBytesPerRound = 2000
		cfg.BatchWindow = -1
	})
	longPollFrom(c, t0, 1, subscribing)
	var bytes, hints int
	for i := 0; i < 10; i++ {
		for _, d := range push(t, c, t0.Add(time.Duration(i)*time.Millisecond), string(make([]byte, 400))) {
			if typ, _ := wire.TypeOf(d.Data); typ == wire.Hint {
				hints++
			} else {
				bytes += len(d.Data) - wire.HeaderSize
			}
		}
	}
	require.LessOrEqual(t, bytes, 2000)
	require.Equal(t, 1, hints)
	require.Equal(t, uint64(1), c.Stats().ParkCut)
	require.Zero(t, c.Stats().ParkedPulls)
}

// A core with long-poll off is a node that predates it: its pulls carry
// no option, it parks nothing, and a hint is a type it does not know.
func TestLongPollOffIsAnOldNode(t *testing.T) {
	c, err := New(Config{ID: testOrigin(1), Peers: fixedPeers{addr(1)}, MaxPark: -1})
	require.NoError(t, err)
	var pulls int
	for now := t0; now.Before(t0.Add(time.Second)); now = now.Add(10 * time.Millisecond) {
		c.Tick(now)
		for _, d := range c.Ready().Datagrams {
			r, err := DecodePullRequest(d.Data)
			require.NoError(t, err)
			require.Zero(t, r.LongPoll)
			require.Equal(t, AppendPullRequest(nil, &PullRequest{Origins: r.Origins}), d.Data)
			pulls++
		}
	}
	require.Positive(t, pulls)
	longPollFrom(c, t0.Add(time.Second), 1, subscribing)
	require.Zero(t, c.Stats().Parked)
	c.Handle(t0.Add(time.Second), addr(1), AppendHint(nil, []OriginRanges{{Origin: 1, Ranges: []SeqRange{{1, 2}}}}))
	require.Equal(t, uint64(1), c.Stats().Dropped[DropUnknownType])
	require.Zero(t, c.Stats().HintsIn)
}

// A hint from a peer that holds no pull of ours is ignored, and a
// malformed one dropped: neither makes the core pull.
func TestStrayHintsAreIgnored(t *testing.T) {
	c := holder(t, nil)
	c.Handle(t0, addr(9), AppendHint(nil, []OriginRanges{{Origin: 1, Ranges: []SeqRange{{1, 2}}}}))
	require.Empty(t, c.Ready().Datagrams)
	c.Handle(t0, addr(9), []byte{'H', 'S', 1, byte(wire.Hint), 0})
	require.Empty(t, c.Ready().Datagrams)
	s := c.Stats()
	require.Equal(t, uint64(1), s.HintsIn)
	require.Equal(t, uint64(1), s.HintsIgnored)
	require.Equal(t, uint64(1), s.Dropped[DropMalformed])
	require.Zero(t, s.Grafts)
}

func TestInsertAndUnionRanges(t *testing.T) {
	var rs []SeqRange
	for _, s := range []uint64{5, 7, 6, 1, 9} {
		rs = insertSeq(rs, s)
	}
	require.Equal(t, []SeqRange{{1, 2}, {5, 8}, {9, 10}}, rs)
	require.Equal(t, []SeqRange{{1, 3}, {5, 12}}, unionRanges(rs, []SeqRange{{2, 3}, {8, 9}, {10, 12}}))
	seq, ok := firstUncovered(rs, SeqRange{5, 10})
	require.True(t, ok)
	require.Equal(t, uint64(8), seq)
	_, ok = firstUncovered(rs, SeqRange{5, 8})
	require.False(t, ok)
}
