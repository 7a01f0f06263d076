package main

import (
	"github.com/urfave/cli/v2"

	"github.com/hearsay-io/hearsay/internal/bench"
)

// benchNodeCommandName is the hidden command that "hearsay bench
// --processes" runs once per node.
const benchNodeCommandName = "bench-node"

// benchNodeCommand runs one node of "hearsay bench --processes", driven by
// the parent over standard input and output (internal/bench's protocol.go).
// It is not for people: it is hidden from the help.
func (p *program) benchNodeCommand() *cli.Command {
	return &cli.Command{
		Name:   benchNodeCommandName,
		Hidden: true,
		// As newApp sets them for the other commands.
		OnUsageError:    onUsageError,
		HideHelpCommand: true,
		Usage:           "run one node of \"hearsay bench --processes\" (internal: driven over standard input and output)",
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			return bench.ServeNode(c.Context, p.stdin, p.stdout)
		},
	}
}
