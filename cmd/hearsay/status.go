package main

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/urfave/cli/v2"
)

func (p *program) statusCommand() *cli.Command {
	return &cli.Command{
		Name:   "status",
		Usage:  "print a running agent's status (GET /v1/status) as JSON",
		Flags:  apiFlags(),
		Action: p.printJSON("/v1/status"),
	}
}

func (p *program) peersCommand() *cli.Command {
	return &cli.Command{
		Name:   "peers",
		Usage:  "print a running agent's peers (GET /v1/peers) as JSON",
		Flags:  apiFlags(),
		Action: p.printJSON("/v1/peers"),
	}
}

// printJSON returns an action that GETs path from the agent and prints the
// answer, indented.
func (p *program) printJSON(path string) cli.ActionFunc {
	return func(c *cli.Context) error {
		if err := noArgs(c); err != nil {
			return err
		}
		client, err := newAPIClient(c)
		if err != nil {
			return err
		}
		body, err := client.getJSON(c.Context, path)
		if err != nil {
			return err
		}
		var out bytes.Buffer
		if err := json.Indent(&out, bytes.TrimSpace(body), "", "  "); err != nil {
			return fmt.Errorf("GET %s: the agent answered something that is not JSON: %w", path, err)
		}
		out.WriteByte('\n')
		_, err = p.stdout.Write(out.Bytes())
		return err
	}
}
