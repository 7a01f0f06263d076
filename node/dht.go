package node

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/hearsay-io/hearsay/registry/dht"
)

// dhtPeersFile is where the DHT table is kept in the data dir.
const dhtPeersFile = "dht-peers"

// dhtSaveInterval is how often the DHT table is saved while running.
const dhtSaveInterval = time.Minute

// newDHTIfConfigured builds the DHT registry of Config.DHT, if any, and
// restores its saved table.
func (n *Node) newDHTIfConfigured() error {
	if n.cfg.DHT == nil {
		return nil
	}
	c := *n.cfg.DHT
	c.Self = n.id
	if self, ok := n.selfAddr(); ok {
		c.SelfAddr = self
	}
	c.Rand = n.splitRand() // request IDs are what keeps strangers from forging answers
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = n.core.Config().MaxPacketSize // sealing overhead already taken off
	}
	reg, err := dht.NewRegistry(c)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if n.cfg.DataDir != "" {
		if err := reg.LoadFile(filepath.Join(n.cfg.DataDir, dhtPeersFile)); err != nil {
			// Not fatal: the bootstrap addresses still get us in.
			n.logger.Warn("DHT table not restored, joining through the bootstrap addresses", "err", err)
		}
	}
	n.dht = reg
	n.peers.setRegistry(reg)
	return nil
}

// selfAddr is this node's gossip address as others reach it, if known:
// Config.Advertise, else the bound address unless it is 0.0.0.0 or ::.
func (n *Node) selfAddr() (netip.AddrPort, bool) {
	if n.cfg.Advertise != "" {
		if ap, err := netip.ParseAddrPort(n.cfg.Advertise); err == nil {
			return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
		}
		if ua, err := net.ResolveUDPAddr("udp", n.cfg.Advertise); err == nil {
			ap := ua.AddrPort()
			return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
		}
		return netip.AddrPort{}, false
	}
	a := n.Addr()
	if a.Addr().IsUnspecified() {
		return netip.AddrPort{}, false
	}
	return a, true
}

// startDHTLocked schedules the DHT's first tick, now, and the saving of its
// table.
func (n *Node) startDHTLocked() {
	n.scheduleDHTLocked(n.clock.Now())
	if n.cfg.DataDir != "" {
		n.timers.dhtSave = n.afterLocked(dhtSaveInterval, n.saveDHTTimed)
	}
}

// scheduleDHTLocked schedules the DHT's tick at at.
func (n *Node) scheduleDHTLocked(at time.Time) {
	n.timers.dhtAt = at
	n.timers.dht = n.afterLocked(at.Sub(n.clock.Now()), n.tickDHT)
}

// tickDHT ticks the DHT when it is due, sends what it asks, and schedules
// the next tick at its NextTick.
func (n *Node) tickDHT() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	now := n.clock.Now()
	if !now.Before(n.dht.NextTick()) {
		rd := n.dht.Tick(now)
		n.sendLocked(rd.Datagrams, now)
	}
	n.scheduleDHTLocked(n.dht.NextTick())
}

// kickDHTLocked brings the DHT's tick forward when an input did so (a
// request sent, whose timeout is due sooner).
func (n *Node) kickDHTLocked() {
	next := n.dht.NextTick()
	if n.timers.dht == nil || !next.Before(n.timers.dhtAt) {
		return
	}
	if n.timers.dht() { // else the tick is running: it reschedules itself
		n.scheduleDHTLocked(next)
	}
}

// saveDHTTimed saves the DHT table, and schedules the next save.
func (n *Node) saveDHTTimed() {
	if err := n.saveDHT(); err != nil {
		n.logger.Warn("DHT table not saved", "err", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.closed {
		n.timers.dhtSave = n.afterLocked(dhtSaveInterval, n.saveDHTTimed)
	}
}

func (n *Node) saveDHT() error {
	if n.cfg.DataDir == "" {
		return nil
	}
	return n.dht.SaveFile(filepath.Join(n.cfg.DataDir, dhtPeersFile))
}

// DHT returns the node's DHT registry, or nil without Config.DHT.
func (n *Node) DHT() *dht.Registry { return n.dht }
