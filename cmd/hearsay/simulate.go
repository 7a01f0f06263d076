package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/simulations"
)

// simulateEnvPrefix prefixes the environment variables of simulate's
// flags: HEARSAY_SIMULATE_NODES. They are kept apart from the agent's, so
// that HEARSAY_PEERS or HEARSAY_FANOUT set for an agent do not change a
// simulation.
const simulateEnvPrefix = "HEARSAY_SIMULATE_"

func simulateFlag(name, value, usage string) *cli.StringFlag {
	f := &cli.StringFlag{
		Name:    name,
		Value:   value,
		Usage:   usage,
		EnvVars: []string{simulateEnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))},
	}
	if value != "" {
		f.DefaultText = value
	}
	return f
}

// simulateCommand is "hearsay simulate": a front end to simulations.Run.
// It needs nothing from the program but the app's writers.
func simulateCommand() *cli.Command {
	// The protocol's defaults are the core's, the run's the simulator's.
	def := gossip.DefaultConfig(gossip.NodeID{}, nil)
	return &cli.Command{
		Name:  "simulate",
		Usage: "run the real protocol on up to millions of simulated nodes and chart how a message spreads",
		Description: "Runs one gossip core per node on an in-memory network with a virtual clock, in this\n" +
			"process, deterministically for a given --seed: publishes --messages messages from random\n" +
			"nodes and runs round by round until every node up holds them (or --duration, or until\n" +
			"nothing more can arrive). Writes to --out: summary.json, rounds.csv (one line per round),\n" +
			"delivery.png (fraction delivered per round against theory), latency.csv and latency.png\n" +
			"(the CDF of the milliseconds from the publication to each node's delivery).\n" +
			"Specs (times count from the publication; docs/simulations.md has the details):\n" +
			"  --latency   1ms | uniform:1ms-20ms | normal:20ms,5ms | lognormal:20ms,0.5\n" +
			"  --partition at=0s,heal=2s,split=0.5   (nodes below split*N, the publishers' side, cut off from the rest)\n" +
			"  --churn     crash=10%@1s,restart=stateless@3s,join=5%@2s   (restart=stateful keeps the seen filter)\n" +
			"  --skew      10s: each node's clock off by a uniform draw from -10s to +10s\n" +
			"  --peers     full | graph:8 | dht | dht:bootstrap=3,warmup=10s,spread=0s,pool=128,ping=30s,k=16\n" +
			"              (dht: every node runs the real DHT registry, joining through the first bootstrap nodes;\n" +
			"              the tables fill for the warm-up before the publication)",
		Flags: []cli.Flag{
			simulateFlag("nodes", "1000", fmt.Sprintf("number `N` of simulated nodes, 2 to %d", simulations.MaxNodes)),
			simulateFlag("fanout", strconv.Itoa(def.Fanout), "pull from `K` random peers per round (1 to 64)"),
			simulateFlag("interval", def.Interval.String(), "`DURATION` of a gossip round"),
			simulateFlag("cache-rounds", strconv.Itoa(def.CacheRounds), "offer a new message to pullers for `N` rounds (1 to 100000)"),
			simulateFlag("long-poll", longPollText(gossip.DefaultConfig(gossip.NodeID{}, nil).MaxPark), "long-poll pulls: a peer keeps a node's pull open up to `DURATION` and sends it new messages as they arrive (docs/latency.md), as an agent does; 0: off, round-paced pulls only"),
			simulateFlag("sign", "false", "every node signs its messages with a key of its own and accepts only signed ones (the agent's --sign)"),
			simulateFlag("ae-interval", "0", "run Merkle anti-entropy every `DURATION` on every node (each keeps a message log); 0: gossip alone"),
			simulateFlag("loss", "0", "probability that a datagram is lost: `P` as 0.2 or 20%"),
			simulateFlag("latency", simulations.DefaultLatency.String(), "one-way delay: `SPEC` (see above)"),
			simulateFlag("partition", "", "split the network for a while: `SPEC` (see above)"),
			simulateFlag("churn", "", "crash, restart and add nodes: `SPEC` (see above)"),
			simulateFlag("skew", "0s", "offset each node's clock by up to ±`DURATION`"),
			simulateFlag("messages", "1", "publish `M` messages at once, from distinct random nodes"),
			simulateFlag("payload", strconv.Itoa(simulations.DefaultPayloadSize), "payload of each message in `BYTES` (1 to 1300)"),
			simulateFlag("peers", simulations.FullMembership{}.String(), "peer `MODEL`: full (everyone knows everyone), graph:D (random graph of degree D) or dht (a Kademlia table per node, options as dht:pool=32; see above)"),
			simulateFlag("seed", "1", "`SEED` of every random choice: the same seed gives the same run"),
			simulateFlag("duration", "0s", "run exactly this long after the publication (`DURATION`); 0 stops when done"),
			simulateFlag("max-rounds", strconv.Itoa(simulations.DefaultMaxRounds), "stop after `R` rounds at the latest"),
			simulateFlag("out", "simulation", "`DIR` to write summary.json, rounds.csv, delivery.png, latency.csv and latency.png into"),
		},
		Action: runSimulate,
	}
}

// simulateOptions is what simulate's flags ask for.
type simulateOptions struct {
	cfg simulations.Config
	out string
}

func simulateOptionsFromFlags(c *cli.Context) (simulateOptions, error) {
	var o simulateOptions
	cfg := &o.cfg
	var err error
	if err := noArgs(c); err != nil {
		return o, err
	}
	if cfg.Nodes, err = intValue(c, "nodes", 2, simulations.MaxNodes); err != nil {
		return o, err
	}
	if cfg.Gossip.Fanout, err = intValue(c, "fanout", 1, 64); err != nil {
		return o, err
	}
	// Ticks run on a one-millisecond calendar.
	if cfg.Gossip.Interval, err = durationValue(c, "interval", time.Duration(cfg.Gossip.Fanout)*time.Millisecond); err != nil {
		return o, err
	}
	if cfg.Gossip.CacheRounds, err = intValue(c, "cache-rounds", 1, 100_000); err != nil {
		return o, err
	}
	if cfg.Gossip.AEInterval, err = durationValue(c, "ae-interval", 0); err != nil {
		return o, err
	}
	if cfg.Gossip.MaxPark, err = longPollValue(c, "long-poll"); err != nil {
		return o, err
	}
	cfg.AntiEntropy = cfg.Gossip.AEInterval > 0
	if cfg.Sign, err = strconv.ParseBool(simulateValue(c, "sign")); err != nil {
		return o, flagErrorf("sign", "want true or false, got %q", simulateValue(c, "sign"))
	}
	if cfg.Loss, err = simulations.ParseFraction(simulateValue(c, "loss")); err != nil {
		return o, flagErrorf("loss", "%v", err)
	}
	if cfg.Latency, err = simulations.ParseLatency(simulateValue(c, "latency")); err != nil {
		return o, flagErrorf("latency", "%v", err)
	}
	if cfg.Partition, err = simulations.ParsePartition(simulateValue(c, "partition")); err != nil {
		return o, flagErrorf("partition", "%v", err)
	}
	if cfg.Churn, err = simulations.ParseChurn(simulateValue(c, "churn")); err != nil {
		return o, flagErrorf("churn", "%v", err)
	}
	if cfg.Messages, err = intValue(c, "messages", 1, cfg.Nodes); err != nil {
		return o, err
	}
	if cfg.PayloadSize, err = intValue(c, "payload", 1, 1300); err != nil {
		return o, err
	}
	seed := simulateValue(c, "seed")
	if cfg.Seed, err = strconv.ParseUint(seed, 10, 64); err != nil {
		return o, flagErrorf("seed", "want a whole number from 0 to 2^64-1, got %q", seed)
	}
	skew, err := durationValue(c, "skew", 0)
	if err != nil {
		return o, err
	}
	if skew > 0 {
		cfg.Skew = simulations.UniformSkew{Max: skew, Seed: cfg.Seed}
	}
	if cfg.Peers, err = simulations.ParsePeers(simulateValue(c, "peers"), cfg.Nodes, cfg.Seed); err != nil {
		return o, flagErrorf("peers", "%v", err)
	}
	if cfg.Duration, err = durationValue(c, "duration", 0); err != nil {
		return o, err
	}
	if cfg.MaxRounds, err = intValue(c, "max-rounds", 1, 1_000_000); err != nil {
		return o, err
	}
	if o.out = simulateValue(c, "out"); o.out == "" {
		return o, flagErrorf("out", "needs a directory")
	}
	cfg.MeasureMemory = true
	return o, nil
}

func simulateValue(c *cli.Context, name string) string { return strings.TrimSpace(c.String(name)) }

func runSimulate(c *cli.Context) error {
	o, err := simulateOptionsFromFlags(c)
	if err != nil {
		return err
	}
	stdout, stderr := c.App.Writer, c.App.ErrWriter
	if stdout == nil {
		stdout = os.Stdout
	}
	if stderr == nil {
		stderr = os.Stderr
	}
	bar := &progressBar{w: stderr}
	o.cfg.Progress = bar.update
	run := simulations.Run
	if o.cfg.Partition != nil {
		run = simulations.PartitionAndHeal // publishes in the first group
	}
	rep, err := run(o.cfg)
	bar.finish()
	if err != nil {
		return err
	}
	paths, err := rep.WriteFiles(o.out)
	if err != nil {
		return err
	}
	printSimulationSummary(stdout, &rep, paths)
	return nil
}

func printSimulationSummary(w io.Writer, r *simulations.Report, paths []string) {
	s := r.Summary()
	if r.RoundsToFull >= 0 {
		fmt.Fprintf(w, "%d nodes: every node up had every message after %d rounds (%v); theory: %d (sub-rounds), %d (pulls at their own phase), %d (classic pull)\n",
			s.Nodes, r.RoundsToFull, time.Duration(r.RoundsToFull)*r.Config.Gossip.Interval,
			s.TheoryRounds.SubRounds, s.TheoryRounds.Async, s.TheoryRounds.Classic)
	} else {
		fmt.Fprintf(w, "%d nodes: %.4f%% delivered at the end (%d of %d nodes up lack a message); run ended: %s\n",
			s.Nodes, 100*r.Delivered, r.Missing, r.NodesUp, r.Ended)
	}
	fmt.Fprintf(w, "per node: %.3f duplicates, %.0f bytes sent, %.1f datagrams; %d redelivered after stateless restarts\n",
		s.DuplicatesPerNode, s.BytesPerNode, s.DatagramsPerNode, r.Redelivered)
	printSimulationLatency(w, &s)
	if d := s.DHT; d != nil {
		fmt.Fprintf(w, "DHT: the nodes ran %v before the publication, from which rounds count; then %d of %d tables had joined, with %.1f answering contacts each (at least %d); DHT datagrams per node: %.0f in the warm-up, %.1f after\n",
			r.Config.Warmup, d.Joined, d.Tables, d.PeersMean, d.PeersMin, d.WarmupDatagramsPerNode, d.RunDatagramsPerNode)
	}
	if len(s.Dropped) > 0 {
		fmt.Fprintf(w, "dropped by the cores: %v\n", s.Dropped)
	}
	fmt.Fprintf(w, "%d rounds run, %.1fs virtual, %.1fs wall", s.RoundsRun, s.VirtualSeconds, s.WallSeconds)
	if m := r.Memory; m != nil {
		fmt.Fprintf(w, ", peak heap %.1f MiB (%.0f bytes per node)", float64(m.PeakHeapInuse)/(1<<20), m.PeakPerNode)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "wrote %s\n", strings.Join(paths, ", "))
}

// printSimulationLatency prints the delivery latency: its percentiles,
// the time to full delivery and, with several messages, its spread over
// the messages.
func printSimulationLatency(w io.Writer, s *simulations.Summary) {
	l := s.LatencyMs
	fmt.Fprintf(w, "latency from the publication, over %d deliveries to other nodes: p50 %d ms, p90 %d ms, p99 %d ms, max %d ms; ",
		s.LatencyDelivered, l.P50, l.P90, l.P99, l.Max)
	if s.FullDeliveryMs >= 0 {
		fmt.Fprintf(w, "every node up had every message %d ms after the publication\n", s.FullDeliveryMs)
	} else {
		fmt.Fprintf(w, "%d of %d (message, node) pairs never delivered\n", s.LatencyPairs-s.LatencyDelivered, s.LatencyPairs)
	}
	if len(s.MessageFullDeliveryMs) < 2 {
		return
	}
	var done []int64
	for _, ms := range s.MessageFullDeliveryMs {
		if ms >= 0 {
			done = append(done, ms)
		}
	}
	slices.Sort(done)
	fmt.Fprintf(w, "per message, time to every node up: ")
	if len(done) > 0 {
		fmt.Fprintf(w, "fastest %d ms, median %d ms, slowest %d ms", done[0], done[(len(done)-1)/2], done[len(done)-1])
	}
	if missing := len(s.MessageFullDeliveryMs) - len(done); missing > 0 {
		if len(done) > 0 {
			fmt.Fprint(w, "; ")
		}
		fmt.Fprintf(w, "%d of %d messages never reached every node up", missing, len(s.MessageFullDeliveryMs))
	}
	fmt.Fprintln(w)
}

// progressBar draws the simulation's progress on one line of stderr, at
// most ten times a second.
type progressBar struct {
	w       io.Writer
	began   time.Time
	last    time.Time
	current simulations.Progress
	pending bool // current is not drawn yet
	open    bool // a line is drawn and not ended
}

const progressWidth = 30

func (b *progressBar) update(p simulations.Progress) {
	now := time.Now()
	if b.began.IsZero() {
		b.began = now
	}
	if p.Phase != b.current.Phase {
		b.finish()
	}
	b.current, b.pending = p, true
	if now.Sub(b.last) >= 100*time.Millisecond {
		b.draw(now)
	}
}

func (b *progressBar) draw(now time.Time) {
	p := b.current
	var frac float64
	var label string
	switch p.Phase {
	case "build":
		frac = float64(p.Built) / float64(max(p.Nodes, 1))
		label = fmt.Sprintf("building nodes %d/%d", p.Built, p.Nodes)
	case "warmup":
		frac = float64(p.Elapsed) / float64(max(p.Warmup, 1))
		label = fmt.Sprintf("warm-up %v/%v virtual", p.Elapsed.Round(10*time.Millisecond), p.Warmup)
	default:
		frac = p.Delivered
		label = fmt.Sprintf("round %d: %.2f%% delivered", p.Round, 100*p.Delivered)
	}
	filled := min(max(int(frac*progressWidth), 0), progressWidth)
	fmt.Fprintf(b.w, "\r[%s%s] %-40s %6.1fs", strings.Repeat("#", filled), strings.Repeat("-", progressWidth-filled),
		label, now.Sub(b.began).Seconds())
	b.last, b.pending, b.open = now, false, true
}

// finish draws what is not drawn yet and ends the line.
func (b *progressBar) finish() {
	if b.pending {
		b.draw(time.Now())
	}
	if b.open {
		fmt.Fprintln(b.w)
		b.open = false
	}
}
