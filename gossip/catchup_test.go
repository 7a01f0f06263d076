package gossip_test

import (
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/filter"
	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/gossip/gossiptest"
	"github.com/hearsay-io/hearsay/msglog"
	"github.com/hearsay-io/hearsay/transport"
)

// catchUpDownEnv sets how long TestCatchUpAfterDowntime's node is down, as
// a Go duration; .ci/run sets it to 1h, the scale of the issue (360,000
// messages missed at 100 msg/s).
const catchUpDownEnv = "HEARSAY_CATCHUP_DOWN"

// A node down while the others publish 100 messages a second, back with
// its log and seen filter (as a restarted agent is with its data dir),
// gets every message it missed through anti-entropy alone (gossip's
// caches hold only the last seconds), each once, while publishing goes
// on. The clock is virtual and the network the in-memory one with 1 ms
// latency: the repair rate is in virtual time, that of the protocol with
// its per-round caps, not of this machine.
func TestCatchUpAfterDowntime(t *testing.T) {
	down := 2 * time.Minute
	if s := os.Getenv(catchUpDownEnv); s != "" {
		d, err := time.ParseDuration(s)
		require.NoError(t, err, catchUpDownEnv)
		down = d
	} else if testing.Short() {
		t.Skip("12,000 messages; -short")
	}
	const (
		nodes   = 5
		back    = nodes - 1 // the node that goes down
		rate    = 100       // messages per second
		payload = 256
	)
	logs := make([]msglog.Log, nodes)
	filters := make([]filter.SeenFilter, nodes)
	for i := range nodes {
		logs[i] = msglog.NewMemory(0)
		filters[i] = filter.NewMemory(filter.MemoryConfig{})
	}
	c := gossiptest.New(t, gossiptest.Config{Nodes: nodes, Network: transport.NetworkConfig{Seed: 3}, Core: func(i int, c *gossip.Config) {
		c.Log, c.Filter = logs[i], filters[i]
		c.Retention = down + time.Hour
	}})
	published := 0
	var sent []gossip.MessageID
	publish := func(d time.Duration) {
		for range int(d.Seconds() * rate) {
			body := make([]byte, payload)
			copy(body, strconv.Itoa(published))
			sent = append(sent, c.Push(published%back, "catchup", body).ID)
			published++
			c.Run(time.Second / rate)
		}
	}
	got := map[gossip.MessageID]bool{}
	seen := 0 // of c.Delivered(back), in got
	has := func(ids []gossip.MessageID) bool {
		for _, m := range c.Delivered(back)[seen:] {
			got[m.ID] = true
		}
		seen = len(c.Delivered(back))
		for _, id := range ids {
			if !got[id] {
				return false
			}
		}
		return true
	}
	publish(10 * time.Second)
	c.Run(2 * time.Second)
	require.Equal(t, published, len(c.Delivered(back)), "up to date before it goes down")
	c.Stop(back)
	before := published
	publish(down)
	missed := published - before
	start := c.Now()
	c.Restart(back)
	upToRestart := slices.Clone(sent)
	for !has(upToRestart) && c.Now().Sub(start) < 10*time.Minute {
		publish(time.Second / 10)
	}
	took := c.Now().Sub(start)
	require.True(t, has(upToRestart), "every message missed, after %s", took)
	c.Run(10 * time.Second)
	require.Equal(t, published, len(c.Delivered(back)), "every message, once")
	require.True(t, has(sent))
	requireOnceEach(t, c.Delivered(back))
	s := c.Core(back).Stats()
	t.Logf("missed %d messages in %s down; caught up in %s (virtual): %.0f messages/s of repair; "+
		"%d sessions, %d found missing, %d duplicates, %d AE bytes in",
		missed, down, took.Round(time.Millisecond), float64(missed)/took.Seconds(), s.AESessions, s.AEMissing, s.Duplicates, s.AEBytesIn)
}
