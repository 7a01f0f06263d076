package dns

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type fakeResolver struct {
	a   map[string][]netip.Addr
	srv map[string][]*net.SRV
	err error
}

func (f *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if f.err != nil {
		return nil, f.err
	}
	a, ok := f.a[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	return a, nil
}

func (f *fakeResolver) LookupSRV(_ context.Context, _, _, name string) (string, []*net.SRV, error) {
	if f.err != nil {
		return "", nil, f.err
	}
	return "", f.srv[name], nil
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestDNSAppearDisappearFailureSelf(t *testing.T) {
	f := &fakeResolver{a: map[string][]netip.Addr{"svc": {netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}}}
	var logs bytes.Buffer
	r, err := New(context.Background(), Config{Names: []string{"svc:7946"}, Self: ap("10.0.0.2:7946"), Resolver: f, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	assert.Equal(t, []netip.AddrPort{ap("10.0.0.1:7946")}, r.Peers())

	f.a["svc"] = []netip.Addr{netip.MustParseAddr("10.0.0.3")}
	r.Refresh(context.Background())
	assert.Equal(t, []netip.AddrPort{ap("10.0.0.3:7946")}, r.Peers())

	f.err = errors.New("server failure")
	r.Refresh(context.Background())
	r.Refresh(context.Background())
	assert.Equal(t, []netip.AddrPort{ap("10.0.0.3:7946")}, r.Peers())
	assert.Equal(t, 1, strings.Count(logs.String(), "resolution failed"))
}

func TestDNSSRVPorts(t *testing.T) {
	f := &fakeResolver{
		a:   map[string][]netip.Addr{"a.": {netip.MustParseAddr("10.0.0.1")}, "b.": {netip.MustParseAddr("10.0.0.2")}},
		srv: map[string][]*net.SRV{"_gossip._udp.svc": {{Target: "a.", Port: 7001}, {Target: "b.", Port: 7002}}},
	}
	r, err := New(context.Background(), Config{Names: []string{"_gossip._udp.svc"}, Resolver: f})
	require.NoError(t, err)
	assert.ElementsMatch(t, []netip.AddrPort{ap("10.0.0.1:7001"), ap("10.0.0.2:7002")}, r.Peers())
}

func TestDNSBadNames(t *testing.T) {
	for _, name := range []string{"svc", "svc:0", "svc:x", ":7946", "_gossip.svc"} {
		_, err := New(context.Background(), Config{Names: []string{name}, Resolver: &fakeResolver{}})
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), name)
	}
}

// Bound to 0.0.0.0, a node is its port on any of this host's addresses.
func TestDNSSelfOnUnspecifiedAddress(t *testing.T) {
	f := &fakeResolver{a: map[string][]netip.Addr{"svc": {netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}}}
	r, err := New(context.Background(), Config{Names: []string{"svc:7946"}, Self: ap("0.0.0.0:7946"),
		LocalAddrs: []netip.Addr{netip.MustParseAddr("10.0.0.2")}, Resolver: f})
	require.NoError(t, err)
	assert.Equal(t, []netip.AddrPort{ap("10.0.0.1:7946")}, r.Peers())
}
