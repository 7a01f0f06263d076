package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/security"
)

// cluster is one system's running nodes, as the workload drives them: all
// in this process (localCluster) or each in its own (processCluster).
type cluster interface {
	// publish publishes message index from node origin, retrying after a
	// pause while the node refuses with gossip.ErrBackpressure, and
	// records when it was sent and when the publish returned. A
	// processCluster only hands the message on, perhaps buffered, and
	// learns the rest later.
	publish(ctx context.Context, origin, index int) error
	// flush hands over what publish buffered for origin; the publisher
	// calls it before it sleeps.
	flush(origin int) error
	// counters returns what the nodes did so far, summed.
	counters(ctx context.Context) (counters, error)
	// failed is closed when the cluster cannot go on (a node process
	// died); close then returns why.
	failed() <-chan struct{}
	// close stops every node; it returns the first error.
	close() error
}

// arrivals records the messages nodes receive: the recorder in this
// process, a node process's reports to its parent in the other.
type arrivals interface {
	// delivered records that node received message index, now, and
	// reports whether it is the first time.
	delivered(node, index int) bool
}

// benchNode is one node of either system, started alone: in this process
// among the others, or as the only node of a node process. newBenchNode
// binds it; connect, once every node is bound, tells it the others.
type benchNode interface {
	// addr is the node's address on 127.0.0.1, host:port.
	addr() string
	// connect gives the node every node's address, in index order, its
	// own included, and starts it.
	connect(addrs []string) error
	// ready reports whether the node sees the whole cluster: the workload
	// waits for every node to be ready.
	ready() bool
	// publish publishes payload, which is the node's from then on.
	// gossip.ErrBackpressure: retry later.
	publish(ctx context.Context, payload []byte) error
	// counters returns what the node did so far.
	counters() counters
	// close stops the node.
	close() error
}

// newBenchNode binds node index of system's cluster, described by cfg,
// recording its arrivals in rec.
func newBenchNode(system System, cfg Config, key *security.Key, index int, rec arrivals) (benchNode, error) {
	switch system {
	case Hearsay:
		return newHearsayNode(cfg, key, index, rec)
	case Memberlist:
		return newMemberlistNode(cfg, key, index, rec)
	}
	return nil, fmt.Errorf("%w: unknown system %q", ErrConfig, system)
}

// readyTimeout bounds the wait for every node to be ready: memberlist
// instances must all see each other before the workload starts.
const readyTimeout = 30 * time.Second

// waitReady waits until every node of nodes, of a cluster of size nodes,
// is ready, polling.
func waitReady(ctx context.Context, system System, nodes []benchNode, size int) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		all := true
		for _, n := range nodes {
			if !n.ready() {
				all = false
				break
			}
		}
		if all {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: %s: not every node saw all %d members within %s", system, size, readyTimeout)
		}
		if !sleep(ctx, 20*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// counters are cumulative counters of one node or, summed, of a cluster.
type counters struct {
	bytesOut uint64 // bytes sent on the wire, every packet and stream included
	// headerBytes are the IP and UDP or TCP headers of what was sent;
	// headersKnown is false where they could not be counted.
	headerBytes  uint64
	headersKnown bool
	duplicates   uint64 // copies of a message received by a node that already had it
	// drops counts what the nodes dropped, by reason: datagrams and
	// messages, whatever the system reports.
	drops map[string]uint64
	// waits counts the publishes refused with gossip.ErrBackpressure.
	waits uint64
	// cpu is the CPU time (user and system) of the process, or the sum
	// over the processes, running the nodes; cpuKnown is false where it
	// could not be read.
	cpu      time.Duration
	cpuKnown bool
}

// add adds o's counts to c's, CPU time included.
func (c *counters) add(o counters) {
	c.bytesOut += o.bytesOut
	c.headerBytes += o.headerBytes
	c.headersKnown = c.headersKnown && o.headersKnown
	c.duplicates += o.duplicates
	c.waits += o.waits
	if c.drops == nil {
		c.drops = map[string]uint64{}
	}
	for reason, n := range o.drops {
		c.drops[reason] += n
	}
	c.cpu += o.cpu
	c.cpuKnown = c.cpuKnown && o.cpuKnown
}

// since returns the counts from before to c.
func (c counters) since(before counters) counters {
	d := counters{bytesOut: c.bytesOut - before.bytesOut, duplicates: c.duplicates - before.duplicates,
		headerBytes: c.headerBytes - before.headerBytes, headersKnown: c.headersKnown && before.headersKnown,
		waits: c.waits - before.waits, drops: map[string]uint64{},
		cpu: c.cpu - before.cpu, cpuKnown: c.cpuKnown && before.cpuKnown}
	for reason, n := range c.drops {
		if n > before.drops[reason] {
			d.drops[reason] = n - before.drops[reason]
		}
	}
	return d
}

// localCluster is a system's nodes, all in this process.
type localCluster struct {
	nodes []benchNode
	rec   *recorder
	size  int
	pause time.Duration // after a publish refused with backpressure
	waits atomic.Uint64
}

// startLocal starts cfg.Nodes nodes of system in this process, connects
// them and waits until each is ready.
func startLocal(ctx context.Context, cfg Config, system System, key *security.Key, rec *recorder) (*localCluster, error) {
	c := &localCluster{rec: rec, size: cfg.Size, pause: backpressurePause(cfg.Interval)}
	for i := range cfg.Nodes {
		n, err := newBenchNode(system, cfg, key, i, rec)
		if err != nil {
			c.close()
			return nil, err
		}
		c.nodes = append(c.nodes, n)
	}
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.addr()
	}
	for _, n := range c.nodes {
		if err := n.connect(addrs); err != nil {
			c.close()
			return nil, err
		}
	}
	if err := waitReady(ctx, system, c.nodes, len(c.nodes)); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *localCluster) publish(ctx context.Context, origin, index int) error {
	sent, returned, err := publishRetrying(ctx, c.nodes[origin], index, c.size, c.pause, c.rec.now, &c.waits)
	if err != nil {
		return err
	}
	c.rec.sent[index].Store(int64(sent))
	c.rec.published[index].Store(int64(returned))
	return nil
}

func (c *localCluster) flush(int) error { return nil }

func (c *localCluster) counters(context.Context) (counters, error) {
	sum := counters{drops: map[string]uint64{}, waits: c.waits.Load(), headersKnown: true}
	for _, n := range c.nodes {
		sum.add(n.counters())
	}
	sum.cpu, sum.cpuKnown = processCPU()
	return sum, nil
}

func (c *localCluster) failed() <-chan struct{} { return nil }

// close stops the nodes in parallel: memberlist's Shutdown waits for its
// transport's goroutines.
func (c *localCluster) close() error {
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Go(func() { errs[i] = n.close() })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// publishRetrying publishes message index, of size bytes, from n. While n
// refuses with gossip.ErrBackpressure it counts a wait in waits, pauses
// for the refusal's RetryAfter (or pause if it has none) and tries again with a new send time. It returns the send time of the
// publish that succeeded and the time it returned, both read from now.
func publishRetrying(ctx context.Context, n benchNode, index, size int, pause time.Duration,
	now func() time.Duration, waits *atomic.Uint64) (sent, returned time.Duration, err error) {
	payload := newPayload(index, 0, size)
	for {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		sent = now()
		setSent(payload, sent)
		err := n.publish(ctx, payload)
		if err == nil {
			return sent, now(), nil
		}
		if !errors.Is(err, gossip.ErrBackpressure) {
			return 0, 0, fmt.Errorf("bench: publishing message %d: %w", index, err)
		}
		waits.Add(1)
		wait := pause
		if d, ok := gossip.RetryAfterOf(err); ok && d > 0 {
			wait = d // the core's own estimate of when its backlog will have spread
		}
		if !sleep(ctx, wait) {
			return 0, 0, ctx.Err()
		}
	}
}
