package gossip

import "net/netip"

// The outputs of an input step, collected in Ready for the caller. Their
// buffers are reused once the caller has taken them.

// Datagram is a datagram for the caller to send.
type Datagram struct {
	To   netip.AddrPort
	Data []byte
}

// Ready is what the caller must act on after an input.
type Ready struct {
	// Datagrams to send now, in order. Data is valid until the next call of
	// Tick, Handle or Push.
	Datagrams []Datagram
	// Messages accepted since the last Ready, in order of acceptance: deliver
	// each to the local subscribers. Each is accepted exactly once per seen
	// filter. A large message comes whole, once, when its last chunk
	// arrives (its Seq is its first chunk's); chunks never appear here. The
	// slice is reused after the next input; the Message values may be kept.
	Messages []Message
	// Validate are the messages waiting for the caller's verdict (with
	// Config.Validate): give each to the application and its answer to
	// Verdict. A large message comes whole. Reused like Messages.
	Validate []Message
}

// Ready returns the outputs accumulated since the last Ready.
func (c *Core) Ready() Ready {
	c.taken = true
	return c.out
}

// HasReady reports whether Ready has anything to act on.
func (c *Core) HasReady() bool {
	return len(c.out.Datagrams) > 0 || len(c.out.Messages) > 0 || len(c.out.Validate) > 0
}

// begin starts an input step: once the caller has taken the previous Ready,
// its buffers are reused.
func (c *Core) begin() {
	if !c.taken {
		return
	}
	c.taken = false
	c.out.Datagrams = c.out.Datagrams[:0]
	clear(c.out.Messages)
	c.out.Messages = c.out.Messages[:0]
	clear(c.out.Validate)
	c.out.Validate = c.out.Validate[:0]
	c.arena = c.arena[:0]
}

// emit queues the datagram arena[start:] for to.
func (c *Core) emit(to netip.AddrPort, start int) {
	c.out.Datagrams = append(c.out.Datagrams, Datagram{To: to, Data: c.arena[start:len(c.arena):len(c.arena)]})
	c.stats.DatagramsOut++
	c.stats.BytesOut += uint64(len(c.arena) - start)
}
