package gossip

import (
	"crypto/ed25519"
	"net/netip"
	"testing"
	"time"

	"github.com/hearsay-io/hearsay/wire"
)

func BenchmarkVerifyStatement(b *testing.B) {
	key, origin := testKeyOrigin()
	enc := appendStatement(nil, key, origin, 1000, 1_700_000_000_000, 100, make([]byte, 32), true)
	wm, _, _ := decodeMessage(enc)
	for b.Loop() {
		if !verifyStatement(&wm, wm.stmt.pub) {
			b.Fatal("bad")
		}
	}
}

// benchStream publishes n messages of 256 bytes at 20,000 per second on
// an origin core, signing or not, and returns the messages datagrams that
// carry them, and their statements, in order.
func benchStream(b *testing.B, n int, sign bool) ([][]byte, NodeID) {
	key, origin := testKeyOrigin()
	cfg := Config{ID: origin, Peers: staticPeers{}, CacheRounds: 1 << 20}
	if sign {
		cfg.SigningKey = key
	}
	c, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	now := t0
	payload := make([]byte, 256)
	var encs [][]byte
	for i := 0; i < n; i++ {
		now = now.Add(50 * time.Microsecond)
		c.Tick(now)
		if _, err := c.Push(now, "bench", payload); err != nil {
			b.Fatal(err)
		}
	}
	c.Tick(now.Add(time.Second))
	for _, oe := range c.cache.origins {
		for _, e := range oe.entries {
			encs = append(encs, e.enc)
		}
	}
	var dgs [][]byte
	for i := 0; i < len(encs); i += 4 {
		d := wire.AppendHeader(nil, wire.Messages)
		for _, e := range encs[i:min(i+4, len(encs))] {
			d = append(d, e...)
		}
		dgs = append(dgs, d)
	}
	return dgs, origin
}

// BenchmarkAcceptStream: a receiver accepting a stream of messages at
// 20,000 per second, with signatures and without; per message.
func BenchmarkAcceptStream(b *testing.B) {
	for _, sign := range []bool{false, true} {
		name := "unsigned"
		if sign {
			name = "signed"
		}
		b.Run(name, func(b *testing.B) {
			const n = 10000
			dgs, _ := benchStream(b, n, sign)
			from := netip.MustParseAddrPort("127.0.0.2:7600")
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				id := NodeIDOf(ed25519.NewKeyFromSeed(append(make([]byte, 31), 7)).Public().(ed25519.PublicKey))
				cfg := Config{ID: id, Peers: staticPeers{}, CacheRounds: 1 << 20}
				if sign {
					cfg.SigningKey = ed25519.NewKeyFromSeed(append(make([]byte, 31), 7))
				}
				r, err := New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				for _, d := range dgs {
					r.Handle(t0.Add(time.Second), from, d)
					r.Ready()
				}
				b.StopTimer()
				if got := r.Stats().Delivered; got != n {
					b.Fatalf("delivered %d of %d", got, n)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/msg")
		})
	}
}
