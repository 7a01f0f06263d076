package main

// End-to-end tests: real hearsay processes on 127.0.0.1.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Four agents; messages published on the first reach the three others
// exactly once. Then the fourth is killed and restarted on the same data
// dir: its persistent seen filter keeps the messages it already delivered
// from being delivered again, although its peers offer them.
func TestE2EDeliveryAndRestart(t *testing.T) {
	t.Parallel()
	hearsayBinary(t)
	const n = 4
	c := newCluster(t, n)
	// A cache of 1,000 rounds (20 s at 20ms) keeps the first messages on
	// offer until after the restart, so that the restarted agent is sure to
	// be offered them again.
	gossipFlags := []string{"--interval", "20ms", "--cache-rounds", "1000"}
	agents := c.startAll(t, "agent", gossipFlags...)
	for _, a := range agents {
		assert.Equal(t, n-1, a.status(t).Peers, "%s leaves itself out of --peers", a.name)
	}

	var streams []*testStream
	for _, a := range agents[1:] {
		streams = append(streams, openStream(t, a.name, a.api, "e2e.>"))
	}
	first := publishMessages(t, agents[0].api, "e2e.first", 100)
	for _, s := range streams {
		s.waitFor(t, first, 20*time.Second)
	}
	agents[1].waitRounds(t, 10) // the others run theirs meanwhile
	for i, s := range streams {
		agents[i+1].settle(t, s, 0)
		s.assertExactly(t, first)
	}

	// Kill agent 4 and restart it with no peers but itself in a peers file,
	// so that it pulls nothing before its new stream is open.
	a4 := agents[3]
	idBefore := a4.status(t).ID
	a4.kill(t)
	peersFile := filepath.Join(t.TempDir(), "peers")
	require.NoError(t, os.WriteFile(peersFile, []byte("# only me for now\n"+a4.gossip+"\n"), 0o600))
	a4 = c.start(t, 3, a4.name+"-restarted", append([]string{"--peers-file", peersFile}, gossipFlags...)...)
	st := a4.status(t)
	assert.Equal(t, idBefore, st.ID, "the identity is kept in the data dir")
	assert.Equal(t, 0, st.Peers)
	stream4 := openStream(t, a4.name, a4.api, "e2e.>")

	// Now give it its peers, by SIGHUP.
	require.NoError(t, os.WriteFile(peersFile, []byte(strings.Join(c.gossip, "\n")+"\n"), 0o600))
	require.NoError(t, a4.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return a4.status(t).Peers == n-1 }, 10*time.Second, 10*time.Millisecond)

	second := publishMessages(t, agents[0].api, "e2e.second", 20)
	stream4.waitFor(t, second, 20*time.Second)
	for _, s := range streams[:2] {
		s.waitFor(t, second, 20*time.Second)
	}
	// Its peers offer it the first 100 again: wait until they came, one
	// way or the other, and check that the seen filter refused them.
	require.Eventually(t, func() bool {
		st := a4.status(t)
		return st.MessagesDelivered+st.Duplicates >= 120
	}, 20*time.Second, 20*time.Millisecond, "the restarted agent was not offered the first messages again")
	a4.settle(t, stream4, 6)
	stream4.assertExactly(t, second)
	st = a4.status(t)
	assert.EqualValues(t, 20, st.MessagesDelivered)
	assert.GreaterOrEqual(t, st.Duplicates, uint64(100))
	for i, s := range streams[:2] {
		agents[i+1].settle(t, s, 1)
		s.assertExactly(t, append(append([]string(nil), first...), second...))
	}
	assert.Regexp(t, `msg="SIGHUP: peers reloaded" peers=3`, a4.logs.String())
}

// An agent SIGKILLed while messages keep flowing, restarted once what it
// missed first is gone from the propagation caches: anti-entropy brings it
// every message it missed, and a stream resumed with Last-Event-ID delivers
// each exactly once, none twice.
func TestE2EKilledAgentRecoversWhatItMissed(t *testing.T) {
	t.Parallel()
	hearsayBinary(t)
	const cacheRounds = 10
	c := newCluster(t, 3)
	flags := []string{"--interval", "20ms", "--cache-rounds", fmt.Sprint(cacheRounds), "--ae-interval", "200ms"}
	agents := c.startAll(t, "agent", flags...)
	before := openStream(t, "agent-3", agents[2].api, "flow.>")
	pub := startPublisher(agents[0].api, "flow.tick", 20*time.Millisecond)
	before.waitTotal(t, 10, 20*time.Second)

	agents[2].kill(t)
	// The outage outlasts the caches: after three times their rounds on
	// both survivors, what was published in its first rounds is offered by
	// neither, and only anti-entropy can bring it back.
	agents[0].waitRounds(t, 3*cacheRounds)
	agents[1].waitRounds(t, 3*cacheRounds)
	pub.waitPublished(t, 5)
	restarted := c.start(t, 2, "agent-3-restarted", append(c.peersFlag(), flags...)...)
	before.mu.Lock()
	lastSeen := before.order[len(before.order)-1]
	before.mu.Unlock()
	after := openStreamFrom(t, "agent-3 resumed", restarted.api, "flow.>", lastSeen)
	pub.waitPublished(t, 20) // and messages keep flowing after the restart
	all := pub.halt()

	before.mu.Lock()
	var missed []string
	for _, id := range all {
		if before.counts[id] == 0 {
			missed = append(missed, id)
		}
	}
	beforeCounts := before.counts
	before.mu.Unlock()
	after.waitFor(t, missed, 60*time.Second)
	// Quiet: nothing left on offer in the caches, nothing left for
	// anti-entropy to repair; then a last message, published on agent 3,
	// comes after everything it delivered before on the stream.
	require.Eventually(t, func() bool {
		root := restarted.status(t).MerkleRoot
		for _, a := range []*agentProcess{agents[0], agents[1], restarted} {
			if st := a.status(t); st.CacheMessages > 0 || st.MerkleRoot != root {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "the agents' logs never agreed")
	last := publishMessages(t, restarted.api, "flow.last", 1)
	after.waitFor(t, last, 10*time.Second)

	after.mu.Lock()
	defer after.mu.Unlock()
	delete(after.counts, last[0])
	for id, k := range after.counts {
		assert.Equal(t, 1, k, "delivered twice after the restart: %s", id)
		assert.Zero(t, beforeCounts[id], "delivered before the kill and again after: %s", id)
	}
	for id, k := range beforeCounts {
		assert.Equal(t, 1, k, "delivered twice before the kill: %s", id)
	}
	assert.Len(t, after.counts, len(missed), "exactly the missed messages")
	assert.Empty(t, after.other, "events other than messages")
	repaired := metric(t, restarted.api, "hearsay_ae_repaired_messages_total") +
		metric(t, agents[0].api, "hearsay_ae_pushed_messages_total") + metric(t, agents[1].api, "hearsay_ae_pushed_messages_total")
	assert.Positive(t, repaired, "anti-entropy brought what the caches no longer held")
	t.Logf("%d published; %d before the kill, %d after the restart, %.0f by anti-entropy",
		len(all), len(beforeCounts), len(after.counts), repaired)
}

// The client commands as built binaries against a running agent.
func TestE2EClientCommands(t *testing.T) {
	t.Parallel()
	a := startAgent(t, "solo", freeUDPAddr(t), freeTCPAddr(t), t.TempDir(), "--interval", "50ms")

	// subscribe runs until interrupted; its output is read line by line.
	lines, subErr, sub := startSubscriber(t, "--api", a.api, "--topic", "cli.>", "--format", "raw")
	require.Eventually(t, func() bool { return statusOf(t, a.api).Subscribers == 1 }, 10*time.Second, 10*time.Millisecond)

	hexID := regexp.MustCompile(`^[0-9a-f]{32}\n$`)
	code, out, errOut := runBinary(t, "", "push", "--api", a.api, "--topic", "cli.one", "hello")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, hexID, out)
	code, out, errOut = runBinary(t, "from stdin", "push", "--api", "http://"+a.api, "--topic", "cli.two")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, hexID, out)
	// The API address from the environment.
	cmd := exec.Command(hearsayBinary(t), "push", "--topic", "cli.three", "-")
	cmd.Env = append(agentEnv(), "HEARSAY_API="+a.api)
	cmd.Stdin = strings.NewReader("from env")
	out2, err := cmd.Output()
	require.NoError(t, err)
	assert.Regexp(t, hexID, string(out2))

	for _, want := range []string{"hello", "from stdin", "from env"} {
		select {
		case line := <-lines:
			assert.Equal(t, want, line)
		case <-time.After(10 * time.Second):
			t.Fatalf("subscribe printed nothing for %q; stderr: %s", want, subErr.String())
		}
	}
	require.NoError(t, sub.Process.Signal(os.Interrupt))
	assert.NoError(t, sub.Wait(), "subscribe exits 0 on SIGINT; stderr: %s", subErr.String())

	code, out, errOut = runBinary(t, "", "status", "--api", a.api)
	require.Equal(t, 0, code, errOut)
	var st agentStatus
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	assert.Equal(t, "solo", st.Name)
	assert.EqualValues(t, 3, st.MessagesPublished)
	assert.Contains(t, out, "\n  \"name\": \"solo\",\n", "indented")

	code, out, errOut = runBinary(t, "", "peers", "--api", a.api)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "{\n  \"registry\": \"static\",\n  \"peers\": [],\n  \"suspects\": []\n}\n", out)

	// Errors: the agent's, and usage.
	code, _, errOut = runBinary(t, strings.Repeat("x", 1<<20+1), "push", "--api", a.api, "--topic", "cli.big")
	assert.Equal(t, exitFailure, code)
	assert.Regexp(t, `^hearsay: agent answered 413: payload larger than \d+ bytes`, errOut)
	assert.Equal(t, 1, strings.Count(errOut, "\n"))

	code, out, errOut = runBinary(t, "", "agent", "--max-packet-size", "100")
	assert.Equal(t, exitUsage, code)
	assert.Empty(t, out)
	assert.Equal(t, "hearsay: --max-packet-size: must be between 512 and 65507, got 100\n", errOut)

	code, _, errOut = runBinary(t, "", "agent", "--no-such-flag")
	assert.Equal(t, exitUsage, code)
	assert.Equal(t, "hearsay: unknown flag --no-such-flag (see hearsay agent --help)\n", errOut)

	code, _, errOut = runBinary(t, "", "no-such-command")
	assert.Equal(t, exitUsage, code)
	assert.Equal(t, "hearsay: unknown command \"no-such-command\" (see hearsay --help)\n", errOut)

	// SIGTERM stops the agent gracefully, with exit status 0, and ends the
	// open streams with the shutdown event.
	stream := openStream(t, "solo", a.api, ">")
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-a.exited:
		assert.NoError(t, a.exitErr)
		assert.Contains(t, a.logs.String(), `msg="node stopped"`)
	case <-time.After(2 * shutdownTimeout):
		t.Fatal("the agent did not stop on SIGTERM")
	}
	assert.Equal(t, []string{"error: node shutting down"}, stream.waitEnd(t, 10*time.Second))
}

// A 1 MiB message pushed from the command line travels as chunks between
// agent processes and reaches every stream once, whole.
func TestE2ELargeMessage(t *testing.T) {
	t.Parallel()
	hearsayBinary(t)
	agents := newCluster(t, 3).startAll(t, "large", "--interval", "20ms")
	var streams []*testStream
	for _, a := range agents[1:] {
		streams = append(streams, openStream(t, a.name, a.api, "large"))
	}
	payload := make([]byte, 1<<20)
	for i := range payload {
		payload[i] = byte(i*31 + i>>10)
	}
	code, out, errOut := runBinary(t, string(payload), "push", "--api", agents[0].api, "--topic", "large")
	require.Equal(t, 0, code, errOut)
	id := strings.TrimSpace(out)
	for _, s := range streams {
		s.waitFor(t, []string{id}, 30*time.Second)
		s.assertExactly(t, []string{id})
	}
	assert.EqualValues(t, 1, agents[2].status(t).MessagesDelivered, "chunks are not messages to the application")
}
