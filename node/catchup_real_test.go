package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
)

// catchUpRealEnv names how many messages TestCatchUpRealAgents publishes
// while its node is down; unset, the test is skipped (it takes a minute or
// more of real time and all the CPU): HEARSAY_CATCHUP_REAL=360000 is the
// issue's hour at 100 msg/s.
const catchUpRealEnv = "HEARSAY_CATCHUP_REAL"

// Real nodes (UDP on 127.0.0.1, LevelDB filter and log in a data dir,
// the default gossip and anti-entropy settings, 256-byte payloads): one
// stops, the others publish while it is down, and it is started again on
// the same address and data dir. It reports how fast anti-entropy brings
// it what it missed, counted from its restart, and checks each came once.
func TestCatchUpRealAgents(t *testing.T) {
	s := os.Getenv(catchUpRealEnv)
	if s == "" {
		t.Skip("set " + catchUpRealEnv + "=N to publish N messages while a node is down (a minute or more of real time)")
	}
	missed, err := strconv.Atoi(s)
	require.NoError(t, err, catchUpRealEnv)
	const nodes = 5
	back := nodes - 1
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dirs := make([]string, nodes)
	binds := make([]string, nodes)
	regs := make([]*settablePeers, nodes)
	all := make([]*Node, nodes)
	open := func(i int) *Node {
		cfg := Config{Bind: binds[i], DataDir: dirs[i], Registry: regs[i], Name: fmt.Sprintf("n%d", i), Logger: quiet,
			Gossip: gossip.Config{Retention: 2 * time.Hour}}
		nd, err := New(cfg)
		require.NoError(t, err)
		require.NoError(t, nd.Start())
		return nd
	}
	for i := range nodes {
		dirs[i] = filepath.Join(t.TempDir(), "data")
		binds[i] = "127.0.0.1:0"
		regs[i] = &settablePeers{}
		all[i] = open(i)
		binds[i] = all[i].Addr().String()
		t.Cleanup(func() { all[i].Close() })
	}
	for i, reg := range regs {
		var peers []netip.AddrPort
		for j := range nodes {
			if j != i {
				peers = append(peers, netip.MustParseAddrPort(binds[j]))
			}
		}
		reg.set(peers)
	}
	require.NoError(t, all[back].Close())

	ctx := context.Background()
	pubStart := time.Now()
	errs := make(chan error, back)
	for i := range back {
		go func() { // one publisher per node up, as fast as each accepts
			payload := make([]byte, 256)
			for k := i; k < missed; {
				copy(payload, strconv.Itoa(k))
				_, err := all[i].Publish(ctx, "catchup", payload)
				if errors.Is(err, gossip.ErrBackpressure) {
					time.Sleep(time.Millisecond)
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				k += back
			}
			errs <- nil
		}()
	}
	for range back {
		require.NoError(t, <-errs)
	}
	for i := range back {
		require.Eventually(t, func() bool { return all[i].Stats().Gossip.Delivered >= uint64(missed) },
			5*time.Minute, 50*time.Millisecond, "node %d has them all", i)
	}
	t.Logf("published %d messages to the %d nodes up in %s", missed, back, time.Since(pubStart).Round(time.Millisecond))
	time.Sleep(7 * time.Second) // past gossip's window: what the restarted node lacks is anti-entropy's

	start := time.Now()
	all[back] = open(back)
	require.Eventually(t, func() bool { return all[back].Stats().Gossip.Delivered >= uint64(missed) },
		10*time.Minute, 20*time.Millisecond, "the restarted node has them all")
	took := time.Since(start)
	st := all[back].Stats().Gossip
	require.Equal(t, uint64(missed), st.Delivered, "each once")
	t.Logf("restarted node caught up on %d messages in %s: %.0f messages/s of repair, counted from its restart "+
		"(%d sessions, %d found missing, %d duplicates, %d uncached)",
		missed, took.Round(time.Millisecond), float64(missed)/took.Seconds(), st.AESessions, st.AEMissing, st.Duplicates, st.Uncached)
	for i := range back {
		t.Logf("node %d: drops %v", i, all[i].Stats().Drops)
	}
	t.Logf("restarted: core drops %v, node drops %v; UDP receive buffer errors on this host: %s", st.Dropped, all[back].Stats().Drops, rcvbufErrors())
}

// rcvbufErrors reads the host's UDP RcvbufErrors (Linux), or says why not.
func rcvbufErrors() string {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return err.Error()
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i := range f {
			if i < len(names) && names[i] == "RcvbufErrors" {
				return f[i]
			}
		}
	}
	return "not found"
}
