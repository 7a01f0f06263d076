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
			cl, err := newAPIClient(c, client.WithRequestTimeout(timeout))
			if err != nil {
				return err
			}
			path, probe, answer := "/healthz", cl.Health, "ok"
			if c.Bool("ready") {
				path, probe, answer = "/readyz", cl.Ready, "ready"
			}
			err = probe(c.Context)
			var apiErr *client.APIError
			switch {
			case errors.Is(err, context.DeadlineExceeded):
				return fmt.Errorf("GET %s: no answer within %s", path, timeout)
			case errors.As(err, &apiErr):
				return fmt.Errorf("GET %s: %d: %s", path, apiErr.StatusCode, apiErr.Message)
			case err != nil:
				return err
			}
			_, err = fmt.Fprintln(p.stdout, answer)
			return err
		},
	}
}
