package handler

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hearsay-io/hearsay/node"
)

// Spec is one handler: a command for the messages whose topic matches a
// pattern.
type Spec struct {
	Pattern node.Pattern
	Command string // run with /bin/sh -c
}

// ParseSpec parses "PATTERN=COMMAND", as --handler takes it. The pattern
// is the API's (node.ParsePattern), ">" for every topic; the command is
// everything after the first "=", which a pattern never contains.
func ParseSpec(s string) (Spec, error) {
	pattern, command, ok := strings.Cut(s, "=")
	pattern, command = strings.TrimSpace(pattern), strings.TrimSpace(command)
	if !ok || pattern == "" || command == "" {
		return Spec{}, fmt.Errorf("handler %q: want PATTERN=COMMAND, as in 'orders.>=./on-order.sh' ('>=COMMAND' for every topic)", s)
	}
	p, err := node.ParsePattern(pattern)
	if err != nil {
		return Spec{}, fmt.Errorf("handler %q: %w", s, err)
	}
	return Spec{Pattern: p, Command: command}, nil
}

// String returns the spec as ParseSpec reads it.
func (s Spec) String() string { return s.Pattern.String() + "=" + s.Command }

// Config configures the handlers of a node. A zero field takes the default
// written beside it; DefaultConfig returns them filled in.
type Config struct {
	// Handlers are the handlers to run. Each keeps its own progress; two
	// equal specs are refused.
	Handlers []Spec
	// Dir keeps each handler's progress, one small file per handler
	// (progress-<hash of the spec>.json), so that a restart resumes after
	// the last message handled. Default empty: progress is kept in memory
	// only, and a new start begins with the messages delivered from then on.
	Dir string
	// Concurrency bounds the commands running at once, over all handlers.
	// Default 4.
	Concurrency int
	// Timeout bounds one run of a command; a command still running then is
	// killed (its whole process group) and the run counts as failed.
	// Default 1m.
	Timeout time.Duration
	// RetryMin is the wait before the first retry of a failed run; each
	// further failure doubles it, up to RetryMax. Default 1s.
	RetryMin time.Duration
	// RetryMax caps the wait between retries. A failing message is retried
	// until it succeeds, never skipped. Default 1m.
	RetryMax time.Duration
	// MaxPending bounds, per handler, the messages taken from the node and
	// not yet handled (running, waiting to run or waiting to be retried).
	// When it is reached, the handler takes no more until one is done; the
	// node's log keeps the rest meanwhile. Default 256.
	MaxPending int
	// MaxPendingBytes bounds the payload bytes of those messages (at least
	// one message is always taken). Default 32 MiB.
	MaxPendingBytes int
	// StopTimeout is how long Close lets running commands finish before it
	// kills them (they run again after a restart). Default 10s.
	StopTimeout time.Duration
	// Runner runs a command. Default Shell{}: /bin/sh -c COMMAND.
	Runner Runner
	// Logger receives the handlers' logs. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the defaults of Config.
func DefaultConfig() Config {
	var c Config
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.Timeout <= 0 {
		c.Timeout = time.Minute
	}
	if c.RetryMin <= 0 {
		c.RetryMin = time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = time.Minute
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 256
	}
	if c.MaxPendingBytes <= 0 {
		c.MaxPendingBytes = 32 << 20
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = 10 * time.Second
	}
	if c.Runner == nil {
		c.Runner = Shell{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func (c *Config) validate() error {
	seen := map[string]bool{}
	for _, s := range c.Handlers {
		if s.Command == "" {
			return errors.New("handler: a handler without a command")
		}
		if seen[s.String()] {
			return fmt.Errorf("handler %q: given twice", s.String())
		}
		seen[s.String()] = true
	}
	if c.RetryMax < c.RetryMin {
		return fmt.Errorf("handler: RetryMax %s is below RetryMin %s", c.RetryMax, c.RetryMin)
	}
	return nil
}
