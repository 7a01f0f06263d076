package dht

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/wire"
)

var testStart = time.Unix(1_700_000_000, 0).UTC()

// newTestTable returns a started table that has heard from n random nodes
// at simAddr(0..n-1), with its first Ready taken.
func newTestTable(t testing.TB, n int) (*Table, time.Time) {
	t.Helper()
	tb, err := New(Config{Self: nodeID(0xa0), SelfAddr: netip.MustParseAddrPort("192.0.2.100:7600")})
	require.NoError(t, err)
	tb.Tick(testStart)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range n {
		tb.seen(withPrefix(rng, gossip.NodeID{}, 0, false), simAddr(i))
	}
	tb.Tick(testStart)
	tb.Ready()
	return tb, testStart
}

// exchange hands datagram to tb from from and returns what tb sends back.
func exchange(tb *Table, now time.Time, from netip.AddrPort, p *Packet) []gossip.Datagram {
	tb.Handle(now, from, AppendPacket(nil, p))
	return tb.Ready().Datagrams
}

func decodeAll(t testing.TB, ds []gossip.Datagram) []Packet {
	t.Helper()
	var out []Packet
	for _, d := range ds {
		p, err := DecodePacket(d.Data)
		require.NoError(t, err)
		out = append(out, p)
	}
	return out
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Self is required"},
		{Config{Self: nodeID(1), K: 33}, "K 33 out of range"},
		{Config{Self: nodeID(1), Alpha: 17}, "Alpha 17"},
		{Config{Self: nodeID(1), RequestTimeout: time.Microsecond}, "RequestTimeout"},
		{Config{Self: nodeID(1), PingInterval: time.Millisecond}, "PingInterval"},
		{Config{Self: nodeID(1), SamplePoolSize: -2}, "SamplePoolSize"},
		{Config{Self: nodeID(1), MaxPacketSize: 512}, "MaxPacketSize 512"},
		{Config{Self: nodeID(1), Bootstrap: []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:7600")}}, "cannot be reached"},
	} {
		_, err := New(tc.cfg)
		require.ErrorContains(t, err, tc.want)
	}
	def := DefaultConfig(nodeID(1), netip.AddrPort{}, nil)
	require.Equal(t, 16, def.K)
	require.Equal(t, 3, def.Alpha)
	require.Equal(t, 1400-52, def.MaxPacketSize)
}

func TestPingIsAnsweredAndTheStrangerVerified(t *testing.T) {
	tb, now := newTestTable(t, 0)
	require.True(t, tb.NextTick().After(now))
	stranger := netip.MustParseAddrPort("203.0.113.1:7600")
	out := decodeAll(t, exchange(tb, now, stranger, &Packet{Type: wire.DHTPing, Sender: nodeID(0x10), RequestID: 77}))
	// First our own PING, so that its answer arrives before anything the
	// stranger does next; then the PONG.
	require.Len(t, out, 2)
	require.Equal(t, wire.DHTPing, out[0].Type)
	require.Equal(t, wire.DHTPong, out[1].Type)
	require.Equal(t, uint64(77), out[1].RequestID)
	require.Equal(t, tb.cfg.Self, out[1].Sender)
	require.Empty(t, tb.Peers(), "not a peer until it answers")

	// A forged answer: right ID from the wrong address, or wrong ID.
	require.Empty(t, exchange(tb, now, netip.MustParseAddrPort("203.0.113.2:7600"),
		&Packet{Type: wire.DHTPong, Sender: nodeID(0x10), RequestID: out[0].RequestID}))
	require.Empty(t, exchange(tb, now, stranger, &Packet{Type: wire.DHTPong, Sender: nodeID(0x10), RequestID: out[0].RequestID + 1}))
	require.Equal(t, uint64(2), tb.Stats().Dropped[DropUnsolicited])
	require.Empty(t, tb.Peers())

	// The real answer: now a peer, and the table joins through it.
	exchange(tb, now, stranger, &Packet{Type: wire.DHTPong, Sender: nodeID(0x10), RequestID: out[0].RequestID})
	require.Equal(t, []netip.AddrPort{stranger}, tb.Peers())
	require.NotNil(t, tb.selfLookup)

	// Our own ID, through another address, is ignored.
	require.Empty(t, exchange(tb, now, stranger, &Packet{Type: wire.DHTPing, Sender: tb.cfg.Self, RequestID: 1}))
	require.Equal(t, uint64(1), tb.Stats().Dropped[DropSelf])
}

func TestFindNodeAnswers(t *testing.T) {
	tb, now := newTestTable(t, 200)
	target := nodeID(0x33)
	want := tb.closest(target, 16, true, gossip.NodeID{})
	require.Len(t, want, 16)

	// A stranger sending an unpadded request gets at most three times its
	// size, and is pinged to be verified.
	stranger := netip.MustParseAddrPort("203.0.113.1:7600")
	req := &Packet{Type: wire.DHTFindNode, Sender: nodeID(0x10), RequestID: 5, Target: target}
	ds := exchange(tb, now, stranger, req)
	total := 0
	for _, d := range ds {
		total += len(d.Data)
	}
	require.LessOrEqual(t, total, 3*FindNodeSize)
	out := decodeAll(t, ds)
	nodes := out[len(out)-1]
	require.Equal(t, wire.DHTNodes, nodes.Type)
	require.Equal(t, uint64(5), nodes.RequestID)
	require.NotEmpty(t, nodes.Nodes)
	require.Less(t, len(nodes.Nodes), 16)

	// Padded as our lookups pad, it gets all K, closest first.
	req.Padding = FindNodePadding(16)
	req.RequestID = 6
	out = decodeAll(t, exchange(tb, now, netip.MustParseAddrPort("203.0.113.3:7600"), req))
	nodes = out[len(out)-1]
	require.Len(t, nodes.Nodes, 16)
	for i, c := range nodes.Nodes {
		require.Equal(t, want[i].asContact(), c)
	}

	// The requester is never named to itself.
	self := want[0]
	out = decodeAll(t, exchange(tb, now, self.addr, &Packet{Type: wire.DHTFindNode, Sender: self.id, RequestID: 8, Target: target}))
	require.Len(t, out, 1, "a verified contact is not pinged")
	require.Len(t, out[0].Nodes, 16, "nor limited")
	for _, c := range out[0].Nodes {
		require.NotEqual(t, self.id, c.ID)
	}
}

func TestEviction(t *testing.T) {
	tb, now := newTestTable(t, 300)
	require.True(t, tb.bootstrapped || tb.selfLookup != nil)
	// Let every request time out: nobody answers.
	for range 40 {
		now = now.Add(tb.cfg.PingInterval / 4)
		tb.Tick(now)
		tb.Ready()
	}
	st := tb.Stats()
	require.Zero(t, st.TableSize, "every silent contact is evicted")
	require.Empty(t, tb.Peers())
	require.NotZero(t, st.Evicted)
	require.False(t, tb.bootstrapped)
}

func TestSilentContactIsNotAPeerUntilItAnswers(t *testing.T) {
	tb, now := newTestTable(t, 3)
	require.Len(t, tb.Peers(), 3)
	// The self-lookup asks all three; one stays silent.
	var silent Packet
	// Answer the in-flight requests of all but the first contact.
	var first netip.AddrPort
	for _, r := range tb.queue {
		if r.done {
			continue
		}
		if !first.IsValid() {
			first = r.to
			silent = Packet{Type: wire.DHTNodes, Sender: r.node, RequestID: r.id}
			continue
		}
		if r.to != first {
			exchange(tb, now, r.to, &Packet{Type: wire.DHTNodes, Sender: r.node, RequestID: r.id})
		}
	}
	now = now.Add(tb.cfg.RequestTimeout)
	tb.Tick(now)
	tb.Ready()
	require.Len(t, tb.Peers(), 2)
	require.NotContains(t, tb.Peers(), first)
	rng := rand.New(rand.NewPCG(1, 1))
	for range 20 {
		require.NotContains(t, tb.SamplePeers(rng, 2, nil), first)
	}
	// A late answer to an expired request does not count...
	exchange(tb, now, first, &silent)
	require.Len(t, tb.Peers(), 2)
	// ...an answer to the retry ping does.
	for i := 0; i < 10 && !slices.Contains(tb.Peers(), first); i++ {
		now = now.Add(tb.cfg.RequestTimeout)
		tb.Tick(now)
		for _, p := range decodeAll(t, tb.Ready().Datagrams) {
			if p.Type == wire.DHTPing {
				r := tb.pending[p.RequestID]
				if r != nil && r.to == first {
					exchange(tb, now, first, &Packet{Type: wire.DHTPong, Sender: r.node, RequestID: p.RequestID})
				}
			}
		}
	}
	require.Contains(t, tb.Peers(), first)
}

func TestFullBucketReplacesOnlyASilentContact(t *testing.T) {
	tb, now := newTestTable(t, 0)
	// 17 nodes in bucket 0 (the far half): one too many.
	var ids []gossip.NodeID
	for i := range 17 {
		id := withPrefix(tb.cfg.Rand, tb.cfg.Self, 0, true)
		ids = append(ids, id)
		tb.seen(id, simAddr(i))
	}
	b := &tb.buckets[0]
	require.Len(t, b.entries, 16)
	require.Len(t, b.replacements, 1)
	require.Equal(t, ids[16], b.replacements[0].ID)
	oldest := b.entries[0]
	require.Equal(t, ids[0], oldest.id)

	// An answering contact keeps its place; one that fails a request
	// while a replacement waits gives it up.
	tb.failed(oldest)
	require.Len(t, b.entries, 16)
	require.Empty(t, b.replacements)
	require.Equal(t, ids[16], b.entries[0].id, "the replacement is now the least recently seen")
	require.Nil(t, tb.contacts[ids[0]])
	_ = now
}

func TestNextTickBeforeStart(t *testing.T) {
	tb, err := New(Config{Self: nodeID(1)})
	require.NoError(t, err)
	require.True(t, tb.NextTick().IsZero())
	tb.Tick(testStart)
	require.Equal(t, testStart.Add(2*time.Second), tb.NextTick(), "the bootstrap retry")
	require.Empty(t, tb.Ready().Datagrams, "no bootstrap addresses: wait to be contacted")
}
