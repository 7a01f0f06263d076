package main

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/transport"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	manet "github.com/multiformats/go-multiaddr/net"
)

// wire counts what one host writes on its TCP connections: every byte
// handed to the kernel (multistream negotiation, the TLS or Noise
// handshake and records, yamux frames and everything inside them:
// pubsub, identify, ping) and, from the kernel's TCP_INFO, the segments
// sent, from which IP and TCP headers are estimated.
type wire struct {
	bytes atomic.Uint64

	mu    sync.Mutex
	open  map[*countedConn]struct{}
	gone  segments // of the connections closed so far
	conns int      // connections ever opened
}

// segments is what the kernel reports for sockets: segments sent (pure
// ACKs included) and the IP and TCP header bytes they carried.
type segments struct {
	count   uint64
	headers uint64
	known   bool // false where TCP_INFO cannot be read
}

func (s segments) plus(o segments) segments {
	return segments{count: s.count + o.count, headers: s.headers + o.headers, known: s.known && o.known}
}

func newWire() *wire { return &wire{open: map[*countedConn]struct{}{}, gone: segments{known: true}} }

// wireCounters are a wire's figures at one moment.
type wireCounters struct {
	bytes    uint64
	segments segments
}

// counters reads the byte count and every open socket's TCP_INFO.
func (w *wire) counters() wireCounters {
	w.mu.Lock()
	defer w.mu.Unlock()
	total := w.gone
	for c := range w.open {
		total = total.plus(c.segments())
	}
	return wireCounters{bytes: w.bytes.Load(), segments: total}
}

func (w *wire) track(c manet.Conn) manet.Conn {
	cc := &countedConn{Conn: c, wire: w}
	w.mu.Lock()
	w.open[cc] = struct{}{}
	w.conns++
	w.mu.Unlock()
	return cc
}

func (w *wire) untrack(c *countedConn) {
	s := c.segments() // before the socket is closed: its counters go with it
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.open[c]; ok {
		delete(w.open, c)
		w.gone = w.gone.plus(s)
	}
}

// countedConn counts the bytes written on one TCP connection.
type countedConn struct {
	manet.Conn
	wire      *wire
	closeOnce sync.Once
}

func (c *countedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.wire.bytes.Add(uint64(max(n, 0)))
	return n, err
}

func (c *countedConn) Close() error {
	c.closeOnce.Do(func() { c.wire.untrack(c) })
	return c.Conn.Close()
}

// The TCP transport sets linger and keep-alive on accepted connections
// through these; they reach the socket underneath.

func (c *countedConn) SetLinger(sec int) error {
	if l, ok := c.Conn.(interface{ SetLinger(int) error }); ok {
		return l.SetLinger(sec)
	}
	return nil
}

func (c *countedConn) SetKeepAlive(on bool) error {
	if k, ok := c.Conn.(interface{ SetKeepAlive(bool) error }); ok {
		return k.SetKeepAlive(on)
	}
	return nil
}

func (c *countedConn) SetKeepAlivePeriod(d time.Duration) error {
	if k, ok := c.Conn.(interface{ SetKeepAlivePeriod(time.Duration) error }); ok {
		return k.SetKeepAlivePeriod(d)
	}
	return nil
}

// segments reads the socket's TCP_INFO.
func (c *countedConn) segments() segments {
	if sc, ok := c.Conn.(interface {
		SyscallConn() (syscallRawConn, error)
	}); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			return socketSegments(raw)
		}
	}
	return segments{}
}

// countedListener hands out counted connections.
type countedListener struct {
	manet.Listener
	wire *wire
}

func (l countedListener) Accept() (manet.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.wire.track(c), nil
}

// countingUpgrader sits between libp2p's TCP transport and its upgrader
// and counts every raw TCP connection, dialed or accepted, before the
// upgrader secures and multiplexes it.
type countingUpgrader struct {
	transport.Upgrader
	wire *wire
}

// UpgradeListener is the deprecated form of the two calls below; it counts
// as they do.
func (u countingUpgrader) UpgradeListener(t transport.Transport, l manet.Listener) transport.Listener {
	return u.UpgradeGatedMaListener(t, u.GateMaListener(l))
}

func (u countingUpgrader) GateMaListener(l manet.Listener) transport.GatedMaListener {
	return u.Upgrader.GateMaListener(countedListener{l, u.wire})
}

func (u countingUpgrader) Upgrade(ctx context.Context, t transport.Transport, c manet.Conn, dir network.Direction, p peer.ID, scope network.ConnManagementScope) (transport.CapableConn, error) {
	return u.Upgrader.Upgrade(ctx, t, u.wire.track(c), dir, p, scope)
}

// countedTCP returns the constructor, for libp2p.Transport, of libp2p's
// own TCP transport with its defaults, whose connections w counts.
func countedTCP(w *wire) func(transport.Upgrader, network.ResourceManager) (*tcp.TcpTransport, error) {
	return func(up transport.Upgrader, rcmgr network.ResourceManager) (*tcp.TcpTransport, error) {
		return tcp.NewTCPTransport(countingUpgrader{up, w}, rcmgr, nil)
	}
}

var _ net.Conn = (*countedConn)(nil)
