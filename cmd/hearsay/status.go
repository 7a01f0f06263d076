package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/hearsay-io/hearsay/client"
)

func (p *program) statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "print a running agent's status (GET /v1/status) as JSON",
		Flags: apiFlags(),
		Action: p.printJSON(func(ctx context.Context, agent *client.Client) (any, error) {
			return agent.Status(ctx)
		}),
	}
}

func (p *program) peersCommand() *cli.Command {
	return &cli.Command{
		Name:  "peers",
		Usage: "print a running agent's peers (GET /v1/peers) as JSON",
		Flags: apiFlags(),
		Action: p.printJSON(func(ctx context.Context, agent *client.Client) (any, error) {
			return agent.Peers(ctx)
		}),
	}
}

// printJSON returns an action that asks the agent with get and prints the
// answer as indented JSON.
func (p *program) printJSON(get func(context.Context, *client.Client) (any, error)) cli.ActionFunc {
	return func(c *cli.Context) error {
		if err := noArgs(c); err != nil {
			return err
		}
		agent, err := newAPIClient(c)
		if err != nil {
			return err
		}
		v, err := get(c.Context, agent)
		if err != nil {
			return agentError(err)
		}
		return p.writeJSON(v)
	}
}

// writeJSON prints v indented, as the agent's API does.
func (p *program) writeJSON(v any) error {
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the answer: %w", err)
	}
	_, err = p.stdout.Write(append(out, '\n'))
	return err
}
