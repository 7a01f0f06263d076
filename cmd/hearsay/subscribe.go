package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/node"
)

const (
	// streamIdleTimeout ends a stream that sent nothing for that long: the
	// agent writes at least a keep-alive comment every 15 s, so the
	// connection is dead.
	streamIdleTimeout = 60 * time.Second
	// maxEventBytes bounds one event: the largest message an agent can be
	// configured to take (--max-message-size up to 1 GiB) as base64 in
	// JSON, with room for its other fields. At the default 1 MiB an event
	// is at most about 1.4 MB.
	maxEventBytes = maxPushPayload/3*4 + 64<<10
)

var errStreamIdle = fmt.Errorf("the stream was silent for %s, not even a keep-alive: connection lost", streamIdleTimeout)

func (p *program) subscribeCommand() *cli.Command {
	return &cli.Command{
		Name:  "subscribe",
		Usage: "print the messages a running agent receives, one per line, until interrupted",
		Description: "Prints each message matching --topic as one line: the API's JSON\n" +
			"({\"id\",\"topic\",\"origin\",\"created\",\"payload\" (base64)}), or with --format raw the\n" +
			"payload itself. Patterns: \"orders.*\" matches one token, \"orders.>\" one or more, \">\" all.",
		Flags: []cli.Flag{
			apiFlags()[0], apiFlags()[1],
			stringFlag("topic", ">", "topic `PATTERN` to receive"),
			stringFlag("format", "json", "`FORMAT` of each line: json or raw (the decoded payload)"),
			stringFlag("from", "", "resume after the message with this `ID`: first every retained message accepted after it, then live"),
		},
		Action: p.subscribe,
	}
}

func (p *program) subscribe(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	client, err := newAPIClient(c)
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
	return streamMessages(c.Context, client, pattern, from, format, p.stdout)
}

// streamMessages prints the stream's messages to w until ctx is cancelled
// (then it returns nil), the agent ends the stream, or the connection fails.
// With from set, the stream resumes after that message ID.
func streamMessages(ctx context.Context, client *apiClient, pattern, from, format string, w io.Writer) error {
	reqCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := client.newRequest(reqCtx, http.MethodGet, "/v1/messages/stream", url.Values{"topic": {pattern}}, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if from != "" {
		req.Header.Set("Last-Event-ID", from)
	}
	resp, err := client.send(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return answerError(resp)
	}

	body := &idleReader{r: resp.Body, timer: time.AfterFunc(streamIdleTimeout, func() { cancel(errStreamIdle) })}
	defer body.timer.Stop()
	events := newSSEReader(body, maxEventBytes)
	out := bufio.NewWriter(w)
	for {
		ev, err := events.Next()
		switch {
		case ctx.Err() != nil:
			return nil // interrupted: the normal end
		case context.Cause(reqCtx) == errStreamIdle:
			return errStreamIdle
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return errors.New("the agent closed the stream (did it stop?)")
		case err != nil:
			return fmt.Errorf("reading the stream: %w", err)
		}
		switch ev.Event {
		case "message":
			if err := writeMessage(out, ev.Data, format); err != nil {
				return err
			}
			// One message per write, so that a pipe sees each at once.
			if err := out.Flush(); err != nil {
				return fmt.Errorf("writing: %w", err)
			}
		case "error":
			return fmt.Errorf("the agent ended the stream: %s", streamErrorText(ev.Data))
		}
	}
}

// writeMessage writes an event's data as one line: compact JSON, or the
// payload it carries.
func writeMessage(w *bufio.Writer, data, format string) error {
	if format == "raw" {
		var m struct {
			Payload []byte `json:"payload"`
		}
		if err := json.Unmarshal([]byte(data), &m); err != nil {
			return fmt.Errorf("the agent sent a message that is not JSON: %w", err)
		}
		w.Write(m.Payload)
		return w.WriteByte('\n')
	}
	var line bytes.Buffer
	if err := json.Compact(&line, []byte(data)); err != nil {
		return fmt.Errorf("the agent sent a message that is not JSON: %w", err)
	}
	line.WriteByte('\n')
	_, err := w.Write(line.Bytes())
	return err
}

// streamErrorText returns the "error" of an error event's JSON data, or the
// data itself.
func streamErrorText(data string) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(data), &e) == nil && e.Error != "" {
		return e.Error
	}
	return data
}

// idleReader restarts timer whenever data arrives.
type idleReader struct {
	r     io.Reader
	timer *time.Timer
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.timer.Reset(streamIdleTimeout)
	}
	return n, err
}
