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

// memberlistJoinTimeout bounds the wait for every instance to see the whole
// cluster before the workload starts.
const memberlistJoinTimeout = 30 * time.Second

// memberlistCluster is N memberlist instances on 127.0.0.1 spreading user
// messages the way serf does: memberlist only hands a node's queued
// broadcasts to its gossip, so each node re-queues, in its own
// TransmitLimitedQueue, every message it receives for the first time.
type memberlistCluster struct {
	nodes []*memberlistNode
	// originSendsOnce: see Config.originSendsOnce.
	originSendsOnce bool
}

// memberlistNode is one memberlist instance and its delegate.
type memberlistNode struct {
	index     int
	list      atomic.Pointer[memberlist.Memberlist] // set once Create returns
	queue     *memberlist.TransmitLimitedQueue
	transport *countingTransport
	rec       *recorder
	// sendOnce makes the node forget its broadcasts once they have been
	// handed to gossip one time (Config.originSendsOnce).
	sendOnce   atomic.Bool
	duplicates atomic.Uint64
	logs       dropCounter
}

func startMemberlist(cfg Config, key *security.Key, rec *recorder) (*memberlistCluster, error) {
	c := &memberlistCluster{}
	for i := range cfg.Nodes {
		n := &memberlistNode{index: i, rec: rec}
		transport, err := newCountingTransport()
		if err != nil {
			c.close()
			return nil, fmt.Errorf("bench: memberlist node %d: %w", i, err)
		}
		n.transport = transport
		mc := memberlist.DefaultLANConfig()
		mc.Name = fmt.Sprintf("bench-%d", i)
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
			c.close()
			return nil, fmt.Errorf("bench: memberlist node %d: %w", i, err)
		}
		n.list.Store(list)
		c.nodes = append(c.nodes, n)
	}
	first := c.nodes[0].transport.addr()
	for i, n := range c.nodes[1:] {
		if _, err := n.list.Load().Join([]string{first}); err != nil {
			c.close()
			return nil, fmt.Errorf("bench: memberlist node %d joining: %w", i+1, err)
		}
	}
	deadline := time.Now().Add(memberlistJoinTimeout)
	for !c.converged() {
		if time.Now().After(deadline) {
			c.close()
			return nil, fmt.Errorf("bench: memberlist: not every node saw all %d members within %s", cfg.Nodes, memberlistJoinTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.originSendsOnce = cfg.originSendsOnce
	return c, nil
}

// converged reports whether every instance sees every other as a member.
func (c *memberlistCluster) converged() bool {
	for _, n := range c.nodes {
		if n.list.Load().NumMembers() != len(c.nodes) {
			return false
		}
	}
	return true
}

func (c *memberlistCluster) publish(_ context.Context, origin int, payload []byte) error {
	n := c.nodes[origin]
	if c.originSendsOnce {
		n.sendOnce.Store(true)
	}
	n.rec.delivered(n.index, payload)
	n.queue.QueueBroadcast(broadcast(payload))
	return nil
}

func (c *memberlistCluster) counters() counters {
	sum := counters{drops: map[string]uint64{}}
	for _, n := range c.nodes {
		sum.bytesOut += n.transport.bytesOut.Load()
		sum.duplicates += n.duplicates.Load()
		if full := n.logs.queueFull.Load(); full > 0 {
			sum.drops["handoff_queue_full"] += full
		}
	}
	return sum
}

func (c *memberlistCluster) close() error {
	var first error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, n := range c.nodes {
		wg.Add(1)
		go func() { // Shutdown waits for the transport's goroutines: in parallel
			defer wg.Done()
			if err := n.list.Load().Shutdown(); err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("bench: memberlist shutdown: %w", err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// The memberlist.Delegate of a node.

func (n *memberlistNode) NodeMeta(int) []byte { return nil }

// NotifyMsg records a received message and, the first time, queues it for
// this node's own gossip: without that, memberlist would never forward it.
func (n *memberlistNode) NotifyMsg(msg []byte) {
	if !n.rec.delivered(n.index, msg) {
		if _, ok := n.rec.parseIndex(msg); ok {
			n.duplicates.Add(1)
		}
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
	streams  chan net.Conn
	done     chan struct{} // closed when Shutdown begins
	stopped  chan struct{} // closed when the NetTransport has stopped
	stopOnce sync.Once
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
	return &countingConn{Conn: conn, bytesOut: &t.bytesOut}, nil
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
			case t.streams <- &countingConn{Conn: conn, bytesOut: &t.bytesOut}:
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

// countingConn counts the bytes written to a stream.
type countingConn struct {
	net.Conn
	bytesOut *atomic.Uint64
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.bytesOut.Add(uint64(n))
	return n, err
}
