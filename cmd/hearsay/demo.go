package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/node"
	"github.com/hearsay-io/hearsay/registry/static"
)

const (
	// demoTopic carries the demo's sample messages; the walkthrough's curl
	// publishes on demo.hello, so both match "demo.>".
	demoTopic   = "demo.sample"
	demoPattern = "demo.>"
	// demoReportAfter is how long the demo waits for a message to arrive
	// everywhere before it reports where it did arrive.
	demoReportAfter = 5 * time.Second
	// demoForgetAfter is how long a reported message is remembered, so that
	// a late arrival is not reported as a new message.
	demoForgetAfter = time.Minute
)

type demoConfig struct {
	Nodes    int
	Duration time.Duration // 0: until interrupted
	BasePort int           // 0: ports chosen by the system
	LogLevel slog.Level
}

func (p *program) demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run a small cluster in this process on 127.0.0.1 and watch messages spread",
		Description: "Starts --nodes nodes, each with its HTTP API, prints their addresses and curl\n" +
			"commands to try, then publishes a sample message every second from a rotating\n" +
			"node and prints on how many nodes it arrived, and how fast. Nothing is written to disk.",
		Flags: []cli.Flag{
			stringFlag("nodes", "5", "number of nodes, `N` from 1 to 50"),
			stringFlag("duration", "0", "stop after `DURATION`; 0 runs until Ctrl-C"),
			stringFlag("base-port", "7600", "node i gossips on `PORT`+2i and serves its API on PORT+2i+1, or on free ports if taken; 0 always picks free ports"),
			stringFlag("log-level", "warn", "`LEVEL` of the nodes' logs on stderr: debug, info, warn or error"),
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			var cfg demoConfig
			var err error
			if cfg.Nodes, err = intValue(c, "nodes", 1, 50); err != nil {
				return err
			}
			if cfg.Duration, err = durationValue(c, "duration", 0); err != nil {
				return err
			}
			if cfg.BasePort, err = intValue(c, "base-port", 0, 65536-2*cfg.Nodes); err != nil {
				return err
			}
			if cfg.LogLevel, err = logLevelValue(c, "log-level"); err != nil {
				return err
			}
			return runDemo(c.Context, cfg, p.stdout, p.stderr)
		},
	}
}

// demoNode is one node of the demo with its API.
type demoNode struct {
	node     *node.Node
	peers    *static.Deferred // set once every node is bound: their ports are not known before
	listener net.Listener
	server   *http.Server
}

func runDemo(ctx context.Context, cfg demoConfig, stdout, stderr io.Writer) error {
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	logger := newLogger(stderr, cfg.LogLevel, "text")
	nodes, err := startDemoNodes(cfg, logger)
	if err != nil {
		return err
	}
	printWalkthrough(stdout, nodes)

	tracker := newArrivalTracker(nodes, stdout)
	var subscribers sync.WaitGroup
	for i, dn := range nodes {
		sub, err := dn.node.Subscribe(demoPattern)
		if err != nil {
			stopDemoNodes(nodes)
			return err
		}
		subscribers.Add(1)
		go func() {
			defer subscribers.Done()
			for m := range sub.C {
				tracker.arrived(i, m, time.Now())
			}
			if err := sub.Err(); errors.Is(err, node.ErrSlowSubscriber) {
				tracker.printf("%s: stopped watching: %v", dn.node.Name(), err)
			}
		}()
	}

	publishSamples(ctx, nodes, tracker)

	tracker.stop()
	stopDemoNodes(nodes)
	subscribers.Wait()
	sent, everywhere := tracker.summary()
	fmt.Fprintf(stdout, "\nstopped: %d sample messages published, %d arrived on all %d nodes\n", sent, everywhere, len(nodes))
	return nil
}

// publishSamples publishes a sample message every second, from each node in
// turn, until ctx ends.
func publishSamples(ctx context.Context, nodes []*demoNode, tracker *arrivalTracker) {
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for seq := 1; ; seq++ {
		from := nodes[(seq-1)%len(nodes)].node
		tracker.publishing(seq, time.Now())
		payload := fmt.Appendf(nil, "sample #%d from %s", seq, from.Name())
		if _, err := from.Publish(ctx, demoTopic, payload); err != nil {
			if ctx.Err() != nil {
				return
			}
			tracker.notPublished(seq, fmt.Sprintf("msg %d from %s: not published: %v", seq, from.Name(), err))
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// startDemoNodes binds every node and its API, gives each all the others as
// peers, and starts them.
func startDemoNodes(cfg demoConfig, logger *slog.Logger) ([]*demoNode, error) {
	var nodes []*demoNode
	fail := func(err error) ([]*demoNode, error) {
		stopDemoNodes(nodes)
		return nil, err
	}
	for i := range cfg.Nodes {
		dn := &demoNode{peers: &static.Deferred{}}
		nodes = append(nodes, dn)
		ncfg := node.Config{
			Name:     fmt.Sprintf("node-%d", i+1),
			Bind:     demoAddr(cfg.BasePort, 2*i),
			Filter:   node.FilterMemory,
			Registry: dn.peers,
			Logger:   logger,
		}
		n, err := node.New(ncfg)
		if err != nil && cfg.BasePort != 0 {
			ncfg.Bind = demoAddr(0, 0) // taken: any free port will do
			n, err = node.New(ncfg)
		}
		if err != nil {
			return fail(err)
		}
		dn.node = n
		dn.listener, err = net.Listen("tcp", demoAddr(cfg.BasePort, 2*i+1))
		if err != nil && cfg.BasePort != 0 {
			dn.listener, err = net.Listen("tcp", demoAddr(0, 0))
		}
		if err != nil {
			return fail(fmt.Errorf("API of %s: %w", ncfg.Name, err))
		}
	}
	addrs := make([]string, len(nodes))
	for i, dn := range nodes {
		addrs[i] = dn.node.Addr().String()
	}
	for _, dn := range nodes {
		reg, err := static.New(static.Config{Peers: addrs, Self: dn.node.Addr()})
		if err != nil {
			return fail(err)
		}
		dn.peers.Set(reg)
	}
	for _, dn := range nodes {
		if err := dn.node.Start(); err != nil {
			return fail(err)
		}
		// No process metrics: the nodes share the process.
		dn.server = newAPIServer(dn.node, node.APIConfig{}, logger)
		go dn.server.Serve(dn.listener)
	}
	return nodes, nil
}

func demoAddr(basePort, offset int) string {
	if basePort == 0 {
		return "127.0.0.1:0"
	}
	return fmt.Sprintf("127.0.0.1:%d", basePort+offset)
}

// stopDemoNodes stops what startDemoNodes started, APIs first.
func stopDemoNodes(nodes []*demoNode) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, dn := range nodes {
		switch {
		case dn.server != nil:
			if dn.server.Shutdown(ctx) != nil {
				dn.server.Close()
			}
		case dn.listener != nil:
			dn.listener.Close()
		}
	}
	for _, dn := range nodes {
		if dn.node != nil {
			dn.node.Close()
		}
	}
}

func printWalkthrough(w io.Writer, nodes []*demoNode) {
	st := nodes[0].node.Status()
	fmt.Fprintf(w, "hearsay demo: %d nodes gossiping on 127.0.0.1 (fanout %d, a round every %s)\n\n",
		len(nodes), st.Fanout, st.Interval)
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "  NODE\tGOSSIP (UDP)\tAPI (HTTP)")
	for _, dn := range nodes {
		fmt.Fprintf(tw, "  %s\t%s\thttp://%s\n", dn.node.Name(), dn.node.Addr(), dn.listener.Addr())
	}
	tw.Flush()

	api := func(i int) string { return "http://" + nodes[i%len(nodes)].listener.Addr().String() }
	name := func(i int) string { return nodes[i%len(nodes)].node.Name() }
	fmt.Fprintf(w, "\nTry it from another terminal:\n")
	fmt.Fprintf(w, "  # watch the messages arriving on %s\n", name(1))
	fmt.Fprintf(w, "  curl -N '%s/v1/messages/stream?topic=%s'\n", api(1), demoPattern)
	fmt.Fprintf(w, "  # publish a message on %s\n", name(0))
	fmt.Fprintf(w, "  curl -X POST '%s/v1/messages?topic=demo.hello' -d 'hi'\n", api(0))
	fmt.Fprintf(w, "  # the counters of %s\n", name(2))
	fmt.Fprintf(w, "  curl %s/v1/status\n", api(2))
	fmt.Fprintf(w, "  # the status page of %s, in a browser\n", name(0))
	fmt.Fprintf(w, "  %s/ui/\n", api(0))
	fmt.Fprintf(w, "\nPublishing a sample message every second from each node in turn; Ctrl-C stops.\n")
}

// arrivalTracker records on which nodes each message arrived and prints one
// line per message once it arrived everywhere, or after demoReportAfter.
type arrivalTracker struct {
	names   []string                 // node names by index
	origins map[gossip.NodeID]string // node names by ID
	done    chan struct{}            // closed by stop
	reports sync.WaitGroup           // report goroutines
	mu      sync.Mutex               // guards the fields below and out
	out     io.Writer
	started map[int]time.Time          // publish times of the samples not yet seen, by number
	msgs    map[gossip.MessageID]*trip // messages seen, until forgotten
	sent    int                        // samples published
	whole   int                        // samples that arrived on every node
}

// trip is one message's spread through the demo's nodes.
type trip struct {
	label    string    // "msg 3 from node-2"
	sample   bool      // one of the demo's samples
	start    time.Time // published
	on       []bool    // arrived, by node index
	count    int       // true entries of on
	last     time.Time // latest arrival
	complete chan struct{}
}

func newArrivalTracker(nodes []*demoNode, out io.Writer) *arrivalTracker {
	t := &arrivalTracker{
		origins: map[gossip.NodeID]string{}, done: make(chan struct{}), out: out,
		started: map[int]time.Time{}, msgs: map[gossip.MessageID]*trip{},
	}
	for _, dn := range nodes {
		t.names = append(t.names, dn.node.Name())
		t.origins[dn.node.ID()] = dn.node.Name()
	}
	return t
}

func (t *arrivalTracker) printf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.out, format+"\n", args...)
}

// publishing records the time sample seq is published at. It is called
// before Publish: the publishing node delivers to itself at once.
func (t *arrivalTracker) publishing(seq int, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.started[seq] = at
	t.sent++
}

func (t *arrivalTracker) notPublished(seq int, line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.started, seq)
	t.sent--
	fmt.Fprintln(t.out, line)
}

// arrived records that m arrived on node i.
func (t *arrivalTracker) arrived(i int, m gossip.Message, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tr, ok := t.msgs[m.ID]
	if !ok {
		select {
		case <-t.done:
			return // stopping: no new reports
		default:
		}
		t.forgetOld(at)
		tr = t.newTrip(m)
		t.msgs[m.ID] = tr
		t.reports.Add(1)
		go t.report(m.ID, tr)
	}
	if tr.on[i] {
		return
	}
	tr.on[i] = true
	tr.count++
	tr.last = at
	if tr.count == len(tr.on) {
		close(tr.complete)
	}
}

func (t *arrivalTracker) newTrip(m gossip.Message) *trip {
	origin, ok := t.origins[m.Origin]
	if !ok {
		origin = m.Origin.String()[:8]
	}
	tr := &trip{on: make([]bool, len(t.names)), complete: make(chan struct{}), start: m.Created}
	var seq int
	if m.Topic == demoTopic {
		if _, err := fmt.Sscanf(string(m.Payload), "sample #%d", &seq); err == nil {
			if start, ok := t.started[seq]; ok {
				delete(t.started, seq)
				tr.label, tr.sample, tr.start = fmt.Sprintf("msg %d from %s", seq, origin), true, start
				return tr
			}
		}
	}
	payload := string(m.Payload)
	if len(payload) > 40 {
		payload = payload[:40] + "…"
	}
	tr.label = fmt.Sprintf("%q on %s from %s", payload, m.Topic, origin)
	return tr
}

// forgetOld drops the messages seen more than demoForgetAfter ago, which
// were reported long since.
func (t *arrivalTracker) forgetOld(now time.Time) {
	for id, tr := range t.msgs {
		if now.Sub(tr.start) > demoForgetAfter {
			delete(t.msgs, id)
		}
	}
}

func (t *arrivalTracker) report(id gossip.MessageID, tr *trip) {
	defer t.reports.Done()
	timer := time.NewTimer(demoReportAfter)
	defer timer.Stop()
	select {
	case <-tr.complete:
	case <-timer.C:
	case <-t.done:
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	// In milliseconds with a decimal: with long-poll most arrive within one.
	line := fmt.Sprintf("%s (id %s…): arrived on %d/%d nodes in %.1fms", tr.label, id.String()[:8],
		tr.count, len(tr.on), float64(tr.last.Sub(tr.start))/float64(time.Millisecond))
	if tr.count < len(tr.on) {
		var missing []string
		for i, on := range tr.on {
			if !on {
				missing = append(missing, t.names[i])
			}
		}
		line += fmt.Sprintf(", not on %s after %s", strings.Join(missing, ", "), demoReportAfter)
	} else if tr.sample {
		t.whole++
	}
	fmt.Fprintln(t.out, line)
}

// stop drops the reports still waiting and waits for their goroutines.
func (t *arrivalTracker) stop() {
	t.mu.Lock()
	close(t.done) // under mu, so that arrived starts no report after it
	t.mu.Unlock()
	t.reports.Wait()
}

func (t *arrivalTracker) summary() (sent, everywhere int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sent, t.whole
}
