package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Publish publishes payload on topic through the agent and returns the
// message's ID (32 hex digits). The agent delivers it to every node of the
// cluster, itself included, at most once on each.
//
// An answer other than 202 is an *APIError. A refusal for backpressure
// matches ErrBackpressure and carries the agent's Retry-After; with
// WithPublishRetries, Publish waits and tries again itself.
func (c *Client) Publish(ctx context.Context, topic string, payload []byte) (string, error) {
	query := url.Values{"topic": {topic}}
	for attempt := 0; ; attempt++ {
		id, err := c.publishOnce(ctx, query, payload)
		var apiErr *APIError
		if err == nil || attempt == c.publishRetries || !errors.As(err, &apiErr) || !errors.Is(apiErr, ErrBackpressure) {
			return id, err
		}
		timer := time.NewTimer(apiErr.RetryAfter)
		select {
		case <-ctx.Done():
			timer.Stop()
			return "", ctx.Err()
		case <-timer.C:
		}
	}
}

func (c *Client) publishOnce(ctx context.Context, query url.Values, payload []byte) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := c.newRequest(ctx, http.MethodPost, "/v1/messages", query, bytes.NewReader(payload))
	if err != nil {
		return "", err
	}
	resp, err := c.send(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return "", answerError(resp)
	}
	var answer struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&answer); err != nil || answer.ID == "" {
		return "", fmt.Errorf("agent answered %d without a message ID", resp.StatusCode)
	}
	return answer.ID, nil
}
