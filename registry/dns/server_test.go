package dns

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDNSRealServer resolves through a real DNS server on 127.0.0.1 whose
// A records the test changes, and counts the Refresh calls until a change
// is seen (one each way: a Refresh sees the current records).
func TestDNSRealServer(t *testing.T) {
	var mu sync.Mutex
	ips := []string{"10.0.0.1"}
	mux := mdns.NewServeMux()
	mux.HandleFunc("svc.test.", func(w mdns.ResponseWriter, q *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(q)
		if q.Question[0].Qtype == mdns.TypeA {
			mu.Lock()
			for _, ip := range ips {
				m.Answer = append(m.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: "svc.test.", Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 0}, A: net.ParseIP(ip)})
			}
			mu.Unlock()
		}
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	started := make(chan struct{})
	srv := &mdns.Server{PacketConn: pc, Handler: mux, NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	<-started
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
	r, err := New(context.Background(), Config{Names: []string{"svc.test.:7946"}, Resolver: res, Interval: 10 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:7946")}, r.Peers())

	mu.Lock()
	ips = []string{"10.0.0.1", "10.0.0.2"}
	mu.Unlock()
	start := time.Now()
	r.Refresh(context.Background())
	assert.ElementsMatch(t, []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:7946"), netip.MustParseAddrPort("10.0.0.2:7946")}, r.Peers())
	t.Logf("added record seen after one Refresh (%v)", time.Since(start))

	mu.Lock()
	ips = []string{"10.0.0.2"}
	mu.Unlock()
	start = time.Now()
	r.Refresh(context.Background())
	assert.Equal(t, []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:7946")}, r.Peers())
	t.Logf("removed record seen after one Refresh (%v)", time.Since(start))
}
