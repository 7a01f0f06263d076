package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hearsay-io/hearsay/gossip"
)

// Retries of a publish refused with 503 (backpressure): the agent's
// propagation cache frees room within a few rounds.
const (
	pushAttempts      = 5
	pushMinRetryDelay = 100 * time.Millisecond
	pushMaxRetryDelay = 10 * time.Second
	// pushDefaultDelay is used when a 503's Retry-After does not parse.
	pushDefaultDelay = time.Second
)

func (p *program) pushCommand() *cli.Command {
	return &cli.Command{
		Name:      "push",
		Usage:     "publish a message through a running agent and print its ID",
		ArgsUsage: "[DATA]",
		Description: "Publishes DATA, or standard input when DATA is - or absent, on --topic.\n" +
			"When the agent is busy (503) it retries up to 5 times, waiting as the agent asks.",
		Flags: []cli.Flag{
			apiFlags()[0], apiFlags()[1],
			stringFlag("topic", "", "`TOPIC` to publish on: dot-separated tokens of letters, digits, - _ : (required)"),
		},
		Action: p.push,
	}
}

func (p *program) push(c *cli.Context) error {
	client, err := newAPIClient(c)
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
	id, err := publish(c.Context, client, topic, payload)
	if err != nil {
		return err
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

// publish POSTs a message and returns its ID, retrying while the agent
// answers 503.
func publish(ctx context.Context, client *apiClient, topic string, payload []byte) (string, error) {
	query := url.Values{"topic": {topic}}
	for attempt := 1; ; attempt++ {
		id, retryAfter, err := publishOnce(ctx, client, query, payload)
		if err == nil || retryAfter == 0 || attempt == pushAttempts {
			return id, err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(retryAfter):
		}
	}
}

// publishOnce makes one attempt. A positive retryAfter says the error may
// pass if retried after that long.
func publishOnce(ctx context.Context, client *apiClient, query url.Values, payload []byte) (id string, retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := client.do(ctx, http.MethodPost, "/v1/messages", query, bytes.NewReader(payload))
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable:
		// Without Retry-After the agent is not busy but shutting down.
		return "", retryDelay(resp.Header.Get("Retry-After"), time.Now()), answerError(resp)
	case resp.StatusCode/100 != 2:
		return "", 0, answerError(resp)
	}
	var answer struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxErrorBody)).Decode(&answer); err != nil || answer.ID == "" {
		return "", 0, fmt.Errorf("agent answered %d without a message ID", resp.StatusCode)
	}
	return answer.ID, 0, nil
}

// retryDelay reads a Retry-After header, seconds or an HTTP date, bounded
// to [pushMinRetryDelay, pushMaxRetryDelay]; 0 when there is none.
func retryDelay(header string, now time.Time) time.Duration {
	if header == "" {
		return 0
	}
	d := pushDefaultDelay
	if secs, err := strconv.Atoi(header); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(header); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, pushMinRetryDelay), pushMaxRetryDelay)
}
