package main

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/node"
	"github.com/hearsay-io/hearsay/registry/dns/dnstest"
)

// Three agents with --registry dns find each other through the SRV records
// of a DNS server the test runs (--dns-server): a record added makes its
// agent a peer that the others pull messages from, a record removed takes
// its agent out of the others' peers. The times to notice are logged.
func TestE2EDNSRegistry(t *testing.T) {
	t.Parallel()
	hearsayBinary(t)
	const name, interval = "_hearsay._udp.e2e.test", 200 * time.Millisecond
	srv := dnstest.Start(t)
	srv.SetA("agents.e2e.test", netip.MustParseAddr("127.0.0.1"))
	c := newCluster(t, 3)
	setRecords := func(agents ...int) {
		var ports []uint16
		for _, i := range agents {
			_, port, _ := strings.Cut(c.gossip[i], ":")
			p, err := strconv.Atoi(port)
			require.NoError(t, err)
			ports = append(ports, uint16(p))
		}
		srv.SetSRV(name, "agents.e2e.test", ports...)
	}
	setRecords(0, 1)
	args := []string{"--registry", "dns", "--join", name, "--dns-server", srv.Addr(),
		"--dns-interval", interval.String(), "--interval", "50ms"}
	var agents []*agentProcess
	for i := range 3 {
		agents = append(agents, c.start(t, i, "dns-"+strconv.Itoa(i+1), args...))
	}
	peersOf := func(a *agentProcess) []string { return peersInfoOf(t, a.api).Peers }
	require.Equal(t, node.RegistryDNS, peersInfoOf(t, agents[0].api).Registry)
	require.Equal(t, []string{c.gossip[1]}, peersOf(agents[0]), "the agent leaves itself out")

	setRecords(0, 1, 2)
	start := time.Now()
	require.Eventually(t, func() bool { return slices.Contains(peersOf(agents[0]), c.gossip[2]) }, 10*time.Second, time.Millisecond)
	t.Logf("added record noticed after %v (--dns-interval %v)", time.Since(start).Round(time.Millisecond), interval)
	s := openStream(t, agents[0].name, agents[0].api, "dns.>")
	s.waitFor(t, publishMessages(t, agents[2].api, "dns.added", 5), 20*time.Second)

	setRecords(0, 2)
	start = time.Now()
	require.Eventually(t, func() bool { return !slices.Contains(peersOf(agents[0]), c.gossip[1]) }, 10*time.Second, time.Millisecond)
	t.Logf("removed record noticed after %v (--dns-interval %v)", time.Since(start).Round(time.Millisecond), interval)
	require.Contains(t, agents[0].logs.String(), "dns registry: peers changed")
}
