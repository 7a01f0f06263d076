package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hearsay-io/hearsay/client"
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

// probe asks a probe endpoint through the client and returns the answer
// of a 200 (what the endpoint says: "ok", "ready"), else an error carrying
// the agent's reason on one line.
func probe(ctx context.Context, agent *client.Client, path string) (string, error) {
	check, answer := agent.Health, "ok"
	if path == "/readyz" {
		check, answer = agent.Ready, "ready"
	}
	err := check(ctx)
	var apiErr *client.APIError
	switch {
	case errors.As(err, &apiErr):
		return "", fmt.Errorf("GET %s: %d: %s", path, apiErr.StatusCode, oneLine(apiErr.Message))
	case err != nil:
		return "", err
	}
	return answer, nil
}
