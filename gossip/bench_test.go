package gossip

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/hearsay-io/hearsay/msglog"
	"github.com/hearsay-io/hearsay/wire"
)

func BenchmarkEncodeMessages(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 256)
	buf := make([]byte, 0, 1400)
	b.ReportAllocs()
	b.SetBytes(int64(EncodedMessageSize(1<<50, 1_700_000_000_000, 14, 256)))
	for b.Loop() {
		buf = appendMessage(wire.AppendHeader(buf[:0], wire.Messages), testOrigin(1), 1<<50, 1_700_000_000_000, "orders.created", payload)
	}
}

func BenchmarkDecodeMessages(b *testing.B) {
	dg := wire.AppendHeader(nil, wire.Messages)
	for i := 0; i < 4; i++ {
		dg = appendMessage(dg, testOrigin(1), uint64(1<<50+i), 1_700_000_000_000, "orders.created", bytes.Repeat([]byte("x"), 256))
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(dg)))
	for b.Loop() {
		if _, err := DecodeMessages(dg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePullRequest(b *testing.B) {
	req := &PullRequest{}
	for i := 0; i < 50; i++ {
		req.Origins = append(req.Origins, OriginRanges{Origin: OriginTag(i * 7919), Ranges: []SeqRange{{1 << 50, 1<<50 + 1000}}})
	}
	dg := AppendPullRequest(nil, req)
	var d pullDecoder
	b.ReportAllocs()
	b.SetBytes(int64(len(dg)))
	for b.Loop() {
		if _, err := d.decode(dg[wire.HeaderSize:]); err != nil {
			b.Fatal(err)
		}
	}
}

// benchResponder returns a core holding cached messages from origins, and
// the digest of a requester that holds all but missing of each origin's.
func benchResponder(b *testing.B, origins, perOrigin, missing int) (*Core, []byte) {
	c, err := New(Config{ID: testOrigin(200), Peers: fixedPeers{}, CacheRounds: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	var held holdings
	held.maxRanges = 16
	payload := bytes.Repeat([]byte("x"), 256)
	for o := 0; o < origins; o++ {
		origin := testOrigin(byte(o))
		origin[0] = byte(o >> 8)
		dg := wire.AppendHeader(nil, wire.Messages)
		for s := 1; s <= perOrigin; s++ {
			dg = appendMessage(dg[:wire.HeaderSize], origin, uint64(s), t0.UnixMilli(), "bench.topic", payload)
			c.Handle(t0, addr(1), dg)
			if s <= perOrigin-missing {
				held.add(origin, uint64(s), 0)
			}
		}
	}
	c.Ready()
	req := &PullRequest{}
	for _, o := range held.origins {
		req.Origins = append(req.Origins, OriginRanges{Origin: o.tag, Ranges: o.ranges})
	}
	return c, AppendPullRequest(nil, req)
}

// BenchmarkAnswerPullNothingMissing: the common case, a pull from a peer
// that already holds everything (50 origins, 1,000 cached messages each).
func BenchmarkAnswerPullNothingMissing(b *testing.B) {
	c, pull := benchResponder(b, 50, 1000, 0)
	from := netip.MustParseAddrPort("127.0.0.1:7600")
	b.ReportAllocs()
	for b.Loop() {
		c.Handle(t0, from, pull)
		if len(c.Ready().Datagrams) != 0 {
			b.Fatal("answered")
		}
	}
}

// BenchmarkAnswerPull: a pull from a peer that lacks the newest 4 messages
// of each of 50 origins (200 messages, about 60 KB in 45 datagrams).
func BenchmarkAnswerPull(b *testing.B) {
	c, pull := benchResponder(b, 50, 1000, 4)
	from := netip.MustParseAddrPort("127.0.0.1:7600")
	b.ReportAllocs()
	var sent int
	for b.Loop() {
		c.Handle(t0, from, pull)
		rd := c.Ready()
		sent = 0
		for _, d := range rd.Datagrams {
			sent += len(d.Data)
		}
	}
	b.SetBytes(int64(sent))
}

// BenchmarkAcceptMessage: receiving a datagram of 4 new 256-byte messages
// (hash, seen filter, cache, digest, delivery).
func BenchmarkAcceptMessage(b *testing.B) {
	benchmarkAccept(b, Config{ID: testOrigin(200), Peers: fixedPeers{}, CacheMessages: 1 << 22, CacheBytes: 4 << 30})
}

// BenchmarkAcceptMessageLogged: the same with anti-entropy on, as a node
// runs by default: each message is also logged and put in the Merkle tree.
func BenchmarkAcceptMessageLogged(b *testing.B) {
	benchmarkAccept(b, Config{ID: testOrigin(200), Peers: fixedPeers{}, CacheMessages: 1 << 22, CacheBytes: 4 << 30,
		Log: msglog.NewMemory(8 << 30)})
}

func benchmarkAccept(b *testing.B, cfg Config) {
	c, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	payload := bytes.Repeat([]byte("x"), 256)
	from := netip.MustParseAddrPort("127.0.0.1:7600")
	dg := make([]byte, 0, 1400)
	seq := uint64(1)
	b.ReportAllocs()
	for b.Loop() {
		dg = wire.AppendHeader(dg[:0], wire.Messages)
		for i := 0; i < 4; i++ {
			dg = appendMessage(dg, testOrigin(1), seq, t0.UnixMilli(), "bench.topic", payload)
			seq++
		}
		c.Handle(t0, from, dg)
		c.Ready()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*4), "ns/msg")
}
