package main

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hearsay-io/hearsay/gossip"
)

// Every flag also reads the environment variable HEARSAY_<FLAG>. Numbers and
// durations are declared as string flags and parsed by the helpers below, so
// that a bad value gets the same one-line error naming the flag whether it
// came from the command line or from the environment.

const envPrefix = "HEARSAY_"

// envVar is the environment variable read by the flag called name:
// "data-dir" reads HEARSAY_DATA_DIR.
func envVar(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// stringFlag declares a flag and its environment variable. A backquoted word
// in usage names the value in --help ("pull from `N` peers").
//
// urfave/cli stores the environment's value in the flag itself, so every
// App must be built with fresh flags.
func stringFlag(name, value, usage string) *cli.StringFlag {
	f := &cli.StringFlag{Name: name, Value: value, Usage: usage, EnvVars: []string{envVar(name)}}
	if value != "" {
		f.DefaultText = value // shown without the quotes cli puts around strings
	}
	return f
}

// listFlags are the names of the string flags whose value is a
// comma-separated list: a config file may give them as a list. A sync.Map,
// as tests build apps concurrently.
var listFlags sync.Map

// listFlag declares a comma-separated list flag, as stringFlag.
func listFlag(name, usage string) *cli.StringFlag {
	listFlags.Store(name, true)
	return stringFlag(name, "", usage)
}

func isListFlag(name string) bool {
	_, ok := listFlags.Load(name)
	return ok
}

// usageError is a mistake in the command line, the environment or the
// config file. The program exits with status 2 for it, 1 for any other
// error.
type usageError struct {
	err  error
	flag string // the flag whose value is wrong, if it is one flag's
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{err: fmt.Errorf(format, args...)}
}

// flagErrorf reports a bad value of the flag called name.
func flagErrorf(name, format string, args ...any) error {
	return usageError{err: fmt.Errorf("--"+name+": "+format, args...), flag: name}
}

// flagValue returns the flag's value without surrounding spaces, which
// environment files and shell quoting easily add.
func flagValue(c *cli.Context, name string) string {
	return strings.TrimSpace(c.String(name))
}

// intValue parses the flag called name as a whole number in [lo, hi].
func intValue(c *cli.Context, name string, lo, hi int) (int, error) {
	s := flagValue(c, name)
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, flagErrorf(name, "want a whole number, got %q", s)
	}
	if n < lo || n > hi {
		return 0, flagErrorf(name, "must be between %d and %d, got %d", lo, hi, n)
	}
	return n, nil
}

// durationValue parses the flag called name as a duration of at least min.
func durationValue(c *cli.Context, name string, min time.Duration) (time.Duration, error) {
	s := flagValue(c, name)
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, flagErrorf(name, "want a duration such as 200ms, 5s or 1m30s, got %q", s)
	}
	if d < min {
		if min <= 0 {
			return 0, flagErrorf(name, "must not be negative, got %s", d)
		}
		return 0, flagErrorf(name, "must be at least %s, got %s", min, d)
	}
	return d, nil
}

// durationText writes d as a flag's value is written: 10m and 1h rather
// than time.Duration's 10m0s and 1h0m0s.
func durationText(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// choiceValue returns the flag's value if it is one of choices.
func choiceValue(c *cli.Context, name string, choices ...string) (string, error) {
	s := strings.ToLower(flagValue(c, name))
	for _, choice := range choices {
		if s == choice {
			return s, nil
		}
	}
	return "", flagErrorf(name, "must be one of %s, got %q", strings.Join(choices, ", "), s)
}

// checkHostPort checks that s is host:port with a port in [minPort, 65535].
// The host may be empty (all interfaces) or a name, resolved later.
func checkHostPort(s string, minPort int) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want host:port, got %q", s)
	}
	if strings.ContainsAny(host, " \t/") {
		return fmt.Errorf("bad host in %q", s)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < minPort || p > 65535 {
		return fmt.Errorf("port must be between %d and 65535, got %q", minPort, port)
	}
	return nil
}

// hostPortValue returns the flag's value, checked to be host:port with a
// port from 1 to 65535.
func hostPortValue(c *cli.Context, name string) (string, error) {
	s := flagValue(c, name)
	if err := checkHostPort(s, 1); err != nil {
		return "", flagErrorf(name, "%v", err)
	}
	return s, nil
}

// hostPortListValue splits the flag's comma-separated host:port list.
func hostPortListValue(c *cli.Context, name string) ([]string, error) {
	var list []string
	for _, entry := range strings.Split(c.String(name), ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if err := checkHostPort(entry, 1); err != nil {
			return nil, flagErrorf(name, "%v", err)
		}
		list = append(list, entry)
	}
	return list, nil
}

// noArgs refuses positional arguments, where a flag placed after one would
// otherwise be silently ignored.
func noArgs(c *cli.Context) error {
	if c.Args().Present() {
		return usagef("%s: unexpected argument %q (flags go before arguments)", c.Command.Name, c.Args().First())
	}
	return nil
}

// The standard flag package's parse errors, reworded to name the flag as
// users write it.
var (
	undefinedFlagRE = regexp.MustCompile(`^flag provided but not defined: -+(.+)$`)
	missingValueRE  = regexp.MustCompile(`^flag needs an argument: -+(.+)$`)
	invalidValueRE  = regexp.MustCompile(`^invalid (?:boolean )?value (".*") for (?:flag )?-+([^:]+): (.*)$`)
)

// onUsageError turns urfave/cli's flag parsing errors into one-line usage
// errors instead of its default of printing the whole help.
func onUsageError(c *cli.Context, err error, _ bool) error {
	msg := err.Error()
	switch {
	case undefinedFlagRE.MatchString(msg):
		m := undefinedFlagRE.FindStringSubmatch(msg)
		msg = fmt.Sprintf("unknown flag --%s (see %s --help)", m[1], c.Command.HelpName)
	case missingValueRE.MatchString(msg):
		msg = fmt.Sprintf("--%s: needs a value", missingValueRE.FindStringSubmatch(msg)[1])
	case invalidValueRE.MatchString(msg):
		m := invalidValueRE.FindStringSubmatch(msg)
		msg = fmt.Sprintf("--%s: invalid value %s: %s", m[2], m[1], m[3])
	}
	return usageError{err: errors.New(msg)}
}

// longPollValue reads a --long-poll flag: the longest a peer may keep this
// node's pull open (gossip.Config.MaxPark), or 0 for round-paced pulls
// only, which the core spells as a negative MaxPark.
func longPollValue(c *cli.Context, name string) (time.Duration, error) {
	d, err := durationValue(c, name, 0)
	if err != nil {
		return 0, err
	}
	switch {
	case d == 0:
		return -1, nil
	case d < time.Millisecond || d > gossip.MaxLongPoll:
		return 0, flagErrorf(name, "want 0 (off) or from 1ms to %v, got %s", durationText(gossip.MaxLongPoll), d)
	}
	return d, nil
}

// longPollText writes a MaxPark as its --long-poll flag's value.
func longPollText(d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	return durationText(d)
}
