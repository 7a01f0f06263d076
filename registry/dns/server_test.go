package dns_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/registry/dns"
	"github.com/hearsay-io/hearsay/registry/dns/dnstest"
)

// TestDNSRealServer resolves through a real DNS server on 127.0.0.1 whose
// records the test changes: an added and a removed A record are each seen
// by the next Refresh, and so are SRV records' ports.
func TestDNSRealServer(t *testing.T) {
	srv := dnstest.Start(t)
	ip := netip.MustParseAddr
	srv.SetA("svc.test", ip("10.0.0.1"))
	r, err := dns.New(context.Background(), dns.Config{Names: []string{"svc.test.:7946", "_g._udp.svc.test."},
		Resolver: dns.ServerResolver(srv.Addr())})
	require.NoError(t, err)
	assert.Equal(t, []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:7946")}, r.Peers())

	srv.SetA("svc.test", ip("10.0.0.1"), ip("10.0.0.2"))
	r.Refresh(context.Background())
	assert.ElementsMatch(t, []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:7946"), netip.MustParseAddrPort("10.0.0.2:7946")}, r.Peers())

	srv.SetA("svc.test", ip("10.0.0.2"))
	srv.SetA("t.test", ip("10.0.0.9"), ip("::1"))
	srv.SetSRV("_g._udp.svc.test", "t.test", 7001)
	r.Refresh(context.Background())
	assert.ElementsMatch(t, []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:7946"),
		netip.MustParseAddrPort("10.0.0.9:7001"), netip.MustParseAddrPort("[::1]:7001")}, r.Peers())
}
