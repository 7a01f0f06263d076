// Package transport moves datagrams between hearsay nodes.
//
// Transport is what a node runs over. It has two implementations:
//
//   - UDP is a real socket. Start (or Serve, ServeBatch) runs the read loop
//     on a goroutine and hands the datagrams to a handler; Send and
//     SendBatch may be called from any goroutine.
//   - Endpoint is an address on a Network, an in-memory network driven by a
//     virtual clock, with configurable latency, jitter, loss and
//     partitions. It is deterministic for a given seed and fast enough to
//     carry a million endpoints, so the same protocol code runs in unit
//     tests and in large simulations. Nothing runs by itself: handlers and
//     timers (At, AfterFunc) run inside Network.Step and RunUntil, on the
//     caller's goroutine, so a whole cluster of nodes runs in one goroutine
//     on virtual time, with the Network as their clock (Now, AfterFunc).
//
// Both also have
//
//	Send(to netip.AddrPort, datagram []byte) error
//
// so code that only sends can take a one-method interface, defined where it
// is consumed, and run over either.
//
// Addresses are netip.AddrPort values with IPv4-mapped IPv6 addresses
// unmapped, so that one peer is always one comparable map key.
package transport
