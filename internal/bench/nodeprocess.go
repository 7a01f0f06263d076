package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// reportDelay is how long a node process gathers deliveries and publishes
// before writing them: one write every 2 ms at most, however fast messages
// arrive. The times reported are taken at arrival, so the delay shows in
// no latency.
const reportDelay = 2 * time.Millisecond

// ServeNode runs one node of a benchmark run with Config.Processes: it
// reads the parent's commands from in and writes its reports to out (the
// protocol is described in protocol.go) until in ends, because the parent
// closed it or died, or ctx ends. Then it stops the node and returns nil,
// or ctx's error. A malformed command, or a node that fails, is an error:
// ServeNode stops the node and returns it, and the process should exit
// with a non-zero status.
func ServeNode(ctx context.Context, in io.Reader, out io.Writer) (err error) {
	outer := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := newReportWriter(out)
	defer func() {
		if werr := w.close(); err == nil && werr != nil {
			err = fmt.Errorf("bench: node process: writing reports: %w", werr)
		}
	}()
	s := &nodeServer{w: w}
	defer func() {
		if cerr := s.stop(); err == nil {
			err = cerr
		}
	}()

	// The reader ends ctx when the input ends, after closing lines: a node
	// still joining its cluster then gives up at once.
	lines := make(chan []byte)
	var readErr error
	go func() {
		defer cancel()
		defer close(lines)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 4096), maxCommandLine)
		for sc.Scan() {
			select {
			case lines <- append([]byte(nil), sc.Bytes()...):
			case <-ctx.Done():
				return
			}
		}
		if errors.Is(sc.Err(), bufio.ErrTooLong) {
			readErr = protocolErrorf("a command longer than %d bytes", maxCommandLine)
		} else if sc.Err() != nil {
			readErr = fmt.Errorf("bench: node process: reading commands: %w", sc.Err())
		}
	}()

	for {
		var line []byte
		var ok bool
		select {
		case line, ok = <-lines:
		case err := <-s.publishErr:
			return err
		case <-ctx.Done():
			if outer.Err() != nil {
				return outer.Err() // the reader may be blocked in a read: do not wait for it
			}
			ok = false // the reader ended ctx, after closing lines
		}
		if !ok {
			if readErr != nil {
				return readErr
			}
			select {
			case err := <-s.publishErr:
				return err
			default:
				return nil // the parent closed the input: the run is over
			}
		}
		if err := s.handle(ctx, line); err != nil {
			if errors.Is(err, context.Canceled) && ctx.Err() != nil && outer.Err() == nil {
				continue // the input ended while the node was joining: stop as above
			}
			return err
		}
	}
}

// nodeServer is the state of ServeNode between commands.
type nodeServer struct {
	w    *reportWriter
	spec nodeSpec
	cfg  Config
	node benchNode // set by the node command
	// connected is set by the peers command: the node runs and may publish.
	connected bool

	// The publisher publishes the indices queued by publish commands, in
	// order. The queue is unbounded so that the command reader never
	// waits for a publish and always answers counters at once; its length
	// is bounded by the run's messages all the same.
	mu         sync.Mutex
	queue      []int
	wake       chan struct{} // capacity 1
	waits      atomic.Uint64
	publishErr chan error // capacity 1
	stopPub    context.CancelFunc
	pubDone    chan struct{}
}

func (s *nodeServer) handle(ctx context.Context, line []byte) error {
	cmd, err := parseCommand(line)
	if err != nil {
		return err
	}
	switch {
	case s.node == nil && cmd.kind != cmdNode:
		return protocolErrorf("the first command must be node, got %q", truncate(line))
	case s.node != nil && cmd.kind == cmdNode:
		return protocolErrorf("node: a node process runs one node")
	case !s.connected && (cmd.kind == cmdPublish || cmd.kind == cmdCounters):
		return protocolErrorf("%q before peers", truncate(line))
	case s.connected && cmd.kind == cmdPeers:
		return protocolErrorf("peers: given twice")
	}
	switch cmd.kind {
	case cmdNode:
		return s.start(cmd.spec)
	case cmdPeers:
		return s.connect(ctx, cmd.peers)
	case cmdPublish:
		if cmd.index >= s.cfg.Messages {
			return protocolErrorf("publish: message index %d out of range (the run has %d)", cmd.index, s.cfg.Messages)
		}
		s.mu.Lock()
		s.queue = append(s.queue, cmd.index)
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	case cmdCounters:
		c := s.node.counters()
		c.waits = s.waits.Load()
		c.cpu, c.cpuKnown = processCPU()
		s.w.report(report{kind: repCounters, counters: newNodeCounters(c)})
	}
	return nil
}

// start binds the node of spec and reports its address.
func (s *nodeServer) start(spec nodeSpec) error {
	cfg, key, err := spec.config()
	if err != nil {
		return err
	}
	n, err := newBenchNode(spec.System, cfg, key, spec.Index, newProcessArrivals(cfg.Messages, s.w))
	if err != nil {
		return err
	}
	s.spec, s.cfg, s.node = spec, cfg, n
	s.w.report(report{kind: repAddr, addr: n.addr()})
	return nil
}

// connect gives the node its peers, waits until it sees the whole cluster,
// reports ready and starts the publisher.
func (s *nodeServer) connect(ctx context.Context, peers []string) error {
	if len(peers) != s.cfg.Nodes {
		return protocolErrorf("peers: want the %d nodes' addresses, got %d", s.cfg.Nodes, len(peers))
	}
	if peers[s.spec.Index] != s.node.addr() {
		return protocolErrorf("peers: address %d is %s, not this node's (%s)", s.spec.Index, peers[s.spec.Index], s.node.addr())
	}
	if err := s.node.connect(peers); err != nil {
		return err
	}
	if err := waitReady(ctx, s.spec.System, []benchNode{s.node}, s.cfg.Nodes); err != nil {
		return err
	}
	s.connected = true
	s.wake = make(chan struct{}, 1)
	s.publishErr = make(chan error, 1)
	s.pubDone = make(chan struct{})
	pubCtx, stop := context.WithCancel(ctx)
	s.stopPub = stop
	go s.publishLoop(pubCtx)
	s.w.report(report{kind: repReady})
	return nil
}

// publishLoop publishes the queued messages until ctx ends.
func (s *nodeServer) publishLoop(ctx context.Context) {
	defer close(s.pubDone)
	pause := backpressurePause(s.cfg.Interval)
	wallNow := func() time.Duration { return time.Duration(time.Now().UnixNano()) }
	for {
		s.mu.Lock()
		queue := s.queue
		s.queue = nil
		s.mu.Unlock()
		for _, index := range queue {
			sent, returned, err := publishRetrying(ctx, s.node, index, s.cfg.Size, pause, wallNow, &s.waits)
			if err != nil {
				if ctx.Err() == nil {
					s.publishErr <- err
				}
				return
			}
			s.w.published(index, int64(sent), int64(returned))
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return
		}
	}
}

// stop stops the publisher and the node.
func (s *nodeServer) stop() error {
	if s.stopPub != nil {
		s.stopPub()
		<-s.pubDone
	}
	if s.node == nil {
		return nil
	}
	return s.node.close()
}

// processArrivals records a node process's arrivals: the first of each
// message is reported to the parent.
type processArrivals struct {
	seen []atomic.Bool
	w    *reportWriter
}

func newProcessArrivals(messages int, w *reportWriter) *processArrivals {
	return &processArrivals{seen: make([]atomic.Bool, messages), w: w}
}

func (a *processArrivals) delivered(_ int, index int) bool {
	at := time.Now().UnixNano()
	if index < 0 || index >= len(a.seen) || !a.seen[index].CompareAndSwap(false, true) {
		return false
	}
	a.w.delivered(delivery{index: index, at: at})
	return true
}

// reportWriter writes a node process's reports. Deliveries and publishes
// are gathered for reportDelay and written together; other reports are
// written at once, after whatever was gathered before them.
type reportWriter struct {
	out io.Writer

	mu      sync.Mutex
	buf     []byte // reports not yet written
	open    int    // deliveries on the delivered line at the end of buf; 0: none open
	urgent  bool   // buf holds a report to write without delay
	writing []byte // the buffer being written, swapped with buf
	err     error  // the first write error: what follows is dropped

	kick    chan struct{} // capacity 1: buf has something
	done    chan struct{} // closed by close
	stopped chan struct{} // closed when the writer has written everything
	once    sync.Once
}

func newReportWriter(out io.Writer) *reportWriter {
	w := &reportWriter{out: out, kick: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	go w.loop()
	return w
}

// delivered adds a delivery to the open delivered line, or opens one.
func (w *reportWriter) delivered(d delivery) {
	w.mu.Lock()
	if w.open == 0 {
		w.buf = append(w.buf, "delivered"...)
	}
	w.buf = appendDelivery(w.buf, d)
	if w.open++; w.open == maxDeliveriesPerLine {
		w.closeLineLocked()
	}
	w.mu.Unlock()
	w.signal()
}

// published reports a publish that succeeded.
func (w *reportWriter) published(index int, sent, returned int64) {
	w.add(report{kind: repPublished, index: index, sent: sent, returned: returned}, false)
}

// report writes r without delay.
func (w *reportWriter) report(r report) { w.add(r, true) }

func (w *reportWriter) add(r report, urgent bool) {
	w.mu.Lock()
	w.closeLineLocked()
	w.buf, _ = appendReport(w.buf, r) // r is well formed: this package made it
	w.urgent = w.urgent || urgent
	w.mu.Unlock()
	w.signal()
}

func (w *reportWriter) closeLineLocked() {
	if w.open > 0 {
		w.buf = append(w.buf, '\n')
		w.open = 0
	}
}

func (w *reportWriter) signal() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *reportWriter) loop() {
	defer close(w.stopped)
	for {
		select {
		case <-w.kick:
		case <-w.done:
			w.write()
			return
		}
		w.mu.Lock()
		urgent := w.urgent
		w.mu.Unlock()
		if !urgent {
			t := time.NewTimer(reportDelay)
			select {
			case <-t.C:
			case <-w.done:
			}
			t.Stop()
		}
		w.write()
	}
}

// write writes what was gathered.
func (w *reportWriter) write() {
	w.mu.Lock()
	w.closeLineLocked()
	w.buf, w.writing = w.writing[:0], w.buf
	w.urgent = false
	failed := w.err != nil
	w.mu.Unlock()
	if len(w.writing) == 0 || failed {
		return
	}
	if _, err := w.out.Write(w.writing); err != nil {
		w.mu.Lock()
		w.err = err
		w.mu.Unlock()
	}
}

// close writes what is left and returns the first write error.
func (w *reportWriter) close() error {
	w.once.Do(func() { close(w.done) })
	<-w.stopped
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
