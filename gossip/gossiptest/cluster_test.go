package gossiptest_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/gossip/gossiptest"
	"github.com/hearsay-io/hearsay/wire"
)

// With Instant, a pull and what it sets off happen at one instant; without,
// each hop takes the network's latency.
func TestInstantDeliversAtOnce(t *testing.T) {
	for _, instant := range []bool{true, false} {
		c := gossiptest.New(t, gossiptest.Config{Nodes: 2, Instant: instant})
		c.Push(0, "a", []byte("x"))
		pulled := false
		c.Intercept = func(p gossiptest.Packet) bool {
			pulled = pulled || p.From == 1 && p.Type() == wire.Pull
			return false
		}
		require.True(t, c.RunUntil(time.Second, func() bool { return pulled }))
		require.False(t, c.Quiet(), "the pull is in flight")
		at := c.Now()
		require.True(t, c.RunUntil(time.Second, c.Quiet))
		require.Len(t, c.Delivered(1), 1)
		if instant {
			require.Equal(t, at, c.Now())
		} else {
			require.Equal(t, at.Add(2*time.Millisecond), c.Now(), "the pull and its answer, 1 ms each")
		}
	}
}

func TestRunUntilStopsAtTheLimit(t *testing.T) {
	c := gossiptest.New(t, gossiptest.Config{Nodes: 3})
	start := c.Now()
	require.False(t, c.RunUntil(500*time.Millisecond, func() bool { return false }))
	require.Equal(t, start.Add(500*time.Millisecond), c.Now())
	require.True(t, c.RunUntil(time.Second, func() bool { return true }))
	require.Equal(t, start.Add(500*time.Millisecond), c.Now(), "done at once: the clock stays")
	c.Run(time.Second)
	require.Equal(t, start.Add(1500*time.Millisecond), c.Now())
	require.Positive(t, c.Core(0).Stats().Rounds, "the cores were ticked")
}

// A stopped core gets nothing and is not ticked; restarted, it catches up,
// and what it delivered before stays in Delivered.
func TestStopAndRestart(t *testing.T) {
	c := gossiptest.New(t, gossiptest.Config{Nodes: 3})
	c.Push(0, "a", []byte("before"))
	require.True(t, c.RunUntil(time.Second, c.AllDelivered(1)))
	c.Stop(2)
	rounds := c.Core(2).Stats().Rounds
	c.Push(0, "a", []byte("during"))
	c.Run(2 * time.Second)
	require.Len(t, c.Delivered(2), 1)
	require.Equal(t, rounds, c.Core(2).Stats().Rounds, "not ticked while stopped")
	require.Positive(t, c.Net().Stats().Undeliverable, "pulls to the stopped core")
	require.Len(t, c.Delivered(1), 2)

	c.Restart(2)
	require.Zero(t, c.Core(2).Stats().Delivered, "a new core")
	require.True(t, c.RunUntil(time.Second, func() bool { return len(c.Delivered(2)) == 3 }))
	// Its in-memory seen filter forgot the first message: it takes it anew.
	require.Equal(t, []byte("before"), c.Delivered(2)[1].Payload)
	require.Equal(t, []byte("during"), c.Delivered(2)[2].Payload)
	require.Equal(t, gossiptest.ID(2), c.Core(2).ID())
	require.Equal(t, 2, c.Index(gossiptest.Addr(2)))
	require.Equal(t, -1, c.Index(gossiptest.Addr(3)))
}

// fatal is what failer's Fatalf panics with.
type fatal string

type failer struct{}

func (failer) Fatalf(format string, args ...any) { panic(fatal(fmt.Sprintf(format, args...))) }

// failure runs fn and returns the message it failed with, if any.
func failure(fn func()) (msg fatal) {
	defer func() {
		if r := recover(); r != nil {
			msg = r.(fatal)
		}
	}()
	fn()
	return ""
}

// A datagram larger than its receiver's MaxPacketSize is a failure of the
// test, as is a push the core refuses.
func TestFailures(t *testing.T) {
	c := gossiptest.New(failer{}, gossiptest.Config{Nodes: 2, Core: func(i int, c *gossip.Config) {
		if i == 1 {
			c.MaxPacketSize = 512
		}
	}})
	c.Push(0, "a", bytes.Repeat([]byte("x"), 1000))
	require.Contains(t, failure(func() { c.Run(time.Second) }), "MaxPacketSize is 512")
	require.Contains(t, failure(func() { c.Push(1, "bad topic", nil) }), "invalid topic")
	require.Contains(t, failure(func() { gossiptest.New(failer{}, gossiptest.Config{}) }), "0 nodes")
}

// DeliveryTimes says when each delivery happened: the publisher's at the
// push, the others' when the datagram that brought it arrived.
func TestDeliveryTimes(t *testing.T) {
	c := gossiptest.New(t, gossiptest.Config{Nodes: 2})
	c.Run(time.Second)
	pushed := c.Now()
	c.Push(0, "a", []byte("x"))
	var arrived time.Time
	c.Intercept = func(p gossiptest.Packet) bool {
		if p.To == 1 && p.Type() == wire.Messages {
			arrived = p.At.Add(time.Millisecond)
		}
		return false
	}
	require.True(t, c.RunUntil(time.Second, c.AllDelivered(1)))
	require.Equal(t, []time.Time{pushed}, c.DeliveryTimes(0))
	require.Equal(t, []time.Time{arrived}, c.DeliveryTimes(1))
	require.Len(t, c.DeliveryTimes(1), len(c.Delivered(1)))
}
