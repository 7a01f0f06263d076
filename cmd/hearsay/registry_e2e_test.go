package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/node"
)

func peersInfoOf(t *testing.T, api string) node.PeersInfo {
	var info node.PeersInfo
	getJSON(t, api, "/v1/peers", &info)
	return info
}

// Four agents with --registry memberlist join, each through the memberlist
// addresses of those started before it, encrypted with the cluster
// passphrase. An agent stopped by SIGTERM leaves the cluster: it is gone
// from the others' peers at once (a crash is left to memberlist's failure
// detection, which registry/memberlist's tests cover), and messages keep
// reaching the survivors.
//
// memberlist gossips a change to a few random members, a couple of times:
// a join may miss one until a push-pull (every 15 s with the local
// profile). Joining through every member tells each by push-pull at once;
// a leave, in four members, reaches every survivor by gossip.
func TestE2EMemberlistCluster(t *testing.T) {
	t.Parallel()
	hearsayBinary(t)
	const n = 4
	passphrase := filepath.Join(t.TempDir(), "passphrase")
	require.NoError(t, os.WriteFile(passphrase, []byte("memberlist end-to-end passphrase"), 0o600))
	var agents []*agentProcess
	var members []string // memberlist addresses
	for i := range n {
		mlAddr := freeTCPAddr(t)
		_, mlPort, _ := strings.Cut(mlAddr, ":")
		args := []string{"--registry", "memberlist", "--memberlist-port", mlPort, "--memberlist-profile", "local",
			"--interval", "50ms", "--passphrase-file", passphrase}
		if i > 0 {
			args = append(args, "--join", strings.Join(members, ","))
		}
		members = append(members, mlAddr)
		agents = append(agents, startAgent(t, fmt.Sprintf("ml-%d", i+1), freeUDPAddr(t), freeTCPAddr(t), t.TempDir(), args...))
	}
	for _, a := range agents {
		require.Eventually(t, func() bool { return len(peersInfoOf(t, a.api).Peers) == n-1 }, 20*time.Second,
			50*time.Millisecond, "%s never saw all %d others", a.name, n-1)
	}
	info := peersInfoOf(t, agents[1].api)
	require.Equal(t, node.RegistryMemberlist, info.Registry)
	require.Len(t, info.Members, n)
	require.True(t, statusOf(t, agents[1].api).Encrypted)

	var streams []*testStream
	for _, a := range agents[1:] {
		streams = append(streams, openStream(t, a.name, a.api, "ml.>"))
	}
	first := publishMessages(t, agents[0].api, "ml.first", 30)
	for _, s := range streams {
		s.waitFor(t, first, 20*time.Second)
	}

	leaver := agents[n-1]
	require.NoError(t, leaver.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-leaver.exited:
		require.NoError(t, leaver.exitErr)
	case <-time.After(2 * shutdownTimeout):
		t.Fatal("the agent did not stop on SIGTERM")
	}
	for _, a := range agents[:n-1] {
		require.Eventually(t, func() bool { return !slices.Contains(peersInfoOf(t, a.api).Peers, leaver.gossip) },
			30*time.Second, 20*time.Millisecond, "%s still lists the agent that left", a.name)
	}
	second := publishMessages(t, agents[0].api, "ml.second", 30)
	for _, s := range streams[:n-2] {
		s.waitFor(t, second, 20*time.Second)
		s.assertExactly(t, append(append([]string(nil), first...), second...))
	}
}

// Eight agents with --registry dht bootstrap through one seed's gossip
// address: every one delivers every message, exactly once.
func TestE2EDHTCluster(t *testing.T) {
	t.Parallel()
	hearsayBinary(t)
	const n = 8
	var agents []*agentProcess
	var seed string
	for i := range n {
		gossip := freeUDPAddr(t)
		args := []string{"--registry", "dht", "--interval", "50ms"}
		if i > 0 {
			args = append(args, "--join", seed)
		} else {
			seed = gossip
		}
		agents = append(agents, startAgent(t, fmt.Sprintf("dht-%d", i+1), gossip, freeTCPAddr(t), t.TempDir(), args...))
	}
	for _, a := range agents {
		require.Eventually(t, func() bool { return len(peersInfoOf(t, a.api).Peers) == n-1 }, 30*time.Second,
			50*time.Millisecond, "%s never found all %d others", a.name, n-1)
	}
	info := peersInfoOf(t, agents[2].api)
	require.Equal(t, node.RegistryDHT, info.Registry)
	require.NotEmpty(t, info.Buckets)

	var streams []*testStream
	for _, a := range agents {
		streams = append(streams, openStream(t, a.name, a.api, "dht.>"))
	}
	ids := publishMessages(t, agents[5].api, "dht.test", 50)
	for _, s := range streams {
		s.waitFor(t, ids, 20*time.Second)
	}
	agents[0].waitRounds(t, 6) // the others run theirs meanwhile
	for i, s := range streams {
		agents[i].settle(t, s, 0)
		s.assertExactly(t, ids)
	}
}
