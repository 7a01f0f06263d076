package node

import (
	"net/netip"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/security"
	"github.com/hearsay-io/hearsay/transport"
	"github.com/hearsay-io/hearsay/wire"
)

// receive is the transport's handler: it takes the node's lock once per
// batch of datagrams.
func (n *Node) receive(batch []transport.Received) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	now := n.clock.Now()
	for _, r := range batch {
		n.receiveLocked(now, r.From, r.Data)
	}
}

// receiveLocked opens and dispatches one datagram.
func (n *Node) receiveLocked(now time.Time, from netip.AddrPort, datagram []byte) {
	n.limits.received(from, len(datagram), now)
	if n.cfg.Keyring.Enabled() {
		plain, err := n.sealer.Open(n.openBuf[:0], datagram, now)
		if err != nil {
			n.authFailedLocked(from, security.DropReason(err), now)
			return
		}
		n.openBuf, datagram = plain, plain
	} else if security.IsSealed(datagram) {
		n.authFailedLocked(from, "sealed", now) // we have no key: a sealed datagram is not for us
		return
	}
	n.handleLocked(now, from, datagram)
}

// handleLocked parses an authentic (opened, or plaintext in a cluster
// without keys) datagram's header, once, and hands its body to the owner of
// its type: PULL_ACKs to peer hygiene, DHT packets to the DHT, the rest to
// the gossip core.
func (n *Node) handleLocked(now time.Time, from netip.AddrPort, datagram []byte) {
	t, body, err := wire.Parse(datagram)
	if err != nil {
		n.core.Handle(now, from, datagram) // the core counts what is wrong
		n.flushLocked()
		return
	}
	n.peers.heard(from)
	switch t.Owner() {
	case wire.OwnerPeers:
		return
	case wire.OwnerDHT:
		if n.dht != nil {
			rd := n.dht.HandlePacket(now, from, t, body)
			n.sendLocked(rd.Datagrams, now)
			n.kickDHTLocked()
			return
		}
	}
	n.core.HandlePacket(now, from, t, body)
	if t == wire.Pull && !n.answersTo(from) && n.peers.shouldAck(from, now) {
		n.acks++
		n.sendLocked([]gossip.Datagram{{To: from, Data: wire.AppendHeader(nil, wire.PullAck)}}, now)
	}
	// Flushed per datagram: the core reuses its output buffers once they
	// were taken, at its next input.
	n.flushLocked()
}

// answersTo reports whether the core's pending datagrams include one to a.
func (n *Node) answersTo(a netip.AddrPort) bool {
	for _, d := range n.core.Ready().Datagrams {
		if d.To == a {
			return true
		}
	}
	return false
}
