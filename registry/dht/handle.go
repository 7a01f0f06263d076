package dht

import (
	"errors"
	"net/netip"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/wire"
)

// Handle processes a datagram whose packet type the DHT owns (see
// IsPacket). Anything malformed is dropped and counted in Stats; nothing
// here panics on input.
func (t *Table) Handle(now time.Time, from netip.AddrPort, datagram []byte) {
	typ, body, err := wire.Parse(datagram)
	if err != nil {
		t.begin(now)
		t.stats.DatagramsIn++
		t.stats.BytesIn += uint64(len(datagram))
		if errors.Is(err, wire.ErrVersion) {
			t.drop(DropVersion)
		} else {
			t.drop(DropMalformed)
		}
		return
	}
	t.HandlePacket(now, from, typ, body)
}

// HandlePacket is Handle for a datagram whose header the caller has parsed
// (wire.Parse): typ is its packet type, body the rest.
func (t *Table) HandlePacket(now time.Time, from netip.AddrPort, typ wire.PacketType, body []byte) {
	t.begin(now)
	t.stats.DatagramsIn++
	t.stats.BytesIn += uint64(wire.HeaderSize + len(body))
	from = unmap(from)
	p := &t.pkt
	if err := decodeBody(p, typ, body); err != nil {
		if errors.Is(err, wire.ErrVersion) {
			t.drop(DropVersion)
		} else {
			t.drop(DropMalformed)
		}
		return
	}
	if p.Sender == t.cfg.Self || from == t.cfg.SelfAddr {
		t.drop(DropSelf) // ourselves, through another address
		return
	}
	switch p.Type {
	case wire.DHTPing:
		t.stats.RequestsIn++
		t.observe(p.Sender, from)
		t.emitPacket(from, &Packet{Type: wire.DHTPong, Sender: t.cfg.Self, RequestID: p.RequestID})
	case wire.DHTFindNode:
		t.stats.RequestsIn++
		budget := t.cfg.MaxPacketSize
		if !t.verified(p.Sender, from) {
			// Never send a stranger more than three times what it sent
			// (RFC 9000 §8): its address may be forged. Requests are
			// padded so that this leaves room for a full answer.
			budget = 3 * (wire.HeaderSize + len(body))
			if t.observe(p.Sender, from) {
				budget -= PingSize
			}
		}
		t.answerFindNode(from, p, budget)
	case wire.DHTPong, wire.DHTNodes:
		t.handleAnswer(from, p)
	}
	t.housekeep()
}

func (t *Table) drop(r DropReason) { t.stats.Dropped[r]++ }

// verified reports whether id answered us from addr: it is a contact.
func (t *Table) verified(id gossip.NodeID, addr netip.AddrPort) bool {
	c := t.contacts[id]
	return c != nil && c.addr == addr && c.lastSeen != 0
}

// observe notes a request from id at addr, which may be forged. A node
// that would enter the table is pinged first: only an answer to our random
// request ID proves it is at addr. observe reports whether it pinged.
func (t *Table) observe(id gossip.NodeID, addr netip.AddrPort) bool {
	if !usableAddr(addr) {
		return false
	}
	c := t.contacts[id]
	if c != nil && c.addr == addr {
		return false
	}
	if c == nil && t.bucketLen(commonPrefix(t.cfg.Self, id)) >= t.cfg.K {
		return false // no room: replacements come from lookups, which verify
	}
	if len(t.pending) >= maxPending {
		return false
	}
	return t.ping(addr, id) != nil
}

func (t *Table) answerFindNode(to netip.AddrPort, p *Packet, budget int) {
	budget = min(budget, t.cfg.MaxPacketSize) - nodesHeaderSize
	target, requester := p.Target, p.Sender
	near := t.closest(target, t.cfg.K, true, requester)
	nodes := t.pkt.Nodes[:0] // p.Nodes is empty for FIND_NODE; reuse its array
	for _, c := range near {
		if c.addr == to {
			continue
		}
		n := c.asContact()
		if budget -= contactSize(n); budget < 0 || len(nodes) == t.cfg.K {
			break
		}
		nodes = append(nodes, n)
	}
	t.pkt.Nodes = nodes
	t.emitPacket(to, &Packet{Type: wire.DHTNodes, Sender: t.cfg.Self, RequestID: p.RequestID, Nodes: nodes})
	t.stats.NodesSent += uint64(len(nodes))
}

func (t *Table) handleAnswer(from netip.AddrPort, p *Packet) {
	req := t.pending[p.RequestID]
	want := wire.DHTPing
	if p.Type == wire.DHTNodes {
		want = wire.DHTFindNode
	}
	if req == nil || req.to != from || req.kind != want {
		t.drop(DropUnsolicited)
		return
	}
	t.finish(req)
	t.stats.AnswersIn++
	if !req.node.IsZero() && req.node != p.Sender {
		// Another node answers at this address now (a restart with a new
		// ID): the one we expected is not there any more.
		if old := t.contacts[req.node]; old != nil && old.addr == from {
			t.evict(old)
		}
	}
	t.seen(p.Sender, from)
	if l := req.lookup; l != nil && !l.done {
		l.answered(t, req.node, p.Sender, from, p.Nodes)
	}
}
