package node

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/hearsay-io/hearsay/registry/dns"
)

// newDNSIfConfigured builds the DNS registry of Config.DNS, if any: the
// names are resolved once here, then every Interval from Start.
func (n *Node) newDNSIfConfigured() error {
	if n.cfg.DNS == nil {
		return nil
	}
	c := *n.cfg.DNS
	if !c.Self.IsValid() {
		if self, ok := n.selfAddr(); ok {
			c.Self = self
		} else {
			c.Self = n.Addr() // unspecified: LocalAddrs tell which records are this node
		}
	}
	if c.Logger == nil {
		c.Logger = n.logger
	}
	n.dnsCtx, n.dnsCancel = context.WithCancel(context.Background())
	reg, err := dns.New(n.dnsCtx, c)
	if err != nil {
		n.dnsCancel()
		return fmt.Errorf("node: %w", err)
	}
	n.dns = reg
	n.peers.setRegistry(reg)
	n.logger.Info("dns registry", "names", c.Names, "peers", len(reg.Peers()), "interval", reg.Interval().String())
	return nil
}

// refreshDNS re-resolves the DNS registry's names, logs the peers that came
// and went, and schedules the next refresh. Resolution runs without n.mu:
// gossip goes on with the current peers meanwhile.
func (n *Node) refreshDNS() {
	before := n.dns.Peers()
	n.dns.Refresh(n.dnsCtx)
	after := n.dns.Peers()
	if added, removed := diffPeers(before, after); len(added)+len(removed) > 0 {
		n.logger.Info("dns registry: peers changed", "added", added, "removed", removed, "peers", len(after))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.closed {
		n.timers.dns = n.afterLocked(n.dns.Interval(), n.refreshDNS)
	}
}

// diffPeers lists what is in after but not before, and the reverse.
func diffPeers(before, after []netip.AddrPort) (added, removed []string) {
	for _, a := range after {
		if !slices.Contains(before, a) {
			added = append(added, a.String())
		}
	}
	for _, b := range before {
		if !slices.Contains(after, b) {
			removed = append(removed, b.String())
		}
	}
	return added, removed
}

// DNS returns the node's DNS registry, or nil without Config.DNS.
func (n *Node) DNS() *dns.Registry { return n.dns }
