package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/hearsay-io/hearsay/registry"
)

// The node does nothing on goroutines of its own: its transport calls the
// receive path, and timers on its Clock call the core's Tick, the DHT's, the
// peers file check and the DNS registry's refresh. Each timed call takes n.mu, does its work and
// schedules the next one; Close cancels those not started and waits for
// those that have.

// reloadInterval is how often a peers file is checked for changes.
const reloadInterval = time.Second

// timers are the node's scheduled calls, by their stop funcs (nil: not
// scheduled). Guarded by n.mu.
type timers struct {
	tick, reload, dht, dhtSave, dns func() bool
	tickAt, dhtAt                   time.Time // when the tick and the dht call are due
}

func (t *timers) stopAll() {
	for _, stop := range []func() bool{t.tick, t.reload, t.dht, t.dhtSave, t.dns} {
		if stop != nil {
			stop()
		}
	}
}

// afterLocked schedules f on the node's clock, d from now, and returns its
// stop func. Close waits for f once it has started. Under n.mu, before
// Close.
func (n *Node) afterLocked(d time.Duration, f func()) (stop func() bool) {
	n.wg.Add(1)
	stopClock := n.clock.AfterFunc(d, func() {
		defer n.wg.Done()
		f()
	})
	return func() bool {
		if stopClock() {
			n.wg.Done()
			return true
		}
		return false
	}
}

// reloader is a registry that can re-read its source (a peers file).
type reloader interface {
	ReloadIfChanged() (bool, error)
}

// Start runs the node: the transport starts handing datagrams to the
// receive path, and the timers start.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	if !n.started.IsZero() {
		return errors.New("node: already started")
	}
	if n.cfg.Memberlist != nil {
		if err := n.startMemberlist(); err != nil {
			return err
		}
	}
	if err := n.transport.Start(n.receive); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.started = n.clock.Now()
	n.startValidationLocked()
	n.scheduleTickLocked(n.started)
	n.watchPeersFileLocked()
	if n.dht != nil {
		n.startDHTLocked()
	}
	if n.dns != nil {
		n.timers.dns = n.afterLocked(n.dns.Interval(), n.refreshDNS)
	}
	n.logger.Info("node started", "id", n.id.String(), "gossip_addr", n.Addr().String(), "filter", n.cfg.Filter)
	if len(n.Peers()) == 0 {
		n.logger.Warn(n.noPeersMessage())
	}
	return nil
}

// noPeersMessage says, at start, why a node has no peers and what gives it
// some: a node alone gossips with nobody, which is otherwise silent.
func (n *Node) noPeersMessage() string {
	switch {
	case n.dht != nil && len(n.cfg.DHT.Bootstrap) > 0:
		return "no peers yet: bootstrapping the DHT through its join addresses"
	case n.dht != nil:
		return "no peers: the DHT has no bootstrap addresses and no saved table; this node gossips with nobody until another joins through it (--join)"
	case n.cfg.Memberlist != nil && len(n.cfg.Join) > 0:
		return "no peers yet: joining memberlist through its join addresses"
	case n.cfg.Memberlist != nil:
		return "no peers: memberlist has no join addresses; this node gossips with nobody until another joins through it (--join)"
	case n.dns != nil:
		return "no peers: the DNS names resolve to no other node yet; re-resolved every " + n.dns.Interval().String()
	}
	return "no peers: this node gossips with nobody; give it peers (--peers, --peers-file or --join)"
}

// tick ticks the core, sends what it asks, and schedules the next tick at
// the core's NextTick.
func (n *Node) tick() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	start := time.Now()        // the histogram measures the work in real time, whatever the clock
	n.applyValidationsLocked() // on a virtual clock, verdicts wait for a tick
	n.core.Tick(n.clock.Now())
	n.flushLocked()
	n.scheduleTickLocked(n.core.NextTick())
	n.mu.Unlock()
	n.tickSeconds.Observe(time.Since(start).Seconds())
}

// scheduleTickLocked schedules the core's tick at at.
func (n *Node) scheduleTickLocked(at time.Time) {
	n.timers.tickAt = at
	n.timers.tick = n.afterLocked(at.Sub(n.clock.Now()), n.tick)
}

// kickTickLocked brings the core's tick forward when an input did so: a
// long-poll answer waiting out its batch window, a graft to send.
func (n *Node) kickTickLocked() {
	next := n.core.NextTick()
	if n.timers.tick == nil || !next.Before(n.timers.tickAt) {
		return
	}
	if n.timers.tick() { // else the tick is running: it reschedules itself
		n.scheduleTickLocked(next)
	}
}

// reloadPeers re-reads the registry's peers file if it changed.
func (n *Node) reloadPeers() {
	r, ok := n.peers.registry().(reloader)
	if !ok { // replaced by SetRegistry with one that has no file
		n.mu.Lock()
		n.timers.reload = nil
		n.mu.Unlock()
		return
	}
	if changed, err := r.ReloadIfChanged(); err != nil {
		n.logger.Warn("peers file not reloaded, keeping the old peers", "err", err)
	} else if changed {
		n.logger.Info("peers file reloaded", "peers", len(n.peers.registry().Peers()))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.closed {
		n.timers.reload = n.afterLocked(reloadInterval, n.reloadPeers)
	}
}

// watchPeersFileLocked schedules the check of the registry's peers file, if
// it has one and it is not scheduled yet.
func (n *Node) watchPeersFileLocked() {
	if _, ok := n.peers.registry().(reloader); ok && n.timers.reload == nil {
		n.timers.reload = n.afterLocked(reloadInterval, n.reloadPeers)
	}
}

// SetRegistry makes r the node's registry, from the next pull on: a
// reloaded configuration's peers. Only for a node whose registry is its
// Config.Registry, not one that runs its DHT, DNS or memberlist registry.
func (n *Node) SetRegistry(r registry.Registry) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.closed:
		return ErrClosed
	case r == nil:
		return errors.New("node: SetRegistry: nil registry")
	case n.dht != nil || n.dns != nil || n.cfg.Memberlist != nil:
		return errors.New("node: SetRegistry: the node runs its own registry (DHT, DNS or memberlist)")
	}
	n.cfg.Registry = r
	n.peers.setRegistry(r)
	if !n.started.IsZero() {
		n.watchPeersFileLocked()
	}
	return nil
}
