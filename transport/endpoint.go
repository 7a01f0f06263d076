package transport

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"
)

// Endpoint is one address attached to a Network. It is a Transport: a
// node runs on it as on a UDP socket, with the Network as its clock.
type Endpoint struct {
	net      *Network
	addr     netip.AddrPort
	handler  Handler // nil until Start, for an endpoint made by Listen
	detached bool
	// stats counts for an endpoint made by Listen; one made by Attach
	// counts nothing, to stay small when there are a million of them.
	stats *Stats
}

// Addr is the endpoint's address.
func (e *Endpoint) Addr() netip.AddrPort { return e.addr }

// LocalAddr is Addr, for Transport.
func (e *Endpoint) LocalAddr() netip.AddrPort { return e.addr }

// Start hands every datagram delivered from now on to h, as a batch of
// one, inside Step or RunUntil. An endpoint made by Attach already has its
// handler and cannot be started.
func (e *Endpoint) Start(h BatchHandler) error {
	switch {
	case h == nil:
		return errors.New("transport: start: nil handler")
	case e.detached:
		return fmt.Errorf("transport: start %s: %w", e.addr, ErrDetached)
	case e.handler != nil:
		return fmt.Errorf("transport: start %s: already started", e.addr)
	}
	var batch [1]Received
	e.handler = func(from netip.AddrPort, datagram []byte) {
		batch[0] = Received{From: from, Data: datagram}
		h(batch[:])
		batch[0] = Received{} // the datagram goes back to the pool
	}
	return nil
}

// SendBatch sends the datagrams one by one, as Send does. A datagram Send
// refuses is counted in Stats().WriteErrors and skipped; the first such
// error is returned after the rest went out.
func (e *Endpoint) SendBatch(datagrams []Datagram) error {
	var first error
	for _, d := range datagrams {
		if err := e.Send(d.To, d.Data); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Close detaches the endpoint (see Network.Detach). Calling it again does
// nothing, even once another endpoint has attached at the same address.
func (e *Endpoint) Close() error {
	if !e.detached {
		e.net.Detach(e.addr)
	}
	return nil
}

// Stats returns the counters of an endpoint made by Listen (one made by
// Attach counts nothing; Network.Stats counts for all). Datagrams lost or
// partitioned on their way count as sent, as they would on a socket;
// ReadErrors and Oversized stay zero (Send refuses datagrams that are too
// large).
func (e *Endpoint) Stats() Stats {
	if e.stats == nil {
		return Stats{}
	}
	return *e.stats
}

// Send copies datagram and schedules its delivery to to after the network's
// latency, unless it is lost or blocked by a partition. Like UDP, it reports
// no error for a datagram that will not arrive.
func (e *Endpoint) Send(to netip.AddrPort, datagram []byte) error {
	n := e.net
	if err := e.check(to, datagram); err != nil {
		if e.stats != nil {
			e.stats.WriteErrors++
		}
		return err
	}
	to = unmapAddrPort(to)
	if e.stats != nil {
		e.stats.DatagramsOut++
		e.stats.BytesOut += uint64(len(datagram))
	}
	n.stats.Sent++
	n.stats.BytesSent += uint64(len(datagram))
	if n.group != nil && n.group(e.addr) != n.group(to) {
		n.stats.Partitioned++
		return nil
	}
	if n.loss > 0 && n.rng.Float64() < n.loss {
		n.stats.Lost++
		return nil
	}
	var delay time.Duration
	if n.latencyFunc != nil {
		delay = max(n.latencyFunc(e.addr, to, n.rng), 0)
	} else {
		delay = n.latency
		if n.jitter > 0 {
			delay += time.Duration(n.rng.Int64N(int64(n.jitter)))
		}
	}
	var buf []byte
	if len(datagram) > 0 {
		buf = n.buffers.get(len(datagram))
		copy(buf, datagram)
	}
	at := n.now + int64(delay)
	if at < n.now { // a LatencyFunc that returns "forever" must not wrap around
		at = math.MaxInt64
	}
	n.schedule(at, eventBody{from: e.addr, to: to, datagram: buf})
	return nil
}

// At schedules fn to run at virtual time t, after the events already
// scheduled for t. A t before Now runs at Now. fn runs inside Step or
// RunUntil and may schedule more events.
func (n *Network) At(t time.Time, fn func()) {
	if fn == nil {
		return
	}
	// time.Time.Sub saturates, so a far-future t cannot wrap around.
	at := max(int64(t.Sub(n.start)), n.now)
	n.schedule(at, eventBody{fn: fn})
}

// check reports why Send refuses a datagram, or nil.
func (e *Endpoint) check(to netip.AddrPort, datagram []byte) error {
	switch {
	case e.detached:
		return fmt.Errorf("transport: send from %s: %w", e.addr, ErrDetached)
	case len(datagram) > e.net.maxDatagram:
		return fmt.Errorf("transport: send %d bytes to %s: %w (max %d)", len(datagram), to, ErrDatagramTooLarge, e.net.maxDatagram)
	case !unmapAddrPort(to).IsValid():
		return fmt.Errorf("transport: send to %s: invalid address", to)
	}
	return nil
}
