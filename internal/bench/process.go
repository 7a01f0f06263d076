package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearsay-io/hearsay/security"
)

// Bounds of the waits on node processes: whatever they do, a run ends.
const (
	// bindTimeout bounds the wait for a started process's addr report:
	// starting a Go program and binding a socket take milliseconds.
	bindTimeout = 30 * time.Second
	// answerTimeout bounds the wait for a counters report, and a write of
	// commands to a process that does not read them.
	answerTimeout = 10 * time.Second
	// shutdownGrace is how long node processes get to exit once their input
	// is closed, before they are killed.
	shutdownGrace = 10 * time.Second
	// commandBuffer is how many bytes of publish commands are buffered for
	// an origin before they are written without waiting for a flush.
	commandBuffer = 4096
	// stderrTail is how much of a node process's standard error is kept
	// for the error that reports its failure.
	stderrTail = 2048
)

// processCluster is a system's nodes, each in its own process running
// ServeNode, started with Config.NodeCommand.
type processCluster struct {
	system System
	rec    *recorder
	procs  []*nodeProcess

	closing  atomic.Bool // set by close: processes exiting now do not fail the run
	failOnce sync.Once
	failErr  error
	failedCh chan struct{} // closed with failErr set
}

// nodeProcess is one node process, seen from the parent.
type nodeProcess struct {
	c      *processCluster
	index  int
	cmd    *exec.Cmd
	stdin  *os.File // our end of its input: writes can have a deadline
	stderr *tailWriter

	mu  sync.Mutex // guards buf and writes to stdin
	buf []byte     // commands not yet written

	addr     chan string       // capacity 1: the addr report
	ready    chan struct{}     // closed by the ready report
	counters chan nodeCounters // capacity 1: the answer to a counters command
	exited   chan struct{}     // closed when the process has exited and exitErr is set
	exitErr  error
}

// startProcesses starts cfg.Nodes node processes of system, connects them
// and waits until each reports ready.
func startProcesses(ctx context.Context, cfg Config, system System, key *security.Key, rec *recorder) (*processCluster, error) {
	c := &processCluster{system: system, rec: rec, failedCh: make(chan struct{})}
	for i := range cfg.Nodes {
		p, err := c.spawn(cfg, i)
		if err != nil {
			return nil, errors.Join(err, c.close())
		}
		c.procs = append(c.procs, p)
		line, err := appendCommand(nil, command{kind: cmdNode, spec: newNodeSpec(cfg, system, key, i)})
		if err == nil {
			err = p.send(line, true)
		}
		if err != nil {
			return nil, c.abort(err)
		}
	}

	addrs := make([]string, len(c.procs))
	deadline := time.NewTimer(bindTimeout)
	defer deadline.Stop()
	for i, p := range c.procs {
		select {
		case addrs[i] = <-p.addr:
		case <-c.failedCh:
			return nil, c.abort(nil)
		case <-ctx.Done():
			return nil, c.abort(ctx.Err())
		case <-deadline.C:
			return nil, c.abort(fmt.Errorf("%s: no address within %s", p.name(), bindTimeout))
		}
	}
	peers, err := appendCommand(nil, command{kind: cmdPeers, peers: addrs})
	if err != nil {
		return nil, c.abort(err)
	}
	for _, p := range c.procs {
		if err := p.send(peers, true); err != nil {
			return nil, c.abort(err)
		}
	}
	// Each process gives up after readyTimeout itself; this is a margin.
	deadline.Reset(readyTimeout + answerTimeout)
	for _, p := range c.procs {
		select {
		case <-p.ready:
		case <-c.failedCh:
			return nil, c.abort(nil)
		case <-ctx.Done():
			return nil, c.abort(ctx.Err())
		case <-deadline.C:
			return nil, c.abort(fmt.Errorf("%s: not ready within %s", p.name(), readyTimeout+answerTimeout))
		}
	}
	return c, nil
}

// spawn starts node process index.
func (c *processCluster) spawn(cfg Config, index int) (*nodeProcess, error) {
	p := &nodeProcess{c: c, index: index, stderr: &tailWriter{},
		addr: make(chan string, 1), ready: make(chan struct{}), counters: make(chan nodeCounters, 1),
		exited: make(chan struct{})}
	// The input is an os.Pipe of our own, not StdinPipe's, so that writes
	// to it can have a deadline.
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("bench: %s: %w", p.name(), err)
	}
	p.stdin = stdinW
	p.cmd = exec.Command(cfg.NodeCommand[0], cfg.NodeCommand[1:]...)
	p.cmd.Stdin = stdinR
	p.cmd.Stderr = p.stderr
	p.cmd.WaitDelay = shutdownGrace
	setNodeProcAttr(p.cmd)
	stdout, err := p.cmd.StdoutPipe()
	if err == nil {
		err = p.cmd.Start()
	}
	stdinR.Close() // the child has its copy
	if err != nil {
		stdinW.Close()
		return nil, fmt.Errorf("bench: %s: starting %s: %w", p.name(), cfg.NodeCommand[0], err)
	}
	go p.readReports(stdout, cfg.Messages)
	return p, nil
}

// name names the node in errors: "hearsay node 3 (pid 4242)".
func (p *nodeProcess) name() string {
	if p.cmd != nil && p.cmd.Process != nil {
		return fmt.Sprintf("%s node %d (pid %d)", p.c.system, p.index, p.cmd.Process.Pid)
	}
	return fmt.Sprintf("%s node %d", p.c.system, p.index)
}

// readReports reads the process's reports until it closes its output,
// then waits for it to exit. A malformed report kills it.
func (p *nodeProcess) readReports(stdout io.Reader, messages int) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), maxReportLine)
	var r report
	var bad error
	for sc.Scan() {
		if err := p.handle(sc.Bytes(), &r, messages); err != nil {
			bad = fmt.Errorf("bench: %s sent a bad report: %w", p.name(), err)
			break
		}
	}
	if bad == nil && errors.Is(sc.Err(), bufio.ErrTooLong) {
		bad = fmt.Errorf("bench: %s sent a report longer than %d bytes", p.name(), maxReportLine)
	}
	if bad != nil {
		p.c.fail(bad)
		p.cmd.Process.Kill()
		io.Copy(io.Discard, stdout) // Wait must not close the pipe before we stop reading it
	}
	err := p.cmd.Wait()
	if !p.c.closing.Load() {
		switch {
		case err != nil:
			p.c.fail(fmt.Errorf("bench: %s exited: %w%s", p.name(), err, p.stderr.suffix()))
		default:
			p.c.fail(fmt.Errorf("bench: %s exited before the run ended%s", p.name(), p.stderr.suffix()))
		}
	}
	p.exitErr = err
	close(p.exited)
}

// handle dispatches one report.
func (p *nodeProcess) handle(line []byte, r *report, messages int) error {
	if err := parseReport(line, r); err != nil {
		return err
	}
	rec := p.c.rec
	switch r.kind {
	case repAddr:
		select {
		case p.addr <- r.addr:
		default:
			return protocolErrorf("addr: reported twice")
		}
	case repReady:
		select {
		case <-p.ready:
			return protocolErrorf("ready: reported twice")
		default:
			close(p.ready)
		}
	case repPublished:
		if r.index >= messages {
			return protocolErrorf("published: message index %d out of range", r.index)
		}
		rec.sent[r.index].Store(int64(rec.sinceStart(r.sent)))
		rec.published[r.index].Store(int64(max(rec.sinceStart(r.returned), 1)))
	case repDelivered:
		for _, d := range r.deliveries {
			if d.index >= messages {
				return protocolErrorf("delivered: message index %d out of range", d.index)
			}
			rec.deliveredAt(p.index, d.index, rec.sinceStart(d.at))
		}
	case repCounters:
		select {
		case p.counters <- r.counters:
		default:
			return protocolErrorf("counters: reported unasked")
		}
	}
	return nil
}

// send appends line to what is buffered for the process and, with flush
// or once commandBuffer bytes wait, writes it all.
func (p *nodeProcess) send(line []byte, flush bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, line...)
	if !flush && len(p.buf) < commandBuffer {
		return nil
	}
	return p.writeLocked()
}

func (p *nodeProcess) flush() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writeLocked()
}

func (p *nodeProcess) writeLocked() error {
	if len(p.buf) == 0 {
		return nil
	}
	p.stdin.SetWriteDeadline(time.Now().Add(answerTimeout))
	_, err := p.stdin.Write(p.buf)
	p.buf = p.buf[:0]
	if err == nil {
		return nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("bench: %s read no command for %s", p.name(), answerTimeout)
	} else {
		// A process that died closed its input: its exit says more.
		select {
		case <-p.exited:
		case <-time.After(time.Second):
		}
		err = fmt.Errorf("bench: %s: writing commands: %w", p.name(), err)
	}
	p.c.fail(err)
	return err
}

func (c *processCluster) publish(_ context.Context, origin, index int) error {
	return c.procs[origin].send(appendPublish(nil, index), false)
}

func (c *processCluster) flush(origin int) error { return c.procs[origin].flush() }

// counters asks every process for its counters and sums them: the CPU
// figure is the sum of the processes' CPU times.
func (c *processCluster) counters(ctx context.Context) (counters, error) {
	ask, _ := appendCommand(nil, command{kind: cmdCounters})
	for _, p := range c.procs {
		if err := p.send(ask, true); err != nil {
			return counters{}, c.failure(err)
		}
	}
	sum := counters{drops: map[string]uint64{}, cpuKnown: true, headersKnown: true}
	deadline := time.NewTimer(answerTimeout)
	defer deadline.Stop()
	for _, p := range c.procs {
		select {
		case nc := <-p.counters:
			sum.add(nc.counters())
		case <-c.failedCh:
			return counters{}, c.failErr
		case <-ctx.Done():
			return counters{}, ctx.Err()
		case <-deadline.C:
			return counters{}, fmt.Errorf("bench: %s reported no counters within %s", p.name(), answerTimeout)
		}
	}
	return sum, nil
}

func (c *processCluster) failed() <-chan struct{} { return c.failedCh }

// fail records the cluster's first failure.
func (c *processCluster) fail(err error) {
	c.failOnce.Do(func() {
		c.failErr = err
		close(c.failedCh)
	})
}

// failure returns the cluster's first failure if there was one, else err.
func (c *processCluster) failure(err error) error {
	select {
	case <-c.failedCh:
		return c.failErr
	default:
		return err
	}
}

// abort closes the cluster after a failure to start and returns what
// explains it best: the first failure of a process, else err.
func (c *processCluster) abort(err error) error {
	err = c.failure(err)
	if cerr := c.close(); err == nil {
		err = cerr
	}
	return err
}

// close closes every process's input, which ends it, waits shutdownGrace
// for them to exit and kills those that have not. It returns the first
// failure of the run, else the first process that did not exit cleanly.
func (c *processCluster) close() error {
	c.closing.Store(true)
	for _, p := range c.procs {
		p.stdin.Close()
	}
	grace := time.NewTimer(shutdownGrace)
	defer grace.Stop()
	killed := map[int]bool{}
	for _, p := range c.procs {
		select {
		case <-p.exited:
		case <-grace.C:
			for _, q := range c.procs {
				select {
				case <-q.exited:
				default:
					q.cmd.Process.Kill()
					killed[q.index] = true
				}
			}
			grace.Reset(time.Hour) // fired once; the kills end every wait below
		}
	}
	for _, p := range c.procs {
		<-p.exited
	}
	if err := c.failure(nil); err != nil {
		return err
	}
	for _, p := range c.procs {
		switch {
		case killed[p.index]:
			return fmt.Errorf("bench: %s did not exit within %s of the end of its input, and was killed%s", p.name(), shutdownGrace, p.stderr.suffix())
		case p.exitErr != nil:
			return fmt.Errorf("bench: %s exited: %w%s", p.name(), p.exitErr, p.stderr.suffix())
		}
	}
	return nil
}

// tailWriter keeps the end of what a process writes to its standard error.
type tailWriter struct {
	mu   sync.Mutex
	tail []byte
}

func (t *tailWriter) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tail = append(t.tail, b...)
	if over := len(t.tail) - stderrTail; over > 0 {
		t.tail = append(t.tail[:0], t.tail[over:]...)
	}
	return len(b), nil
}

// suffix is ": " and the last lines written, on one line, or "".
func (t *tailWriter) suffix() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.Join(strings.Fields(strings.ReplaceAll(string(t.tail), "\n", "; ")), " ")
	s = strings.Trim(s, "; ")
	if s == "" {
		return ""
	}
	return ": " + s
}
