package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"

	"github.com/hearsay-io/hearsay/node"
	"github.com/hearsay-io/hearsay/wire"
)

func (p *program) versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the hearsay version, the Go version and the wire protocol version",
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			fmt.Fprintf(p.stdout, "hearsay %s\n%s\nwire version %d\n", node.Version, runtime.Version(), wire.Version)
			return nil
		},
	}
}

// buildVersion is the main module's version as the build recorded it: a
// release tag, or since Go 1.24 a pseudo-version from the VCS revision
// (with +dirty for uncommitted changes); "devel" when it recorded none.
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok || info.Main.Version == "" || info.Main.Version == "(devel)" {
		return "devel"
	}
	return info.Main.Version
}
