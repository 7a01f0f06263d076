package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Message handlers in a real agent, fed by a real peer: a command that
// fails its first run gets the message on its retry; a message still
// failing when the agent stops, and one published while it is down, run
// after its restart; nothing handled before the restart runs again.
func TestE2EHandlersRetryAndSurviveARestart(t *testing.T) {
	t.Parallel()
	hearsayBinary(t)
	dir := t.TempDir()
	// Every run is logged in runs; a successful one in done. "fail-once"
	// fails its first run; "stuck" fails until the file unstick exists.
	script := filepath.Join(dir, "handle.sh")
	require.NoError(t, os.WriteFile(script, []byte(`#!/bin/sh
payload=$(cat)
echo "$HEARSAY_MESSAGE_ID $HEARSAY_HANDLER_ATTEMPT $payload" >> "$1/runs"
case "$payload" in
fail-once) [ "$HEARSAY_HANDLER_ATTEMPT" = 1 ] && exit 1 ;;
stuck) [ -e "$1/unstick" ] || exit 1 ;;
esac
echo "$HEARSAY_MESSAGE_ID $HEARSAY_MESSAGE_TOPIC $payload" >> "$1/done"
`), 0o700))
	c := newCluster(t, 2)
	// The peer keeps its messages on offer long enough for the restarted
	// agent to pull what it missed.
	flags := append(c.peersFlag(), "--interval", "20ms", "--cache-rounds", "1000")
	handlerFlags := append([]string{"--handler", "jobs.>=" + script + " " + dir}, flags...)
	peer := c.start(t, 1, "peer", flags...)
	agent := c.start(t, 0, "handler-agent", handlerFlags...)

	done := func() []string {
		b, _ := os.ReadFile(filepath.Join(dir, "done"))
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	waitDone := func(n int) {
		t.Helper()
		require.Eventually(t, func() bool { return len(done()) >= n && done()[0] != "" }, 30*time.Second, 20*time.Millisecond,
			"handled: %v", done())
	}
	first := publishMessages(t, peer.api, "jobs.a", 1)
	failOnce := publish1(t, peer.api, "jobs.b", "fail-once")
	stuck := publish1(t, peer.api, "jobs.c", "stuck")
	publishMessages(t, peer.api, "other.topic", 1) // not for the handler
	last := publishMessages(t, peer.api, "jobs.a", 1)
	waitDone(3)

	require.NoError(t, agent.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-agent.exited:
		require.NoError(t, agent.exitErr)
	case <-time.After(20 * time.Second):
		t.Fatal("the agent did not stop on SIGTERM")
	}
	whileDown := publish1(t, peer.api, "jobs.d", "while down")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "unstick"), nil, 0o600))
	agent = c.start(t, 0, "handler-agent", handlerFlags...)
	waitDone(5)
	// Wait a while for anything that would wrongly run again.
	agent.waitRounds(t, 20)

	runs, err := os.ReadFile(filepath.Join(dir, "runs"))
	require.NoError(t, err)
	count := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(runs)), "\n") {
		count[strings.Fields(line)[0]]++
	}
	assert.Equal(t, 1, count[first[0]], "handled before the restart: run once")
	assert.Equal(t, 1, count[last[0]], "handled before the restart: run once")
	assert.Equal(t, 2, count[failOnce], "failed once, then handled")
	assert.GreaterOrEqual(t, count[stuck], 2, "retried until the restart, then handled")
	assert.Equal(t, 1, count[whileDown], "delivered after the restart")
	assert.ElementsMatch(t, []string{
		first[0] + " jobs.a jobs.a #0", failOnce + " jobs.b fail-once", last[0] + " jobs.a jobs.a #0",
		stuck + " jobs.c stuck", whileDown + " jobs.d while down",
	}, done(), "each handled once")
	assert.Contains(t, agent.logs.String(), "handler resumed")
}

// publish1 publishes one message with payload over HTTP and returns its
// ID.
func publish1(t *testing.T, api, topic, payload string) string {
	t.Helper()
	resp, err := http.Post("http://"+api+"/v1/messages?topic="+url.QueryEscape(topic), "application/octet-stream",
		strings.NewReader(payload))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	var answer struct{ ID string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&answer))
	return answer.ID
}
