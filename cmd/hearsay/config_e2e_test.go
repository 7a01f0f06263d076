package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// SIGHUP makes a running agent read its --config file again: the peers
// and the log level change at once, a change that needs a restart is said
// so, and a file broken meanwhile keeps the agent as it was.
func TestE2EConfigFileSIGHUP(t *testing.T) {
	t.Parallel()
	hearsayBinary(t)
	p1, p2 := freeUDPAddr(t), freeUDPAddr(t)
	path := writeFile(t, "agent.yaml", "peers: ["+p1+"]\nlog-level: info\ninterval: 50ms\n")
	a := startAgent(t, "sighup", freeUDPAddr(t), freeTCPAddr(t), t.TempDir(), "--config", path)
	require.Equal(t, []string{p1}, peersInfoOf(t, a.api).Peers)

	hup := func(text, awaitLog string) {
		t.Helper()
		require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
		before := strings.Count(a.logs.String(), awaitLog)
		require.NoError(t, a.cmd.Process.Signal(syscall.SIGHUP))
		require.True(t, a.logs.changes.await(func() bool { return strings.Count(a.logs.String(), awaitLog) > before }, a.exited, 10*time.Second),
			"no %q in the log after SIGHUP", awaitLog)
	}
	// The WARN about the restart is the reload's last line.
	hup("peers: ["+p1+", "+p2+"]\nlog-level: debug\ninterval: 50ms\nfanout: 5\n", "some changes take effect only after a restart")
	assert.ElementsMatch(t, []string{p1, p2}, peersInfoOf(t, a.api).Peers)
	logs := a.logs.String()
	assert.Contains(t, logs, `changed="[fanout log-level peers]" applied="[log-level peers]" need_restart=[fanout]`)
	var st struct{ Fanout int }
	getJSON(t, a.api, "/v1/status", &st)
	assert.Equal(t, 3, st.Fanout, "fanout needs a restart")

	hup("peers: ["+p2+"]\nlog-level: debug\ninterval: 50ms\nfanout: 400\n", "SIGHUP: configuration not reloaded")
	assert.Contains(t, a.logs.String(), `--config `+path+`: key \"fanout\": must be between 1 and 64, got 400`)
	assert.ElementsMatch(t, []string{p1, p2}, peersInfoOf(t, a.api).Peers, "a broken file changes nothing")

	hup("peers: ["+p2+"]\nlog-level: info\ninterval: 50ms\n", "SIGHUP: configuration reloaded")
	assert.Equal(t, []string{p2}, peersInfoOf(t, a.api).Peers)
	res := runCLI(t, "", "health", "--api", a.api)
	assert.Equal(t, exitOK, res.code, "the agent runs on: %s", res.stderr)
}
