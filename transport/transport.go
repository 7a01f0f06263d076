package transport

import "net/netip"

// Transport is the datagram transport a node runs over: a UDP socket
// (*UDP) or an endpoint of an in-memory network (*Endpoint).
type Transport interface {
	// LocalAddr is the address this transport sends from and receives on.
	LocalAddr() netip.AddrPort
	// SendBatch sends datagrams in order. Like UDP it reports nothing about
	// a datagram that will not arrive; one that cannot be sent at all is
	// counted in Stats().WriteErrors and skipped, and the first such error
	// is returned once the rest went out. It keeps none of the datagrams'
	// bytes after it returns.
	SendBatch(datagrams []Datagram) error
	// Start hands the datagrams received from now on to h, one batch at a
	// time (never two calls at once), until Close. A transport is started
	// once.
	Start(h BatchHandler) error
	// Close stops the transport. Once it returns, h is not running and is
	// not called again, so Close must not be called from h. Calling it again
	// does nothing and returns nil.
	Close() error
	// Stats returns the transport's counters.
	Stats() Stats
}

// Handler receives one datagram. datagram is only valid during the call: the
// buffer is reused for the next datagram, so a handler that keeps any of it
// must copy it.
type Handler func(from netip.AddrPort, datagram []byte)

// Received is a datagram handed to a BatchHandler. Data is only valid
// during the handler's call.
type Received struct {
	From netip.AddrPort
	Data []byte
}

// BatchHandler receives the datagrams of one read: one or more.
type BatchHandler func(batch []Received)

// Datagram is a datagram for SendBatch.
type Datagram struct {
	To   netip.AddrPort
	Data []byte
}

// Stats counts what a transport did since it was opened.
type Stats struct {
	DatagramsIn  uint64 // datagrams handed to the handler
	BytesIn      uint64 // bytes handed to the handler
	DatagramsOut uint64 // datagrams sent without error
	BytesOut     uint64 // bytes sent without error
	ReadErrors   uint64 // failed reads other than the one caused by Close
	WriteErrors  uint64 // failed sends
	Oversized    uint64 // datagrams larger than the transport's maximum, dropped on arrival
}

var (
	_ Transport = (*UDP)(nil)
	_ Transport = (*Endpoint)(nil)
)
