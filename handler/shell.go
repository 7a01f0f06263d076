package handler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
)

// Runner runs one attempt at handling a message. A nil error means the
// message is handled; any error, a retry later.
type Runner interface {
	Run(ctx context.Context, job Job) error
}

// Job is one attempt at handling a message.
type Job struct {
	Command string
	Message gossip.Message
	Attempt int    // 1 for the first run
	Node    string // the node's name
	NodeID  string
}

// The variables a command gets, besides the agent's environment without
// its own HEARSAY_ variables (the passphrase and API token among them).
const (
	EnvMessageID      = "HEARSAY_MESSAGE_ID"      // 32 hex digits
	EnvMessageTopic   = "HEARSAY_MESSAGE_TOPIC"   // the topic
	EnvMessageOrigin  = "HEARSAY_MESSAGE_ORIGIN"  // the publishing node's ID, 32 hex digits
	EnvMessageCreated = "HEARSAY_MESSAGE_CREATED" // RFC 3339 UTC with milliseconds, as the API writes it
	EnvMessageSize    = "HEARSAY_MESSAGE_SIZE"    // the payload's length in bytes
	EnvAttempt        = "HEARSAY_HANDLER_ATTEMPT" // 1 for the first run, 2 for the first retry...
	EnvNodeName       = "HEARSAY_NODE_NAME"       // the name of the node running the handler
	EnvNodeID         = "HEARSAY_NODE_ID"         // its ID
)

// Env returns the variables of job, NAME=VALUE.
func (job Job) Env() []string {
	m := job.Message
	return []string{
		EnvMessageID + "=" + m.ID.String(),
		EnvMessageTopic + "=" + m.Topic,
		EnvMessageOrigin + "=" + m.Origin.String(),
		EnvMessageCreated + "=" + m.Created.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		EnvMessageSize + "=" + strconv.Itoa(len(m.Payload)),
		EnvAttempt + "=" + strconv.Itoa(job.Attempt),
		EnvNodeName + "=" + job.Node,
		EnvNodeID + "=" + job.NodeID,
	}
}

// Shell runs a command with /bin/sh -c, the payload on its standard
// input, in a process group of its own so that a timeout kills whatever
// the command started too. Its output is logged by the handler, the last
// OutputLimit bytes of it.
type Shell struct{}

// OutputLimit bounds the output of a run that Shell keeps: its last bytes.
const OutputLimit = 4096

// RunError is a failed run of a command: its exit, or a timeout, and the
// end of its output.
type RunError struct {
	Err    error  // *exec.ExitError, context.DeadlineExceeded, or why it did not start
	Output string // the last OutputLimit bytes of stdout and stderr
}

func (e *RunError) Error() string {
	msg := e.Err.Error()
	if errors.Is(e.Err, context.DeadlineExceeded) {
		msg = "timed out, killed"
	}
	if out := strings.TrimSpace(e.Output); out != "" {
		return fmt.Sprintf("%s: %s", msg, out)
	}
	return msg
}

func (e *RunError) Unwrap() error { return e.Err }

// Run implements Runner.
func (Shell) Run(ctx context.Context, job Job) error {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", job.Command)
	cmd.Env = append(agentEnv(), job.Env()...)
	cmd.Stdin = bytes.NewReader(job.Message.Payload)
	out := &tailBuffer{limit: OutputLimit}
	cmd.Stdout, cmd.Stderr = out, out
	ownProcessGroup(cmd)
	// Output pipes held open by a process the kill missed must not hold
	// the handler up.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		return &RunError{Err: err, Output: out.String()}
	}
	return nil
}

// agentEnv is this process's environment without the HEARSAY_ variables
// that configure the agent.
func agentEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HEARSAY_") {
			env = append(env, kv)
		}
	}
	return env
}

// tailBuffer keeps the last limit bytes written to it.
type tailBuffer struct {
	limit int
	buf   []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.limit; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string { return string(b.buf) }
