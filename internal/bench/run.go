package bench

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/hearsay-io/hearsay/security"
)

// RateUnlimited as Config.Rate publishes as fast as backpressure allows.
const RateUnlimited = -1

// Report is the outcome of a run: the configuration, with its defaults
// applied, and one Result per system in the order they ran.
type Report struct {
	Config  Config
	Results []Result
}

// Result is what one system did with the workload. Times are measured in
// this process, on the monotonic clock, or with Config.Processes by the
// node processes, on the machine's wall clock, and for GossipSub by its
// program, on its monotonic clock; the window measured runs from the first
// publish until every node holds every message, or until Config.Timeout.
type Result struct {
	System   System
	Nodes    int
	Messages int
	Size     int
	// Published is how many messages were published within the window.
	Published int
	// PublishTime runs from the first publish to the return of the last.
	PublishTime time.Duration
	// BackpressureWaits counts the publishes refused with
	// gossip.ErrBackpressure in the window, each retried after a pause (by
	// the node process with Config.Processes). Memberlist's queue never
	// refuses.
	BackpressureWaits uint64
	// Deliveries counts the (message, node) pairs delivered within the
	// window, the origin's own delivery included; Nodes × Messages is all.
	Deliveries int64
	// TimeToFull runs from the first publish to the last delivery; zero
	// unless every node received every message.
	TimeToFull time.Duration
	// Latencies of publish to delivery over every (message, node) pair
	// delivered, the message's origin left out; LatencySamples pairs.
	LatencyP50, LatencyP99, LatencyMax time.Duration
	LatencySamples                     int
	// BytesOut counts the bytes all nodes sent in the window: every datagram
	// (pulls, answers, anti-entropy, probes, gossip) and stream, sealing
	// included, IP and UDP headers not. GossipSub: every byte its hosts
	// wrote on their TCP connections, TLS and yamux included, IP and TCP
	// headers not.
	BytesOut uint64
	// HeaderBytes are the IP and UDP or TCP headers of what BytesOut
	// counts: 28 bytes per datagram; per TCP segment sent (the kernel's
	// count, pure ACKs included) 40, or 52 with timestamps. Memberlist's
	// streams count once closed. HeadersKnown is false where the kernel
	// did not say (outside Linux, for TCP).
	HeaderBytes  uint64
	HeadersKnown bool
	// Duplicates counts the copies of a message received by a node that
	// already had it.
	Duplicates uint64
	// Drops counts what the nodes dropped in the window, by reason, as each
	// system reports it. Hearsay: datagrams refused by its send limits or
	// security (node.Stats.Drops) and messages refused by the core
	// (gossip.Stats.Dropped). Memberlist: messages dropped because a node's
	// handoff queue was full ("handoff_queue_full"). GossipSub: RPCs and
	// messages its queues dropped, and messages it rejected (bench/gossipsub's
	// README).
	Drops map[string]uint64
	// CPU is the process's CPU time (user and system) in the window; every
	// node of the system shares the process. With Config.Processes it is
	// the sum over the node processes, this one left out. GossipSub: its
	// program's, in which all its hosts run. CPUKnown is false where it
	// could not be read.
	CPU      time.Duration
	CPUKnown bool
	// Window is the length of the window measured.
	Window time.Duration
}

// Expected is the number of deliveries when every node gets every message.
func (r Result) Expected() int64 { return int64(r.Nodes) * int64(r.Messages) }

// Complete reports whether every node received every message in time.
func (r Result) Complete() bool { return r.Deliveries == r.Expected() }

// DeliveredFraction is Deliveries / (Nodes × Messages).
func (r Result) DeliveredFraction() float64 {
	return float64(r.Deliveries) / float64(r.Expected())
}

// OverheadRatio is BytesOut / (Nodes × Messages × Size): the bytes sent per
// byte of payload the cluster had to deliver.
func (r Result) OverheadRatio() float64 {
	return float64(r.BytesOut) / (float64(r.Expected()) * float64(r.Size))
}

// WireOverheadRatio is (BytesOut + HeaderBytes) / (Nodes × Messages ×
// Size): OverheadRatio with every packet's IP and UDP or TCP headers. False
// if the headers are not known.
func (r Result) WireOverheadRatio() (float64, bool) {
	if !r.HeadersKnown {
		return 0, false
	}
	return float64(r.BytesOut+r.HeaderBytes) / (float64(r.Expected()) * float64(r.Size)), true
}

// DuplicateRatio is Duplicates / Deliveries.
func (r Result) DuplicateRatio() float64 {
	if r.Deliveries == 0 {
		return 0
	}
	return float64(r.Duplicates) / float64(r.Deliveries)
}

// CPUPerDelivery is CPU / Deliveries in microseconds: the CPU per delivered
// message per node. False if CPU is not known or nothing was delivered.
func (r Result) CPUPerDelivery() (float64, bool) {
	if !r.CPUKnown || r.Deliveries == 0 {
		return 0, false
	}
	return float64(r.CPU.Nanoseconds()) / 1e3 / float64(r.Deliveries), true
}

// PublishRate is the rate achieved, in messages per second: Published over
// PublishTime. False with fewer than two messages published.
func (r Result) PublishRate() (float64, bool) {
	if r.Published < 2 || r.PublishTime <= 0 {
		return 0, false
	}
	return float64(r.Published-1) / r.PublishTime.Seconds(), true
}

// Run runs the workload on each of cfg.Systems in turn, one cluster at a
// time, and reports what each did. It returns early with ctx's error.
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	var key *security.Key
	if !cfg.Plaintext {
		key = new(security.Key)
		if _, err := crand.Read(key[:]); err != nil {
			return Report{}, fmt.Errorf("bench: key: %w", err)
		}
	}
	rep := Report{Config: cfg}
	for _, system := range cfg.Systems {
		run := func() (Result, error) { return runSystem(ctx, cfg, system, key) }
		if system == GossipSub {
			progressf(cfg, "%s: running %s", system, cfg.GossipSubCommand[0])
			run = func() (Result, error) { return runGossipSub(ctx, cfg) }
		}
		res, err := run()
		if err != nil {
			return rep, err
		}
		rep.Results = append(rep.Results, res)
		runtime.GC() // the next system should not pay for this one's garbage
	}
	return rep, nil
}

// backpressurePause is how long a publisher waits after gossip.ErrBackpressure.
func backpressurePause(interval time.Duration) time.Duration {
	return max(interval/10, time.Millisecond)
}

func runSystem(ctx context.Context, cfg Config, system System, key *security.Key) (Result, error) {
	where := "on 127.0.0.1"
	if cfg.Processes {
		where = "on 127.0.0.1, a process each"
	}
	progressf(cfg, "%s: starting %d nodes %s", system, cfg.Nodes, where)
	rec := newRecorder(cfg.Nodes, cfg.Messages)
	var c cluster
	var err error
	if cfg.Processes {
		c, err = startProcesses(ctx, cfg, system, key, rec)
	} else {
		c, err = startLocal(ctx, cfg, system, key, rec)
	}
	if err != nil {
		return Result{}, err
	}
	rate := "as fast as possible"
	if cfg.Rate > 0 {
		rate = fmt.Sprintf("at %d/s", cfg.Rate)
	}
	progressf(cfg, "%s: publishing %d messages of %d bytes %s from %d origin(s)", system, cfg.Messages, cfg.Size, rate, cfg.Origins)

	origins := originNodes(cfg.Nodes, cfg.Origins)
	before, err := c.counters(ctx)
	if err != nil {
		return Result{}, errors.Join(err, c.close())
	}
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
	case <-c.failed():
	case <-ctx.Done():
	}
	end := rec.now()
	after, countersErr := c.counters(ctx)
	stopPublishing()
	pub.wg.Wait()
	closeErr := c.close()
	switch {
	case ctx.Err() != nil:
		return Result{}, ctx.Err()
	case closeErr != nil: // a node process's failure comes first: the publisher's error follows from it
		return Result{}, closeErr
	case pub.err != nil:
		return Result{}, pub.err
	case countersErr != nil:
		return Result{}, countersErr
	}

	delta := after.since(before)
	res := Result{
		System: system, Nodes: cfg.Nodes, Messages: cfg.Messages, Size: cfg.Size,
		BackpressureWaits: delta.waits,
		BytesOut:          delta.bytesOut,
		HeaderBytes:       delta.headerBytes, HeadersKnown: delta.headersKnown,
		Duplicates: delta.duplicates,
		Drops:      delta.drops,
		CPU:        delta.cpu, CPUKnown: delta.cpuKnown,
		Window: end - start,
	}
	rec.summarize(&res, origins, end)
	if timedOut {
		progressf(cfg, "%s: %.2f%% delivered when the timeout (%s) struck", system, 100*res.DeliveredFraction(), cfg.Timeout)
	} else {
		progressf(cfg, "%s: every node holds every message after %s", system, res.TimeToFull.Round(time.Millisecond))
	}
	return res, nil
}

// originNodes spreads origins publishing nodes evenly over the cluster.
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
	err    error         // the first publish error other than backpressure
	failed chan struct{} // closed with err set
}

// run publishes the messages of origin slot (index ≡ slot mod origins),
// message i at start + i/Rate, until done or ctx ends.
func (p *publishers) run(ctx context.Context, cfg Config, c cluster, rec *recorder, origins []int, slot int, start time.Duration) {
	defer p.wg.Done()
	origin := origins[slot]
	for i := slot; i < cfg.Messages; i += len(origins) {
		if cfg.Rate > 0 {
			due := start + time.Duration(float64(i)/float64(cfg.Rate)*float64(time.Second))
			if d := due - rec.now(); d > 0 {
				if err := c.flush(origin); err != nil {
					p.fail(ctx, fmt.Errorf("bench: publishing message %d: %w", i, err))
					return
				}
				if !sleep(ctx, d) {
					return
				}
			}
		}
		if err := c.publish(ctx, origin, i); err != nil {
			p.fail(ctx, err)
			return
		}
	}
	if err := c.flush(origin); err != nil {
		p.fail(ctx, fmt.Errorf("bench: publishing: %w", err))
	}
}

// fail records err, the first error of any publisher, unless ctx has ended:
// then err only says so.
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

// summarize fills in res's delivery and latency figures from what was
// recorded up to end.
func (r *recorder) summarize(res *Result, origins []int, end time.Duration) {
	first, lastPublished := time.Duration(-1), time.Duration(0)
	for i := range r.messages {
		if p := time.Duration(r.published[i].Load()); p > 0 && p <= end {
			res.Published++
			lastPublished = max(lastPublished, p)
			if s := time.Duration(r.sent[i].Load()); first < 0 || s < first {
				first = s
			}
		}
	}
	if first < 0 {
		return
	}
	res.PublishTime = lastPublished - first
	var last time.Duration
	latencies := make([]time.Duration, 0, r.nodes*r.messages)
	for node := range r.nodes {
		for i := range r.messages {
			a := r.arrived[node*r.messages+i].Load()
			if a == 0 || time.Duration(a-1) > end {
				continue
			}
			at := time.Duration(a - 1)
			res.Deliveries++
			last = max(last, at)
			if node != origins[i%len(origins)] {
				latencies = append(latencies, at-time.Duration(r.sent[i].Load()))
			}
		}
	}
	if res.Complete() {
		res.TimeToFull = last - first
	}
	res.LatencySamples = len(latencies)
	if len(latencies) > 0 {
		slices.Sort(latencies)
		res.LatencyP50 = percentile(latencies, 0.50)
		res.LatencyP99 = percentile(latencies, 0.99)
		res.LatencyMax = latencies[len(latencies)-1]
	}
}

// percentile is the nearest-rank percentile p (0 < p ≤ 1) of sorted values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func progressf(cfg Config, format string, args ...any) {
	if cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, format+"\n", args...)
	}
}
