package dht

import (
	"net/netip"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/wire"
)

// request is a request awaiting its answer.
type request struct {
	id       uint64
	kind     wire.PacketType // wire.DHTPing or wire.DHTFindNode
	to       netip.AddrPort
	node     gossip.NodeID // the ID expected to answer; zero if unknown
	deadline time.Time
	lookup   *lookup
	done     bool
}

// maxPending bounds the requests in flight that strangers can cause
// (verification pings); lookups and the ping schedule are bounded by
// configuration.
const maxPending = 1024

// ping sends a PING to addr, expecting node id (zero: unknown), unless one
// is in flight to addr already.
func (t *Table) ping(addr netip.AddrPort, id gossip.NodeID) *request {
	if _, busy := t.pingAddr[addr]; busy {
		return nil
	}
	r := t.request(wire.DHTPing, addr, id, nil)
	t.pingAddr[addr] = r
	t.emitPacket(addr, &Packet{Type: wire.DHTPing, Sender: t.cfg.Self, RequestID: r.id})
	t.stats.PingsSent++
	return r
}

// request registers a request with a fresh, unpredictable ID.
func (t *Table) request(kind wire.PacketType, to netip.AddrPort, node gossip.NodeID, l *lookup) *request {
	id := t.cfg.Rand.Uint64()
	for t.pending[id] != nil {
		id = t.cfg.Rand.Uint64()
	}
	r := &request{id: id, kind: kind, to: to, node: node, deadline: t.now.Add(t.cfg.RequestTimeout), lookup: l}
	t.pending[id] = r
	t.queue = append(t.queue, r)
	t.stats.RequestsSent++
	return r
}

// finish retires an answered or expired request.
func (t *Table) finish(r *request) {
	r.done = true
	delete(t.pending, r.id)
	if t.pingAddr[r.to] == r {
		delete(t.pingAddr, r.to)
	}
}

func (t *Table) expireRequests() {
	for t.trimQueue(); len(t.queue) > 0 && !t.now.Before(t.queue[0].deadline); t.trimQueue() {
		r := t.queue[0]
		t.finish(r)
		t.stats.Timeouts++
		if c := t.contacts[r.node]; c != nil && c.addr == r.to {
			t.failed(c)
		}
		if l := r.lookup; l != nil && !l.done {
			l.failed(t, r.node)
		}
	}
}

// trimQueue drops the answered requests at the front of the queue.
func (t *Table) trimQueue() {
	i := 0
	for i < len(t.queue) && t.queue[i].done {
		i++
	}
	if i == 0 {
		return
	}
	clear(t.queue[:i])
	t.queue = t.queue[i:]
	if len(t.queue) == 0 {
		t.queue = t.queue[:0:0] // let the array go
	}
}
