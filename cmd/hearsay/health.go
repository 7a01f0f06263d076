package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// healthTimeout is --timeout's default: a probe must answer quickly or
// count as failed.
const healthTimeout = 5 * time.Second

func (p *program) healthCommand() *cli.Command {
	return &cli.Command{
		Name:  "health",
		Usage: "exit 0 if the local agent is healthy (GET /healthz), or ready with --ready (GET /readyz); else 1 with the reason",
		Description: "For probes: a container's HEALTHCHECK, a systemd ExecStartPost, a script waiting for an agent.\n" +
			"Prints \"ok\" (or \"ready\") and exits 0; otherwise prints one line saying why and exits 1.\n" +
			"/healthz and /readyz need no API token.",
		Flags: append(apiFlags(),
			boolFlag("ready", false, "check readiness (/readyz: peers, and a first anti-entropy pass) instead of liveness (/healthz)"),
			stringFlag("timeout", durationText(healthTimeout), "give up and fail after `DURATION`"),
		),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			timeout, err := durationValue(c, "timeout", time.Millisecond)
			if err != nil {
				return err
			}
			client, err := newAPIClient(c)
			if err != nil {
				return err
			}
			path := "/healthz"
			if c.Bool("ready") {
				path = "/readyz"
			}
			ctx, cancel := context.WithTimeout(c.Context, timeout)
			defer cancel()
			answer, err := probe(ctx, client, path)
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("GET %s: no answer within %s", path, timeout)
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(p.stdout, answer)
			return err
		},
	}
}

// probe GETs a probe endpoint and returns its one-line answer if it is 200,
// else an error carrying it.
func probe(ctx context.Context, client *apiClient, path string) (string, error) {
	resp, err := client.do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return "", fmt.Errorf("GET %s: reading the answer: %w", path, err)
	}
	text := oneLine(strings.TrimSpace(string(body)))
	if resp.StatusCode != http.StatusOK {
		if text == "" {
			text = http.StatusText(resp.StatusCode)
		}
		return "", fmt.Errorf("GET %s: %d: %s", path, resp.StatusCode, text)
	}
	return text, nil
}
