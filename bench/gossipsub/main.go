// Command gossipsub-bench runs hearsay bench's workload on GossipSub
// (go-libp2p-pubsub with its default parameters): N libp2p hosts on
// 127.0.0.1 in one process, one topic, the same payloads and rate, and
// prints the same figures, as a table or as hearsay bench's JSON for one
// system named gossipsub. `hearsay bench --systems ...,gossipsub` runs it
// as hearsay-bench-gossipsub. README.md says what is measured.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command: it returns the exit status, 2 for bad flags.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hearsay-bench-gossipsub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	fs.IntVar(&cfg.Nodes, "nodes", DefaultNodes, fmt.Sprintf("hosts, %d to %d", MinNodes, MaxNodes))
	fs.IntVar(&cfg.Messages, "messages", DefaultMessages, "messages published")
	fs.IntVar(&cfg.Size, "size", DefaultSize, fmt.Sprintf("payload bytes per message, %d to %d", MinSize, MaxSize))
	fs.IntVar(&cfg.Rate, "rate", DefaultRate, "messages per second, all origins together; 0: as fast as Publish returns")
	fs.IntVar(&cfg.Origins, "origins", DefaultOrigins, "publishing hosts, spread evenly; message i comes from origin i mod origins")
	fs.IntVar(&cfg.Peers, "peers", 0, "each host dials the next N hosts (by index, wrapping); 0: every host connects to every other")
	fs.DurationVar(&cfg.Timeout, "timeout", DefaultTimeout, "stop waiting for full delivery this long after the first publish")
	asJSON := fs.Bool("json", false, "print hearsay bench's JSON instead of the table")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hearsay-bench-gossipsub: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if cfg.Rate < 0 {
		fmt.Fprintf(stderr, "hearsay-bench-gossipsub: -rate must not be negative, got %d\n", cfg.Rate)
		return 2
	}
	if cfg.Rate == 0 {
		cfg.Rate = RateUnlimited
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := Run(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	write := WriteTable
	if *asJSON {
		write = WriteJSON
	}
	if err := write(stdout, cfg, res); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
