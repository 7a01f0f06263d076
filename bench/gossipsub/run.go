package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// Result is what GossipSub did with the workload, with hearsay bench's
// definitions (docs/bench.md). The window runs from the first publish
// until every host holds every message, or until Config.Timeout.
type Result struct {
	Nodes, Messages, Size int
	// Published is how many messages were published within the window;
	// PublishTime runs from the first publish to the return of the last.
	Published   int
	PublishTime time.Duration
	// Deliveries counts the (message, host) pairs delivered within the
	// window, the origin's own delivery included.
	Deliveries int64
	// TimeToFull runs from the first publish to the last delivery; zero
	// unless every host received every message.
	TimeToFull time.Duration
	// Latencies of publish to delivery over every (message, host) pair
	// delivered, the message's origin left out.
	LatencyP50, LatencyP99, LatencyMax time.Duration
	LatencySamples                     int
	// BytesOut counts the bytes all hosts wrote on their TCP connections
	// in the window: everything libp2p sends, security and multiplexing
	// included, IP and TCP headers not.
	BytesOut uint64
	// Segments counts the TCP segments the hosts' sockets sent in the
	// window (pure ACKs included), HeaderBytes their IP and TCP headers;
	// SegmentsKnown is false where the kernel does not report them.
	Segments, HeaderBytes uint64
	SegmentsKnown         bool
	// Duplicates counts the copies of a message received by a host that
	// already had it.
	Duplicates uint64
	// Drops counts what pubsub dropped in the window, by reason.
	Drops map[string]uint64
	// CPU is the process's CPU time in the window; CPUKnown is false where
	// it could not be read.
	CPU      time.Duration
	CPUKnown bool
	// Window is the length of the window measured.
	Window time.Duration
}

// Expected is the number of deliveries when every host gets every message.
func (r Result) Expected() int64 { return int64(r.Nodes) * int64(r.Messages) }

// Complete reports whether every host received every message in time.
func (r Result) Complete() bool { return r.Deliveries == r.Expected() }

// DeliveredFraction is Deliveries / (Nodes × Messages).
func (r Result) DeliveredFraction() float64 { return float64(r.Deliveries) / float64(r.Expected()) }

// payloadBytes is Nodes × Messages × Size, the overhead ratios' denominator.
func (r Result) payloadBytes() float64 { return float64(r.Expected()) * float64(r.Size) }

// OverheadRatio is BytesOut / (Nodes × Messages × Size).
func (r Result) OverheadRatio() float64 { return float64(r.BytesOut) / r.payloadBytes() }

// OverheadRatioWithHeaders is (BytesOut + HeaderBytes) / (Nodes × Messages
// × Size); false when the headers are not known.
func (r Result) OverheadRatioWithHeaders() (float64, bool) {
	if !r.SegmentsKnown {
		return 0, false
	}
	return float64(r.BytesOut+r.HeaderBytes) / r.payloadBytes(), true
}

// DuplicateRatio is Duplicates / Deliveries.
func (r Result) DuplicateRatio() float64 {
	if r.Deliveries == 0 {
		return 0
	}
	return float64(r.Duplicates) / float64(r.Deliveries)
}

// CPUPerDelivery is CPU / Deliveries in microseconds; false if CPU is not
// known or nothing was delivered.
func (r Result) CPUPerDelivery() (float64, bool) {
	if !r.CPUKnown || r.Deliveries == 0 {
		return 0, false
	}
	return float64(r.CPU.Nanoseconds()) / 1e3 / float64(r.Deliveries), true
}

// PublishRate is Published over PublishTime, in messages per second;
// false with fewer than two messages published.
func (r Result) PublishRate() (float64, bool) {
	if r.Published < 2 || r.PublishTime <= 0 {
		return 0, false
	}
	return float64(r.Published-1) / r.PublishTime.Seconds(), true
}

// Run starts the hosts, runs the workload and stops them. Progress lines go
// to progress, if set.
func Run(ctx context.Context, cfg Config, progress io.Writer) (Result, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	progressf := func(format string, args ...any) {
		if progress != nil {
			fmt.Fprintf(progress, "gossipsub: "+format+"\n", args...)
		}
	}
	connections := "every other host"
	if cfg.Peers > 0 {
		connections = fmt.Sprintf("the next %d hosts", cfg.Peers)
	}
	progressf("starting %d hosts on 127.0.0.1, each dialing %s, and waiting for the mesh", cfg.Nodes, connections)
	rec := newRecorder(cfg.Nodes, cfg.Messages)
	c, err := startCluster(ctx, cfg, rec)
	if err != nil {
		return Result{}, err
	}
	rate := "as fast as possible"
	if cfg.Rate > 0 {
		rate = fmt.Sprintf("at %d/s", cfg.Rate)
	}
	progressf("publishing %d messages of %d bytes %s from %d origin(s)", cfg.Messages, cfg.Size, rate, cfg.Origins)

	origins := originNodes(cfg.Nodes, cfg.Origins)
	before := c.counters()
	start := rec.now()
	pubCtx, stopPublishing := context.WithCancel(ctx)
	defer stopPublishing()
	pub := publishers{failed: make(chan struct{})}
	for slot := range origins {
		pub.wg.Add(1)
		go pub.run(pubCtx, cfg, c, rec, origins, slot, start)
	}
	timeout := time.NewTimer(cfg.Timeout)
	defer timeout.Stop()
	timedOut := false
	select {
	case <-rec.complete:
	case <-timeout.C:
		timedOut = true
	case <-pub.failed:
	case <-ctx.Done():
	}
	end := rec.now()
	delta := c.counters().since(before)
	stopPublishing()
	pub.wg.Wait()
	closeErr := c.close()
	switch {
	case ctx.Err() != nil:
		return Result{}, ctx.Err()
	case pub.err != nil:
		return Result{}, pub.err
	case closeErr != nil:
		return Result{}, closeErr
	}
	res := Result{
		Nodes: cfg.Nodes, Messages: cfg.Messages, Size: cfg.Size,
		BytesOut: delta.bytes,
		Segments: delta.segments.count, HeaderBytes: delta.segments.headers, SegmentsKnown: delta.segments.known,
		Duplicates: delta.duplicates, Drops: delta.drops,
		CPU: delta.cpu, CPUKnown: delta.cpuKnown,
		Window: end - start,
	}
	rec.summarize(&res, origins, end)
	if timedOut {
		progressf("%.2f%% delivered when the timeout (%s) struck", 100*res.DeliveredFraction(), cfg.Timeout)
	} else {
		progressf("every host holds every message after %s", res.TimeToFull.Round(time.Millisecond))
	}
	return res, nil
}

// originNodes spreads origins publishing hosts evenly over the cluster.
func originNodes(nodes, origins int) []int {
	idx := make([]int, origins)
	for i := range idx {
		idx[i] = i * nodes / origins
	}
	return idx
}

// publishers are the goroutines publishing the workload, one per origin.
type publishers struct {
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error         // the first publish error
	failed chan struct{} // closed with err set
}

// run publishes the messages of origin slot (index ≡ slot mod origins),
// message i at start + i/Rate, until done or ctx ends. A publisher that
// falls behind catches up in a burst.
func (p *publishers) run(ctx context.Context, cfg Config, c *cluster, rec *recorder, origins []int, slot int, start time.Duration) {
	defer p.wg.Done()
	topic := c.hosts[origins[slot]].topic
	for i := slot; i < cfg.Messages; i += len(origins) {
		if cfg.Rate > 0 {
			due := start + time.Duration(float64(i)/float64(cfg.Rate)*float64(time.Second))
			if !sleep(ctx, due-rec.now()) {
				return
			}
		}
		sent := rec.now()
		if err := topic.Publish(ctx, newPayload(i, sent, cfg.Size)); err != nil {
			p.fail(ctx, fmt.Errorf("gossipsub bench: publishing message %d: %w", i, err))
			return
		}
		rec.sent[i].Store(int64(sent))
		rec.published[i].Store(int64(rec.now()))
	}
}

// fail records err, the first error of any publisher, unless ctx has ended.
func (p *publishers) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
		close(p.failed)
	}
}

// sleep waits for d, or less if ctx ends first; it reports whether ctx is
// still live. Short waits use time.Sleep: a timer and a select per message
// would cost more than the publish at high rates.
func sleep(ctx context.Context, d time.Duration) bool {
	switch {
	case d <= 0:
	case d < 20*time.Millisecond:
		time.Sleep(d)
	default:
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return ctx.Err() == nil
}
