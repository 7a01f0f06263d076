package handler

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
)

func requireShell(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh: the Shell runner needs it")
	}
}

func shellJob(command string) Job {
	return Job{Command: command, Attempt: 2, Node: "n1", NodeID: "00112233445566778899aabbccddeeff",
		Message: gossip.Message{ID: gossip.MessageID{0xab}, Topic: "orders.new", Origin: gossip.NodeID{0xcd},
			Created: time.Date(2026, 12, 4, 18, 0, 0, 123e6, time.UTC), Payload: []byte("the payload")}}
}

// The command gets the payload on stdin, the message in HEARSAY_MESSAGE_*
// variables, and none of the agent's own HEARSAY_ variables.
func TestShellPassesPayloadAndVariables(t *testing.T) {
	requireShell(t)
	t.Setenv("HEARSAY_PASSPHRASE", "must not leak")
	t.Setenv("HANDLER_TEST_KEPT", "kept")
	out := filepath.Join(t.TempDir(), "out")
	err := Shell{}.Run(context.Background(), shellJob(`cat > `+out+`.payload; env | grep -e ^HEARSAY_ -e ^HANDLER_TEST_ | sort > `+out))
	require.NoError(t, err)
	payload, err := os.ReadFile(out + ".payload")
	require.NoError(t, err)
	assert.Equal(t, "the payload", string(payload))
	env, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, strings.Join([]string{
		"HANDLER_TEST_KEPT=kept",
		"HEARSAY_HANDLER_ATTEMPT=2",
		"HEARSAY_MESSAGE_CREATED=2026-12-04T18:00:00.123Z",
		"HEARSAY_MESSAGE_ID=ab000000000000000000000000000000",
		"HEARSAY_MESSAGE_ORIGIN=cd000000000000000000000000000000",
		"HEARSAY_MESSAGE_SIZE=11",
		"HEARSAY_MESSAGE_TOPIC=orders.new",
		"HEARSAY_NODE_ID=00112233445566778899aabbccddeeff",
		"HEARSAY_NODE_NAME=n1",
	}, "\n")+"\n", string(env))
}

// A command may leave a large payload unread.
func TestShellCommandMayLeaveThePayloadUnread(t *testing.T) {
	requireShell(t)
	job := shellJob("true")
	job.Message.Payload = make([]byte, 4<<20) // more than a pipe holds
	require.NoError(t, Shell{}.Run(context.Background(), job))
}

// A failing command's error carries its exit status and the end of its
// output; a missing command is exit status 127 with the shell's message.
func TestShellFailures(t *testing.T) {
	requireShell(t)
	err := Shell{}.Run(context.Background(), shellJob(`echo something went wrong >&2; exit 3`))
	var runErr *RunError
	require.ErrorAs(t, err, &runErr)
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 3, exit.ExitCode())
	assert.Equal(t, "exit status 3: something went wrong", err.Error())

	err = Shell{}.Run(context.Background(), shellJob(`/no/such/handler-command`))
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 127, exit.ExitCode())
	assert.Contains(t, err.Error(), "not found")

	long := strings.Repeat("x", 3*OutputLimit)
	err = Shell{}.Run(context.Background(), shellJob(`printf '`+long+`end'; exit 1`))
	require.ErrorAs(t, err, &runErr)
	assert.Len(t, runErr.Output, OutputLimit)
	assert.True(t, strings.HasSuffix(runErr.Output, "end"), "the last bytes are kept")
}

// A command that outlives its timeout is killed with everything it
// started.
func TestShellTimeoutKillsTheProcessGroup(t *testing.T) {
	requireShell(t)
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "pid")
	// Time enough for the shell to start its child, even on a loaded
	// machine.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := Shell{}.Run(ctx, shellJob(`sleep 60 & echo $! > `+pidFile+`; wait`))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.True(t, strings.HasPrefix(err.Error(), "timed out, killed"), err.Error())
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	// The killed sleep is the shell's child, reparented and reaped by init;
	// until then it may linger as a zombie, which signal 0 still finds.
	require.Eventually(t, func() bool {
		err := syscall.Kill(pid, 0)
		if errors.Is(err, syscall.ESRCH) {
			return true
		}
		stat, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		return strings.Contains(string(stat), ") Z ")
	}, 5*time.Second, 10*time.Millisecond, "the command's child still runs")
}

// Real processes through a node: a command that fails its first run gets
// the message on the next, and a command that hangs is killed by the
// timeout and retried.
func TestShellHandlerRetriesARealCommand(t *testing.T) {
	requireShell(t)
	t.Parallel()
	dir := t.TempDir()
	n := newNode(t, "", nil)
	// The first run of each message only leaves a mark and fails; the
	// second appends the payload to got, in one write (runs of the two
	// messages may overlap).
	failOnce := `if [ -e "` + dir + `/$HEARSAY_MESSAGE_ID" ]; then printf '%s\n' "$(cat)" >> "` + dir + `/got"; else touch "` + dir + `/$HEARSAY_MESSAGE_ID"; exit 1; fi`
	hangs := `if [ "$HEARSAY_HANDLER_ATTEMPT" = 1 ]; then sleep 60; fi; cat > "` + dir + `/hung"`
	// A timeout no run of failOnce reaches, even on a loaded machine (a
	// killed run that had appended would append again); hangs is
	// idempotent, so its retries may time out too.
	hs := startHandlers(t, n, Config{Handlers: []Spec{mustSpec(t, "orders.>="+failOnce)},
		RetryMin: 10 * time.Millisecond, Timeout: time.Minute})
	slow := startHandlers(t, n, Config{Handlers: []Spec{mustSpec(t, "slow="+hangs)},
		RetryMin: 10 * time.Millisecond, Timeout: 500 * time.Millisecond})
	require.NoError(t, n.Start())
	publish(t, n, "orders.new", "first")
	publish(t, n, "slow", "after a timeout")
	publish(t, n, "orders.eu.new", "second")
	require.Eventually(t, func() bool {
		got, _ := os.ReadFile(filepath.Join(dir, "got"))
		hung, _ := os.ReadFile(filepath.Join(dir, "hung"))
		return len(strings.Fields(string(got))) >= 2 && string(hung) == "after a timeout"
	}, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, hs.Close())
	require.NoError(t, slow.Close())
	got, err := os.ReadFile(filepath.Join(dir, "got"))
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"first", "second"}, strings.Fields(string(got)))
}
