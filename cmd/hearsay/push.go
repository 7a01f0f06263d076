package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/hearsay-io/hearsay/client"
	"github.com/hearsay-io/hearsay/gossip"
)

// pushRetries is how many times push tries again after a 503 with
// Retry-After (backpressure): the agent's propagation cache frees room
// within a few rounds.
const pushRetries = 4

func (p *program) pushCommand() *cli.Command {
	return &cli.Command{
		Name:      "push",
		Usage:     "publish a message through a running agent and print its ID",
		ArgsUsage: "[DATA]",
		Description: "Publishes DATA, or standard input when DATA is - or absent, on --topic.\n" +
			"When the agent is busy (503) it tries up to 5 times in all, waiting as the agent asks.",
		Flags: append(apiFlags(),
			stringFlag("topic", "", "`TOPIC` to publish on: dot-separated tokens of letters, digits, - _ : (required)"),
		),
		Action: p.push,
	}
}

func (p *program) push(c *cli.Context) error {
	agent, err := newAPIClient(c, client.WithPublishRetries(pushRetries))
	if err != nil {
		return err
	}
	topic := flagValue(c, "topic")
	if topic == "" {
		return flagErrorf("topic", "required")
	}
	if err := gossip.ValidateTopic(topic); err != nil {
		return flagErrorf("topic", "%v", err)
	}
	if c.Args().Len() > 1 {
		return usagef("push: want at most one DATA argument, got %d (quote it, or use standard input)", c.Args().Len())
	}
	payload, err := p.pushPayload(c.Args())
	if err != nil {
		return err
	}
	id, err := agent.Publish(c.Context, topic, payload)
	if err != nil {
		return agentError(err)
	}
	fmt.Fprintln(p.stdout, id)
	return nil
}

// maxPushPayload is the largest --max-message-size an agent accepts.
const maxPushPayload = 1 << 30

// pushPayload returns the DATA argument, or standard input when it is "-"
// or absent. An empty argument is an empty payload.
func (p *program) pushPayload(args cli.Args) ([]byte, error) {
	if args.Present() && args.First() != "-" {
		return []byte(args.First()), nil
	}
	// Read one byte more than the largest message any agent takes, to tell
	// a too large input from one that fits; the agent checks its own limit.
	data, err := io.ReadAll(io.LimitReader(p.stdin, maxPushPayload+1))
	if err != nil {
		return nil, fmt.Errorf("reading standard input: %w", err)
	}
	if len(data) > maxPushPayload {
		return nil, fmt.Errorf("standard input is longer than %d bytes, more than any message can carry", maxPushPayload)
	}
	return data, nil
}
