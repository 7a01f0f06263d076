package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/hearsay-io/hearsay/security"
)

// memberlistNode is one memberlist instance on 127.0.0.1 and its delegate,
// spreading user messages the way serf does: memberlist only hands a node's
// queued broadcasts to its gossip, so the node re-queues, in its own
// TransmitLimitedQueue, every message it receives for the first time.
type memberlistNode struct {
	index     int
	nodes     int // the cluster's size
	messages  int
	list      atomic.Pointer[memberlist.Memberlist] // set once Create returns
	queue     *memberlist.TransmitLimitedQueue
	transport *countingTransport
	rec       arrivals
	// originSendsOnce: see Config.originSendsOnce.
	originSendsOnce bool
	// sendOnce makes the node forget its broadcasts once they have been
	// handed to gossip one time (Config.originSendsOnce).
	sendOnce   atomic.Bool
	duplicates atomic.Uint64
	logs       dropCounter
}

// newMemberlistNode binds instance index of cfg's cluster; it joins the
// others in connect.
func newMemberlistNode(cfg Config, key *security.Key, index int, rec arrivals) (*memberlistNode, error) {
	n := &memberlistNode{index: index, nodes: cfg.Nodes, messages: cfg.Messages, rec: rec,
		originSendsOnce: cfg.originSendsOnce}
	transport, err := newCountingTransport()
	if err != nil {
		return nil, fmt.Errorf("bench: memberlist node %d: %w", index, err)
	}
	n.transport = transport
	mc := memberlist.DefaultLANConfig()
	mc.Name = fmt.Sprintf("bench-%d", index)
	mc.Transport = transport
	port := transport.GetAutoBindPort()
	mc.BindAddr, mc.BindPort = "127.0.0.1", port
	mc.AdvertiseAddr, mc.AdvertisePort = "127.0.0.1", port
	mc.GossipInterval = cfg.Interval
	mc.GossipNodes = cfg.Fanout
	mc.Delegate = n
	mc.LogOutput = &n.logs
	if key != nil {
		mc.SecretKey = append([]byte(nil), key[:]...) // 32 bytes: AES-256-GCM
	}
	n.queue = &memberlist.TransmitLimitedQueue{
		RetransmitMult: mc.RetransmitMult,
		NumNodes: func() int {
			if l := n.list.Load(); l != nil {
				return l.NumMembers()
			}
			return 1
		},
	}
	list, err := memberlist.Create(mc)
	if err != nil {
		transport.Shutdown()
		return nil, fmt.Errorf("bench: memberlist node %d: %w", index, err)
	}
	n.list.Store(list)
	return n, nil
}

func (n *memberlistNode) addr() string { return n.transport.addr() }

// connect joins the cluster through the first node of addrs, unless this
// node is the first.
func (n *memberlistNode) connect(addrs []string) error {
	if len(addrs) == 0 || addrs[0] == n.addr() {
		return nil
	}
	if _, err := n.list.Load().Join(addrs[:1]); err != nil {
		return fmt.Errorf("bench: memberlist node %d joining: %w", n.index, err)
	}
	return nil
}

// ready reports whether the instance sees every node as a member.
func (n *memberlistNode) ready() bool { return n.list.Load().NumMembers() == n.nodes }

func (n *memberlistNode) publish(_ context.Context, payload []byte) error {
	if n.originSendsOnce {
		n.sendOnce.Store(true)
	}
	if i, ok := messageIndex(payload, n.messages); ok {
		n.rec.delivered(n.index, i)
	}
	n.queue.QueueBroadcast(broadcast(payload))
	return nil
}

func (n *memberlistNode) counters() counters {
	c := counters{bytesOut: n.transport.bytesOut.Load(), duplicates: n.duplicates.Load(), drops: map[string]uint64{},
		headerBytes: n.transport.headerBytes.Load(), headersKnown: !n.transport.segmentsUnknown.Load()}
	if full := n.logs.queueFull.Load(); full > 0 {
		c.drops["handoff_queue_full"] = full
	}
	return c
}

func (n *memberlistNode) close() error {
	if err := n.list.Load().Shutdown(); err != nil {
		return fmt.Errorf("bench: memberlist shutdown: %w", err)
	}
	return nil
}

// The memberlist.Delegate of a node.

func (n *memberlistNode) NodeMeta(int) []byte { return nil }

// NotifyMsg records a received message and, the first time, queues it for
// this node's own gossip: without that, memberlist would never forward it.
func (n *memberlistNode) NotifyMsg(msg []byte) {
	i, ok := messageIndex(msg, n.messages)
	if !ok {
		return
	}
	if !n.rec.delivered(n.index, i) {
		n.duplicates.Add(1)
		return
	}
	n.queue.QueueBroadcast(broadcast(append([]byte(nil), msg...))) // msg is reused after the call
}

func (n *memberlistNode) GetBroadcasts(overhead, limit int) [][]byte {
	msgs := n.queue.GetBroadcasts(overhead, limit)
	if len(msgs) > 0 && n.sendOnce.Load() {
		n.queue.Reset()
	}
	return msgs
}

func (n *memberlistNode) LocalState(bool) []byte              { return nil }
func (n *memberlistNode) MergeRemoteState(buf []byte, _ bool) {}

// broadcast is one user message in a TransmitLimitedQueue. Every message is
// distinct, so it invalidates nothing, and says so (UniqueBroadcast) to
// spare the queue a scan per insert.
type broadcast []byte

func (b broadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b broadcast) Message() []byte                       { return b }
func (b broadcast) Finished()                             {}
func (b broadcast) UniqueBroadcast()                      {}

// countingTransport is memberlist's NetTransport on 127.0.0.1 counting every
// byte it sends: packets, and what is written on streams in either
// direction (joins, push/pull state exchanges, TCP fallback probes).
type countingTransport struct {
	*memberlist.NetTransport
	bytesOut atomic.Uint64
	// headerBytes are the IP and UDP headers of the packets sent and the
	// IP and TCP headers of the segments of closed streams (tcpSegments);
	// segmentsUnknown is set once a stream's could not be read.
	headerBytes     atomic.Uint64
	segmentsUnknown atomic.Bool
	streams         chan net.Conn
	done            chan struct{} // closed when Shutdown begins
	stopped         chan struct{} // closed when the NetTransport has stopped
	stopOnce        sync.Once
}

var _ memberlist.NodeAwareTransport = (*countingTransport)(nil)

// newCountingTransport binds a NetTransport to a free port of 127.0.0.1.
// The UDP socket takes the TCP listener's port, which may be taken for UDP:
// then it tries another.
func newCountingTransport() (*countingTransport, error) {
	var nt *memberlist.NetTransport
	var err error
	for range 10 {
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{"127.0.0.1"},
			Logger:    log.New(io.Discard, "", 0),
		})
		if err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	t := &countingTransport{NetTransport: nt, streams: make(chan net.Conn),
		done: make(chan struct{}), stopped: make(chan struct{})}
	go t.forwardStreams()
	return t, nil
}

func (t *countingTransport) addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(t.GetAutoBindPort()))
}

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	at, err := t.NetTransport.WriteToAddress(b, a)
	if err == nil {
		t.bytesOut.Add(uint64(len(b)))
		t.headerBytes.Add(udpIPv4Headers)
	}
	return at, err
}

func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *countingTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	conn, err := t.NetTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, transport: t}, nil
}

func (t *countingTransport) StreamCh() <-chan net.Conn { return t.streams }

// forwardStreams hands the accepted connections on, wrapped to count what
// this node writes on them. Once shutting down it closes them instead: the
// NetTransport's accept loop must never block on a send, or its Shutdown
// would wait for it forever.
func (t *countingTransport) forwardStreams() {
	for {
		select {
		case <-t.done:
			t.drainStreams()
			return
		case conn := <-t.NetTransport.StreamCh():
			select {
			case t.streams <- &countingConn{Conn: conn, transport: t}:
			case <-t.done:
				conn.Close()
				t.drainStreams()
				return
			}
		}
	}
}

func (t *countingTransport) drainStreams() {
	for {
		select {
		case conn := <-t.NetTransport.StreamCh():
			conn.Close()
		case <-t.stopped:
			return
		}
	}
}

func (t *countingTransport) Shutdown() error {
	var err error
	t.stopOnce.Do(func() {
		close(t.done)
		err = t.NetTransport.Shutdown()
		close(t.stopped)
	})
	return err
}

// dropCounter is a memberlist instance's log output. It keeps nothing but
// the count of messages dropped because the handoff queue was full, which
// memberlist reports only as a log line.
type dropCounter struct {
	queueFull atomic.Uint64
}

func (d *dropCounter) Write(line []byte) (int, error) {
	if bytes.Contains(line, []byte("handler queue full")) {
		d.queueFull.Add(1)
	}
	return len(line), nil
}

// countingConn counts the bytes written to a stream and, when it closes,
// the headers of the segments it sent.
type countingConn struct {
	net.Conn
	transport *countingTransport
	closeOnce sync.Once
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.transport.bytesOut.Add(uint64(n))
	return n, err
}

func (c *countingConn) Close() error {
	c.closeOnce.Do(func() {
		if headers, ok := tcpHeaderBytes(c.Conn); ok {
			c.transport.headerBytes.Add(headers)
		} else {
			c.transport.segmentsUnknown.Store(true)
		}
	})
	return c.Conn.Close()
}
