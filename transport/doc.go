// Package transport moves datagrams between hearsay nodes.
//
// It has two implementations with the same shape:
//
//   - UDP is a real socket. Serve runs the read loop and hands every datagram
//     to a Handler; Send may be called from any goroutine.
//   - Network is an in-memory network driven by a virtual clock, with
//     configurable latency, jitter, loss and partitions. It is deterministic
//     for a given seed and fast enough to carry a million endpoints, so the
//     same protocol code runs in unit tests and in large simulations.
//
// Both deliver to a Handler and both have
//
//	Send(to netip.AddrPort, datagram []byte) error
//
// so code that needs to send can take a one-method interface, defined where
// it is consumed, and run over either.
//
// Addresses are netip.AddrPort values with IPv4-mapped IPv6 addresses
// unmapped, so that one peer is always one comparable map key.
package transport
