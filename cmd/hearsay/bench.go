package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hearsay-io/hearsay/internal/bench"
	"github.com/hearsay-io/hearsay/security"
)

func (p *program) benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure hearsay against hashicorp/memberlist (and GossipSub, when built) on the same workload, on 127.0.0.1",
		Description: "Starts --nodes hearsay nodes on 127.0.0.1, in this process or, with --processes, each in\n" +
			"a process of its own (this program's hidden bench-node command), publishes --messages messages\n" +
			"of --size bytes at --rate from --origins nodes, and measures delivery, time to 100%,\n" +
			"publish-to-delivery latency, bytes on the wire per payload byte, duplicates and CPU;\n" +
			"then does the same with as many memberlist instances spreading the messages through\n" +
			"their broadcast queues, as serf does, and prints both side by side. With gossipsub in\n" +
			"--systems it also runs bench/gossipsub's program (go-libp2p-pubsub, default parameters) on the\n" +
			"same workload. docs/bench.md explains every figure. Nothing is written to disk; the run stops\n" +
			"by itself.",
		Flags: []cli.Flag{
			stringFlag("nodes", fmt.Sprint(bench.DefaultNodes), fmt.Sprintf("`N` nodes per system, %d to %d", bench.MinNodes, bench.MaxNodes)),
			stringFlag("messages", fmt.Sprint(bench.DefaultMessages), "publish `M` messages"),
			stringFlag("size", fmt.Sprint(bench.DefaultSize), fmt.Sprintf("payload of each message in `BYTES`, %d to %d", bench.MinSize, bench.MaxSize)),
			stringFlag("rate", fmt.Sprint(bench.DefaultRate), "publish `R` messages per second in all; 0: as fast as backpressure allows"),
			stringFlag("origins", fmt.Sprint(bench.DefaultOrigins), "`N` nodes publish, taking the messages in turn"),
			stringFlag("interval", bench.DefaultInterval.String(), "gossip round of both systems, a `DURATION`"),
			stringFlag("fanout", fmt.Sprint(bench.DefaultFanout), fmt.Sprintf("peers contacted per round by both systems, `N` from 1 to %d", bench.MaxFanout)),
			stringFlag("long-poll", longPollText(bench.DefaultLongPoll), "hearsay's long-poll: peers keep a node's pull open up to `DURATION` (as the agent's --long-poll); 0: round-paced pulls only"),
			boolFlag("encrypt", true, "encrypt both systems' traffic with the same 256-bit key; --encrypt=false turns it off"),
			boolFlag("sign", false, "hearsay's nodes sign their messages and require signatures (the agent's --sign)"),
			stringFlag("timeout", "60s", "stop waiting for full delivery `DURATION` after the first publish"),
			stringFlag("systems", string(bench.Hearsay)+","+string(bench.Memberlist), "comma-separated `LIST` of systems to run: hearsay, memberlist, gossipsub"),
			stringFlag("gossipsub-bin", "", "the `PROGRAM` that runs gossipsub; default: "+bench.GossipSubProgram+" in dist/, beside this program or on PATH"),
			stringFlag("cipher", security.DefaultSuite.String(), "hearsay's cipher `SUITE`, as the agent's --cipher: "+strings.Join(security.SuiteNames(), " or ")),
			boolFlag("api", false, "send hearsay's messages through each node's HTTP API, as applications do: published with a POST, received from an SSE stream on every node (latency from the request to the event)"),
			boolFlag("processes", false, "run every node as its own process (this program's hidden bench-node command); CPU is then the sum over the node processes"),
			boolFlag("json", false, "print the results as JSON instead of a table"),
		},
		Action: func(c *cli.Context) error {
			cfg, err := benchConfigFromFlags(c)
			if err != nil {
				return err
			}
			cfg.Progress = p.stderr
			rep, err := bench.Run(c.Context, cfg)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return rep.WriteJSON(p.stdout)
			}
			return rep.WriteTable(p.stdout)
		},
	}
}

// boolFlag declares a boolean flag and its environment variable.
func boolFlag(name string, value bool, usage string) *cli.BoolFlag {
	return &cli.BoolFlag{Name: name, Value: value, Usage: usage, EnvVars: []string{envVar(name)}}
}

// benchConfigFromFlags reads and checks the bench flags.
func benchConfigFromFlags(c *cli.Context) (bench.Config, error) {
	var cfg bench.Config
	var err error
	if err := noArgs(c); err != nil {
		return cfg, err
	}
	if cfg.Nodes, err = intValue(c, "nodes", bench.MinNodes, bench.MaxNodes); err != nil {
		return cfg, err
	}
	if cfg.Messages, err = intValue(c, "messages", 1, bench.MaxMessages); err != nil {
		return cfg, err
	}
	if cfg.Nodes*cfg.Messages > bench.MaxDeliveries {
		return cfg, flagErrorf("messages", "at most %d with %d nodes (nodes × messages at most %d), got %d",
			bench.MaxDeliveries/cfg.Nodes, cfg.Nodes, bench.MaxDeliveries, cfg.Messages)
	}
	if cfg.Size, err = intValue(c, "size", bench.MinSize, bench.MaxSize); err != nil {
		return cfg, err
	}
	if cfg.Rate, err = intValue(c, "rate", 0, bench.MaxRate); err != nil {
		return cfg, err
	}
	if cfg.Rate == 0 {
		cfg.Rate = bench.RateUnlimited
	}
	if cfg.Origins, err = intValue(c, "origins", 1, cfg.Nodes); err != nil {
		return cfg, err
	}
	if cfg.Interval, err = durationValue(c, "interval", bench.MinInterval); err != nil {
		return cfg, err
	}
	if cfg.Interval > bench.MaxInterval {
		return cfg, flagErrorf("interval", "must be at most %s, got %s", bench.MaxInterval, cfg.Interval)
	}
	if cfg.Fanout, err = intValue(c, "fanout", 1, bench.MaxFanout); err != nil {
		return cfg, err
	}
	if cfg.LongPoll, err = longPollValue(c, "long-poll"); err != nil {
		return cfg, err
	}
	cfg.Plaintext = !c.Bool("encrypt")
	cfg.API = c.Bool("api")
	if cfg.Cipher, err = security.ParseSuite(flagValue(c, "cipher")); err != nil {
		return cfg, flagErrorf("cipher", "%w", err)
	}
	cfg.Sign = c.Bool("sign")
	if cfg.Processes = c.Bool("processes"); cfg.Processes {
		exe, err := os.Executable()
		if err != nil {
			return cfg, fmt.Errorf("bench: --processes: finding this program to run the nodes with: %w", err)
		}
		cfg.NodeCommand = []string{exe, benchNodeCommandName}
	}
	if cfg.Timeout, err = durationValue(c, "timeout", bench.MinTimeout); err != nil {
		return cfg, err
	}
	if cfg.Timeout > bench.MaxTimeout {
		return cfg, flagErrorf("timeout", "must be at most %s, got %s", bench.MaxTimeout, cfg.Timeout)
	}
	if d := cfg.PublishDuration(); d >= cfg.Timeout {
		return cfg, flagErrorf("timeout", "publishing %d messages at %d/s takes %s; give a longer --timeout or a higher --rate", cfg.Messages, cfg.Rate, d)
	}
	if cfg.Systems, err = systemsValue(c, "systems"); err != nil {
		return cfg, err
	}
	if slices.Contains(cfg.Systems, bench.GossipSub) {
		program, err := bench.FindGossipSub(flagValue(c, "gossipsub-bin"))
		if err != nil {
			return cfg, flagErrorf("systems", "gossipsub: %v, or name it with --gossipsub-bin", err)
		}
		cfg.GossipSubCommand = []string{program}
	}
	// The flags were checked one by one above; this catches what they
	// missed, so that no error of Run's own checks reaches the user as a
	// failure instead of a usage error.
	if err := cfg.Validate(); err != nil {
		return cfg, usagef("%v", err)
	}
	return cfg, nil
}

// systemsValue parses the flag's comma-separated list of systems.
func systemsValue(c *cli.Context, name string) ([]bench.System, error) {
	var systems []bench.System
	for _, entry := range strings.Split(flagValue(c, name), ",") {
		entry = strings.ToLower(strings.TrimSpace(entry))
		if entry == "" {
			continue
		}
		system := bench.System(entry)
		if !slices.Contains(bench.KnownSystems, system) {
			return nil, flagErrorf(name, "unknown system %q (want %s, %s or %s)", entry, bench.Hearsay, bench.Memberlist, bench.GossipSub)
		}
		for _, s := range systems {
			if s == system {
				return nil, flagErrorf(name, "%s listed twice", entry)
			}
		}
		systems = append(systems, system)
	}
	if len(systems) == 0 {
		return nil, flagErrorf(name, "name at least one system: %s, %s or %s", bench.Hearsay, bench.Memberlist, bench.GossipSub)
	}
	return systems, nil
}
