package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKeygen(t *testing.T) {
	clearEnv(t)
	a := runCLI(t, "", "keygen")
	b := runCLI(t, "", "keygen")
	require.Equal(t, exitOK, a.code, a.stderr)
	assert.Regexp(t, `^[A-Za-z0-9_-]{43}\n$`, a.stdout)
	assert.NotEqual(t, a.stdout, b.stdout)
}

type keysAnswer struct {
	Encrypted bool `json:"encrypted"`
	Keys      []struct {
		ID      string `json:"id"`
		Primary bool   `json:"primary"`
	} `json:"keys"`
}

// An encrypted agent whose API is a token-protected Unix socket; its keys
// are rotated with the keys commands.
func TestKeysCommands(t *testing.T) {
	clearEnv(t)
	dir, err := os.MkdirTemp("", "hs") // short: socket paths are limited to ~100 bytes
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	passFile := filepath.Join(dir, "pass")
	require.NoError(t, os.WriteFile(passFile, []byte("the first cluster passphrase\n"), 0o600))
	sock := "unix:" + filepath.Join(dir, "api.sock")

	// The agent runs as a process: urfave/cli's global help flag makes two
	// apps parsing at once in one process a data race.
	agentLog := &syncBuffer{}
	cmd := exec.Command(hearsayBinary(t), "agent", "--bind", freeUDPAddr(t), "--api", sock, "--api-token", "tok-123",
		"--data-dir", filepath.Join(dir, "data"), "--passphrase-file", passFile, "--interval", "20ms")
	cmd.Env = agentEnv()
	cmd.Stdout, cmd.Stderr = agentLog, agentLog
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("agent log:\n%s", agentLog.String())
		}
	})
	require.True(t, agentLog.awaitText(`msg="hearsay agent running"`, nil, 20*time.Second), "the agent did not start")
	list := func() keysAnswer {
		var res cliResult
		require.Eventually(t, func() bool {
			res = runCLI(t, "", "keys", "list", "--api", sock, "--api-token", "tok-123")
			return res.code == exitOK
		}, 20*time.Second, 50*time.Millisecond, "keys list: %s", res.stderr)
		var k keysAnswer
		require.NoError(t, json.Unmarshal([]byte(res.stdout), &k))
		return k
	}
	k := list()
	require.True(t, k.Encrypted)
	require.Len(t, k.Keys, 1)
	oldID := k.Keys[0].ID

	res := runCLI(t, "", "keys", "list", "--api", sock)
	assert.Equal(t, exitFailure, res.code)
	assert.Contains(t, res.stderr, "answered 401")

	res = runCLI(t, "the second cluster passphrase\n", "keys", "install", "--api", sock, "--api-token", "tok-123")
	require.Equal(t, exitOK, res.code, res.stderr)
	var installed struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &installed))
	require.NotEqual(t, oldID, installed.ID)

	res = runCLI(t, "", "keys", "use", "--api", sock, "--api-token", "tok-123", installed.ID)
	require.Equal(t, exitOK, res.code, res.stderr)
	res = runCLI(t, "", "keys", "remove", "--api", sock, "--api-token", "tok-123", installed.ID)
	assert.Equal(t, exitFailure, res.code)
	assert.Contains(t, res.stderr, "primary")
	res = runCLI(t, "", "keys", "remove", "--api", sock, "--api-token", "tok-123", oldID)
	require.Equal(t, exitOK, res.code, res.stderr)
	k = list()
	require.Len(t, k.Keys, 1)
	assert.Equal(t, installed.ID, k.Keys[0].ID)
	assert.True(t, k.Keys[0].Primary)

	res = runCLI(t, "", "keys", "use", "--api", sock, "--api-token", "tok-123", "nothex")
	assert.Equal(t, exitUsage, res.code)
	assert.NotContains(t, agentLog.String(), "the first cluster passphrase", "never logged")
}

func TestPassphraseValidation(t *testing.T) {
	clearEnv(t)
	short := filepath.Join(t.TempDir(), "short")
	require.NoError(t, os.WriteFile(short, []byte("tiny\n"), 0o600))
	res := runCLI(t, "", "agent", "--passphrase-file", short, "--data-dir", t.TempDir())
	assert.Equal(t, exitUsage, res.code)
	assert.Regexp(t, `^hearsay: --passphrase-file: the passphrase has 4 bytes, at least 12`, res.stderr)
	res = runCLI(t, "", "agent", "--passphrase-file", filepath.Join(t.TempDir(), "none"))
	assert.Equal(t, exitUsage, res.code)
	assert.Contains(t, res.stderr, "--passphrase-file: open")
	t.Setenv("HEARSAY_PASSPHRASE", "short")
	res = runCLI(t, "", "agent", "--data-dir", t.TempDir())
	assert.Equal(t, exitUsage, res.code)
	assert.Contains(t, res.stderr, "at least 12")
}
