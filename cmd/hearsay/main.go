// Command hearsay runs a hearsay gossip node (hearsay agent) and talks to a
// running one through its local HTTP API (push, subscribe, status, peers,
// health).
// hearsay demo runs a small cluster in one process. docs/cli.md is the
// reference of every command and flag.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/hearsay-io/hearsay/node"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // bad command line or environment; nothing was started
)

func main() {
	node.Version = buildVersion()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C ends the process at once
	}()
	os.Exit(run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr))
}

// program is what the commands read from and write to, so that tests can
// run them in-process.
type program struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// runAgent runs the agent once its flags are checked; tests replace it
	// to inspect the parsed configuration.
	runAgent func(ctx context.Context, cfg agentConfig) error
	// args is the command line being run, read again on SIGHUP with
	// --config.
	args []string
}

// run runs the command line args (args[0] is the program name) until it
// ends or ctx is cancelled, and returns the exit status. Errors are printed
// to stderr as one line.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	p := &program{stdin: stdin, stdout: stdout, stderr: stderr}
	p.runAgent = p.agent
	return p.run(ctx, args)
}

func (p *program) run(ctx context.Context, args []string) int {
	p.args = args
	app := p.newApp()
	// Hidden from the help, and so kept out of newApp's commands: those
	// are the ones people use.
	app.Commands = append(app.Commands, p.benchNodeCommand())
	err := app.RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(p.stderr, "hearsay: %s\n", oneLine(err.Error()))
	var usage usageError
	var exitCoder cli.ExitCoder // urfave/cli's own, from "hearsay help nosuchcommand"
	if errors.As(err, &usage) || errors.As(err, &exitCoder) {
		return exitUsage
	}
	return exitFailure
}

// oneLine keeps an error message on one line, so that it reads well in logs
// and scripts can take the last line of stderr.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

func (p *program) newApp() *cli.App {
	app := &cli.App{
		Name:  "hearsay",
		Usage: "a masterless gossip node: every node of a cluster receives every message, once",
		Description: "Run \"hearsay agent\" on every machine with the same --peers list, then publish with\n" +
			"\"hearsay push\" or POST /v1/messages and receive with \"hearsay subscribe\" or\n" +
			"GET /v1/messages/stream. \"hearsay demo\" runs a small cluster on this machine.\n" +
			"Every flag also reads the environment variable HEARSAY_<FLAG>, e.g. HEARSAY_PEERS.",
		Version:   node.Version,
		Writer:    p.stdout,
		ErrWriter: p.stderr,
		Commands: []*cli.Command{
			p.agentCommand(),
			p.pushCommand(),
			p.subscribeCommand(),
			p.statusCommand(),
			p.peersCommand(),
			p.healthCommand(),
			p.demoCommand(),
			simulateCommand(),
			p.benchCommand(),
			p.keygenCommand(),
			p.keysCommand(),
			p.versionCommand(),
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("unknown command %q (see hearsay --help)", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
		OnUsageError: onUsageError,
		// A repeatable flag's value is one value, commas and all (a
		// --handler's command may hold commas).
		DisableSliceFlagSeparator: true,
		// Errors are printed, and the exit status chosen, by run alone.
		ExitErrHandler: func(*cli.Context, error) {},
	}
	var setUp func(cmds []*cli.Command)
	setUp = func(cmds []*cli.Command) {
		for _, cmd := range cmds {
			cmd.OnUsageError = onUsageError
			// Without this "hearsay push --topic t help" would show help
			// instead of publishing "help".
			cmd.HideHelpCommand = len(cmd.Subcommands) == 0
			setUp(cmd.Subcommands)
		}
	}
	setUp(app.Commands)
	return app
}
