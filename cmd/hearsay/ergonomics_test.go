package main

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runAgentError runs an agent in-process that must fail to start, and
// returns its status and stderr.
func runAgentError(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var stderr syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, append([]string{"hearsay", "agent"}, args...), strings.NewReader(""), io.Discard, &stderr)
	return code, stderr.String()
}

// A busy UDP port is --bind's error, said once.
func TestAgentReportsABusyGossipPort(t *testing.T) {
	clearEnv(t)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	code, stderr := runAgentError(t, "--bind", pc.LocalAddr().String(), "--api", "", "--filter", "memory", "--data-dir", "")
	assert.Equal(t, exitFailure, code)
	assert.Equal(t, "hearsay: --bind: listen udp "+pc.LocalAddr().String()+": bind: address already in use\n", stderr)
}

// A data dir that cannot be made, or that another agent holds, is
// --data-dir's error.
func TestAgentReportsABadDataDir(t *testing.T) {
	clearEnv(t)
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	code, stderr := runAgentError(t, "--bind", freeUDPAddr(t), "--api", "", "--data-dir", filepath.Join(file, "data"))
	assert.Equal(t, exitFailure, code)
	assert.Equal(t, "hearsay: --data-dir: mkdir "+file+": not a directory\n", stderr)

	hearsayBinary(t)
	dir := t.TempDir()
	startAgent(t, "holder", freeUDPAddr(t), freeTCPAddr(t), dir)
	code, stderr = runAgentError(t, "--bind", freeUDPAddr(t), "--api", "", "--data-dir", dir)
	assert.Equal(t, exitFailure, code)
	assert.True(t, strings.HasPrefix(stderr, "hearsay: --data-dir: "), stderr)
	assert.Contains(t, stderr, "is another hearsay node running with the same data directory?")
	assert.Equal(t, 1, strings.Count(stderr, dir), "the path said once: %s", stderr)
}

// An agent with no peers says so when it starts.
func TestAgentWithoutPeersSaysSo(t *testing.T) {
	hearsayBinary(t)
	a := startAgent(t, "alone", freeUDPAddr(t), freeTCPAddr(t), t.TempDir())
	assert.Contains(t, a.logs.String(), "no peers: this node gossips with nobody; give it peers (--peers, --peers-file or --join)")
}
