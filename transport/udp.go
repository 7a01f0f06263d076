package transport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
)

// MaxUDPPayload is the largest payload of an IPv4 UDP datagram:
// 65535 - 20 (IP header) - 8 (UDP header).
const MaxUDPPayload = 65507

// UDPConfig configures a UDP transport. The zero value is ready to use.
type UDPConfig struct {
	// ReadBuffer is the socket receive buffer (SO_RCVBUF) in bytes. A large
	// buffer absorbs bursts while the handler is busy. Default (0): 4 MiB.
	// The kernel may cap it (net.core.rmem_max on Linux); that is fine. A
	// negative value leaves the system default untouched.
	ReadBuffer int
	// WriteBuffer is the socket send buffer (SO_SNDBUF) in bytes.
	// Default (0): 4 MiB. A negative value leaves the system default.
	WriteBuffer int
	// MaxDatagram is the largest datagram, in bytes, handed to the Handler.
	// Larger ones are dropped and counted in Stats.Oversized.
	// Default (0): MaxUDPPayload (65507).
	MaxDatagram int
}

const defaultSocketBuffer = 4 << 20

func (c UDPConfig) withDefaults() UDPConfig {
	if c.ReadBuffer == 0 {
		c.ReadBuffer = defaultSocketBuffer
	}
	if c.WriteBuffer == 0 {
		c.WriteBuffer = defaultSocketBuffer
	}
	if c.MaxDatagram <= 0 {
		c.MaxDatagram = MaxUDPPayload
	}
	return c
}

// UDP is a UDP socket carrying hearsay datagrams. Send is safe for
// concurrent use, also while Serve runs.
type UDP struct {
	conn        *net.UDPConn
	local       netip.AddrPort
	maxDatagram int
	closed      atomic.Bool

	lifeMu  sync.Mutex     // orders Start and Close
	started bool           // guarded by lifeMu
	serving sync.WaitGroup // the goroutine of Start

	batchMu    sync.Mutex // guards the SendBatch scratch below
	batchConn  *ipv4.PacketConn
	batchMsgs  []ipv4.Message
	batchAddrs []net.UDPAddr
	batchIPs   [][16]byte
	batchBufs  [][1][]byte

	datagramsIn  atomic.Uint64
	bytesIn      atomic.Uint64
	datagramsOut atomic.Uint64
	bytesOut     atomic.Uint64
	readErrors   atomic.Uint64
	writeErrors  atomic.Uint64
	oversized    atomic.Uint64
}

// ListenUDP opens a UDP socket on addr ("host:port"; ":0" picks a free port
// on every interface).
func ListenUDP(addr string, cfg UDPConfig) (*UDP, error) {
	cfg = cfg.withDefaults()
	laddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen udp %s: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen udp %s: %w", addr, err)
	}
	if cfg.ReadBuffer > 0 {
		if err := conn.SetReadBuffer(cfg.ReadBuffer); err != nil {
			conn.Close()
			return nil, fmt.Errorf("transport: listen udp %s: set read buffer: %w", addr, err)
		}
	}
	if cfg.WriteBuffer > 0 {
		if err := conn.SetWriteBuffer(cfg.WriteBuffer); err != nil {
			conn.Close()
			return nil, fmt.Errorf("transport: listen udp %s: set write buffer: %w", addr, err)
		}
	}
	var local netip.AddrPort
	if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		local = unmapAddrPort(ua.AddrPort())
	}
	// ipv4.PacketConn only adds sendmmsg to the socket; on a dual-stack
	// socket Linux takes IPv4 destinations in it as well.
	return &UDP{conn: conn, local: local, maxDatagram: cfg.MaxDatagram, batchConn: ipv4.NewPacketConn(conn)}, nil
}

// maxBatch bounds the datagrams of one sendmmsg call.
const maxBatch = 64

// SendBatch sends datagrams in order, as Send would one by one, with one
// system call per up to 64 of them where the platform allows (sendmmsg on
// Linux). A datagram that cannot be sent is counted in WriteErrors and
// skipped; the first such error is returned after the rest went out.
func (u *UDP) SendBatch(datagrams []Datagram) error {
	if len(datagrams) == 1 {
		return u.Send(datagrams[0].To, datagrams[0].Data)
	}
	u.batchMu.Lock()
	defer u.batchMu.Unlock()
	var first error
	for len(datagrams) > 0 {
		chunk := datagrams[:min(len(datagrams), maxBatch)]
		msgs := u.prepareBatch(chunk)
		sent, err := u.batchConn.WriteBatch(msgs, 0)
		if sent > 0 {
			u.datagramsOut.Add(uint64(sent))
			for _, d := range chunk[:sent] {
				u.bytesOut.Add(uint64(len(d.Data)))
			}
		}
		if err != nil || sent <= 0 {
			// The first unsent datagram failed: send it alone, which counts
			// and reports its error, then go on with the batch.
			sent = max(sent, 0)
			if serr := u.Send(chunk[sent].To, chunk[sent].Data); serr != nil && first == nil {
				first = serr
			}
			sent++
		}
		datagrams = datagrams[sent:]
	}
	return first
}

// prepareBatch fills the reusable messages and addresses for chunk.
func (u *UDP) prepareBatch(chunk []Datagram) []ipv4.Message {
	if len(u.batchMsgs) < maxBatch {
		u.batchMsgs = make([]ipv4.Message, maxBatch)
		u.batchAddrs = make([]net.UDPAddr, maxBatch)
		u.batchIPs = make([][16]byte, maxBatch)
		u.batchBufs = make([][1][]byte, maxBatch)
	}
	for i, d := range chunk {
		to := unmapAddrPort(d.To)
		a := &u.batchAddrs[i]
		if to.Addr().Is4() {
			ip4 := to.Addr().As4()
			copy(u.batchIPs[i][:4], ip4[:])
			a.IP = u.batchIPs[i][:4]
		} else {
			u.batchIPs[i] = to.Addr().As16()
			a.IP = u.batchIPs[i][:16]
		}
		a.Port, a.Zone = int(to.Port()), to.Addr().Zone()
		u.batchBufs[i][0] = d.Data
		u.batchMsgs[i] = ipv4.Message{Buffers: u.batchBufs[i][:], Addr: a}
	}
	return u.batchMsgs[:len(chunk)]
}

// LocalAddr is the address the socket is bound to, with the port the kernel
// chose when ":0" was asked for.
func (u *UDP) LocalAddr() netip.AddrPort { return u.local }

// Send writes one datagram to to. It does not block on the receiver; a full
// network or receiver drops the datagram silently, as UDP does.
func (u *UDP) Send(to netip.AddrPort, datagram []byte) error {
	// Unmapped so an IPv4 peer given as ::ffff:a.b.c.d also works on an
	// IPv4-only socket; Go maps it back for dual-stack sockets.
	n, err := u.conn.WriteToUDPAddrPort(datagram, unmapAddrPort(to))
	if err != nil {
		u.writeErrors.Add(1)
		return fmt.Errorf("transport: send to %s: %w", to, err)
	}
	u.datagramsOut.Add(1)
	u.bytesOut.Add(uint64(n))
	return nil
}

// readBuffers recycles Serve's read buffers across transports and restarts.
var readBuffers sync.Pool // of *[]byte

// readBatchSize is how many datagrams one recvmmsg call may return.
const readBatchSize = 8

// ServeBatch is Serve reading up to 8 datagrams per system call where the
// platform allows (recvmmsg on Linux), and handing each read's datagrams to
// h together, so that a busy node pays one wake-up (and can take its locks
// once) per batch rather than per datagram.
func (u *UDP) ServeBatch(h BatchHandler) error {
	if h == nil {
		return errors.New("transport: serve: nil handler")
	}
	size := u.maxDatagram + 1 // a read that fills it was truncated: too large
	bufs := make([][]byte, readBatchSize)
	msgs := make([]ipv4.Message, readBatchSize)
	for i := range msgs {
		bufp, _ := readBuffers.Get().(*[]byte)
		if bufp == nil || cap(*bufp) < size {
			b := make([]byte, size)
			bufp = &b
		}
		defer readBuffers.Put(bufp)
		bufs[i] = (*bufp)[:size]
		msgs[i].Buffers = bufs[i : i+1]
	}
	batch := make([]Received, 0, readBatchSize)
	var backoff time.Duration
	for {
		n, err := u.batchConn.ReadBatch(msgs, 0)
		if err != nil {
			if u.closed.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			u.readErrors.Add(1)
			// A persistent error must not turn the loop into a busy spin.
			backoff = min(max(2*backoff, time.Millisecond), 100*time.Millisecond)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		batch = batch[:0]
		for i := range msgs[:n] {
			m := &msgs[i]
			ua, ok := m.Addr.(*net.UDPAddr)
			if !ok {
				u.readErrors.Add(1)
				continue
			}
			if m.N > u.maxDatagram {
				u.oversized.Add(1)
				continue
			}
			u.datagramsIn.Add(1)
			u.bytesIn.Add(uint64(m.N))
			batch = append(batch, Received{From: unmapAddrPort(ua.AddrPort()), Data: bufs[i][:m.N]})
		}
		if len(batch) > 0 {
			h(batch)
		}
	}
}

// Serve reads datagrams and calls h for each, on the calling goroutine, one
// at a time: a slow handler delays reading (the socket buffer absorbs
// bursts). It blocks until Close and then returns nil. Transient read errors
// are counted in Stats.ReadErrors and the loop goes on. Serve may run on
// several goroutines at once to read in parallel; each has its own buffers.
// It is ServeBatch with the batches taken apart.
func (u *UDP) Serve(h Handler) error {
	if h == nil {
		return errors.New("transport: serve: nil handler")
	}
	return u.ServeBatch(func(batch []Received) {
		for _, r := range batch {
			h(r.From, r.Data)
		}
	})
}

// Start runs ServeBatch(h) on a goroutine of its own, until Close, which
// waits for it.
func (u *UDP) Start(h BatchHandler) error {
	if h == nil {
		return errors.New("transport: start: nil handler")
	}
	u.lifeMu.Lock()
	defer u.lifeMu.Unlock()
	switch {
	case u.closed.Load():
		return fmt.Errorf("transport: start udp %s: closed", u.local)
	case u.started:
		return fmt.Errorf("transport: start udp %s: already started", u.local)
	}
	u.started = true
	u.serving.Add(1)
	go func() {
		defer u.serving.Done()
		_ = u.ServeBatch(h) // its only error is a nil handler
	}()
	return nil
}

// Close closes the socket, makes Serve return and waits for the goroutine
// of Start to end. Calling it again does nothing and returns nil.
func (u *UDP) Close() error {
	u.lifeMu.Lock()
	var err error
	if !u.closed.Swap(true) {
		if cerr := u.conn.Close(); cerr != nil {
			err = fmt.Errorf("transport: close udp %s: %w", u.local, cerr)
		}
	}
	u.lifeMu.Unlock()
	u.serving.Wait()
	return err
}

// Stats returns the counters. Each is read atomically; together they are
// not one consistent snapshot while traffic flows.
func (u *UDP) Stats() Stats {
	return Stats{
		DatagramsIn:  u.datagramsIn.Load(),
		BytesIn:      u.bytesIn.Load(),
		DatagramsOut: u.datagramsOut.Load(),
		BytesOut:     u.bytesOut.Load(),
		ReadErrors:   u.readErrors.Load(),
		WriteErrors:  u.writeErrors.Load(),
		Oversized:    u.oversized.Load(),
	}
}

// unmapAddrPort turns ::ffff:a.b.c.d into a.b.c.d so that one IPv4 peer has
// one netip.AddrPort whether it reached a dual-stack or an IPv4 socket.
func unmapAddrPort(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().Is4In6() {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return ap
}
