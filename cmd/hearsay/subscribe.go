package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hearsay-io/hearsay/client"
	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/node"
)

func (p *program) subscribeCommand() *cli.Command {
	return &cli.Command{
		Name:  "subscribe",
		Usage: "print the messages a running agent receives, one per line, until interrupted",
		Description: "Prints each message matching --topic as one line: the API's JSON\n" +
			"({\"id\",\"topic\",\"origin\",\"created\",\"payload\" (base64)}), or with --format raw the\n" +
			"payload itself. Patterns: \"orders.*\" matches one token, \"orders.>\" one or more, \">\" all.",
		Flags: append(apiFlags(),
			stringFlag("topic", ">", "topic `PATTERN` to receive"),
			stringFlag("format", "json", "`FORMAT` of each line: json or raw (the decoded payload)"),
			stringFlag("from", "", "resume after the message with this `ID`: first every retained message accepted after it, then live"),
			boolFlag("reconnect", false, "when the stream is lost (the agent restarts), reconnect with backoff and resume after the last message printed, instead of exiting"),
		),
		Action: p.subscribe,
	}
}

func (p *program) subscribe(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	agent, err := newAPIClient(c)
	if err != nil {
		return err
	}
	pattern := flagValue(c, "topic")
	if _, err := node.ParsePattern(pattern); err != nil {
		return flagErrorf("topic", "%v", err)
	}
	format, err := choiceValue(c, "format", "json", "raw")
	if err != nil {
		return err
	}
	from := flagValue(c, "from")
	if from != "" {
		if _, err := gossip.ParseMessageID(from); err != nil {
			return flagErrorf("from", "%v", err)
		}
	}
	opts := []client.SubscribeOption{client.After(from)}
	if c.Bool("reconnect") {
		opts = append(opts, client.OnRetry(func(err error, wait time.Duration) {
			if wait > 0 {
				fmt.Fprintf(p.stderr, "hearsay: %s; reconnecting in %s\n", oneLine(err.Error()), wait.Round(time.Millisecond))
			} else {
				fmt.Fprintf(p.stderr, "hearsay: %s\n", oneLine(err.Error()))
			}
		}))
	} else {
		opts = append(opts, client.WithoutReconnect())
	}
	return streamMessages(c.Context, agent, pattern, format, p.stdout, opts...)
}

// streamMessages prints the stream's messages to w until ctx is cancelled
// (then it returns nil) or the subscription ends.
func streamMessages(ctx context.Context, agent *client.Client, pattern, format string, w io.Writer, opts ...client.SubscribeOption) error {
	sub, err := agent.Subscribe(ctx, pattern, opts...)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return agentError(err)
	}
	defer sub.Close()
	out := bufio.NewWriter(w)
	for {
		m, err := sub.Next()
		switch {
		case ctx.Err() != nil:
			return nil // interrupted: the normal end
		case errors.Is(err, client.ErrStreamClosed):
			return errors.New("the agent closed the stream (did it stop?)")
		case err != nil:
			return agentError(err)
		}
		if err := writeMessage(out, m, format); err != nil {
			return err
		}
		// One message per write, so that a pipe sees each at once.
		if err := out.Flush(); err != nil {
			return fmt.Errorf("writing: %w", err)
		}
	}
}

// writeMessage writes a message as one line: the API's JSON, or the
// payload.
func writeMessage(w *bufio.Writer, m client.Message, format string) error {
	if format == "raw" {
		w.Write(m.Payload)
		return w.WriteByte('\n')
	}
	line, err := json.Marshal(node.MessageJSON{ID: m.ID, Topic: m.Topic, Origin: m.Origin,
		Created: m.Created.UTC().Format(node.CreatedFormat), Payload: m.Payload})
	if err != nil {
		return err
	}
	w.Write(line)
	return w.WriteByte('\n')
}
