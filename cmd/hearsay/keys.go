package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hearsay-io/hearsay/client"
	"github.com/hearsay-io/hearsay/security"
)

// passphraseEnv holds the cluster passphrase when no file is given. There
// is deliberately no --passphrase flag: command lines are visible to every
// user of the machine.
const passphraseEnv = envPrefix + "PASSPHRASE"

// passphraseValue reads the passphrase from the file the flag names, else
// from HEARSAY_PASSPHRASE; nil when neither is set. A trailing newline is
// not part of it.
func passphraseValue(c *cli.Context, flag string) ([]byte, error) {
	var p []byte
	if path := flagValue(c, flag); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, flagErrorf(flag, "%v", err)
		}
		if p = bytes.TrimRight(b, "\r\n"); len(p) == 0 {
			return nil, flagErrorf(flag, "%s is empty", path)
		}
	} else if env := os.Getenv(passphraseEnv); env != "" {
		p = []byte(strings.TrimRight(env, "\r\n"))
	}
	if len(p) > 0 && len(p) < security.MinPassphraseLen {
		return nil, flagErrorf(flag, "the passphrase has %d bytes, at least %d are needed (hearsay keygen makes one)", len(p), security.MinPassphraseLen)
	}
	return p, nil
}

func (p *program) keygenCommand() *cli.Command {
	return &cli.Command{
		Name:  "keygen",
		Usage: "print a new random cluster passphrase (256 bits)",
		Description: "Store it in a file readable only by the agent's user and start every agent of the\n" +
			"cluster with --passphrase-file FILE (or HEARSAY_PASSPHRASE).",
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			pass, err := security.NewPassphrase()
			if err != nil {
				return err
			}
			fmt.Fprintln(p.stdout, pass)
			return nil
		},
	}
}

func (p *program) keysCommand() *cli.Command {
	// keyCommand is a subcommand acting on one key.
	keyCommand := func(name, usage string, act func(*client.Client, context.Context, string) (client.Keyring, error)) *cli.Command {
		return &cli.Command{
			Name:      name,
			Usage:     usage,
			ArgsUsage: "KEY-ID",
			Flags:     apiFlags(),
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return usagef("%s: give one key ID (see hearsay keys list)", c.Command.Name)
				}
				id, err := security.ParseKeyID(c.Args().First())
				if err != nil {
					return usagef("%s: %v", c.Command.Name, err)
				}
				agent, err := newAPIClient(c)
				if err != nil {
					return err
				}
				keys, err := act(agent, c.Context, id.String())
				if err != nil {
					return agentError(err)
				}
				return p.writeJSON(keys)
			},
		}
	}
	return &cli.Command{
		Name:  "keys",
		Usage: "list, install, use and remove cluster keys of a running agent",
		Description: "Rotate a cluster's passphrase without downtime: install the new one on every agent,\n" +
			"then use it on every agent, then remove the old one from every agent.\n" +
			"Keys are kept in the agent's data dir. docs/security.md walks through it.",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "print the installed keys (the primary seals, all open)",
				Flags: apiFlags(),
				Action: func(c *cli.Context) error {
					if err := noArgs(c); err != nil {
						return err
					}
					return p.printJSON(func(ctx context.Context, agent *client.Client) (any, error) {
						return agent.Keys(ctx)
					})(c)
				},
			},
			{
				Name:  "install",
				Usage: "install the key of a passphrase (read from --passphrase-file, HEARSAY_PASSPHRASE or standard input)",
				Flags: append(apiFlags(), stringFlag("passphrase-file", "", "`FILE` holding the passphrase")),
				Action: func(c *cli.Context) error {
					if err := noArgs(c); err != nil {
						return err
					}
					pass, err := passphraseValue(c, "passphrase-file")
					if err != nil {
						return err
					}
					if pass == nil {
						b, err := io.ReadAll(io.LimitReader(p.stdin, 4097))
						if err != nil {
							return fmt.Errorf("reading the passphrase from standard input: %w", err)
						}
						if pass = bytes.TrimRight(b, "\r\n"); len(pass) == 0 {
							return usagef("install: no passphrase (give --passphrase-file, HEARSAY_PASSPHRASE or standard input)")
						}
					}
					agent, err := newAPIClient(c)
					if err != nil {
						return err
					}
					id, err := agent.InstallKey(c.Context, pass)
					if err != nil {
						return agentError(err)
					}
					return p.writeJSON(map[string]string{"id": id})
				},
			},
			keyCommand("use", "make an installed key the one that seals", (*client.Client).UseKey),
			keyCommand("remove", "remove an installed key that is not the primary", (*client.Client).RemoveKey),
		},
	}
}
