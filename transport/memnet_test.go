package transport

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func addr(port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, 1}), port)
}

// received is one datagram as a test handler saw it.
type received struct {
	at   time.Time
	from netip.AddrPort
	data string
}

// recorder attaches an endpoint that records everything it receives.
func recorder(t testing.TB, n *Network, a netip.AddrPort) (*Endpoint, *[]received) {
	t.Helper()
	var got []received
	e, err := n.Attach(a, func(from netip.AddrPort, d []byte) {
		got = append(got, received{at: n.Now(), from: from, data: string(d)})
	})
	require.NoError(t, err)
	return e, &got
}

func TestNetworkDefaults(t *testing.T) {
	n := NewNetwork(NetworkConfig{})
	require.Equal(t, time.Unix(1_700_000_000, 0).UTC(), n.Now())
	a, _ := recorder(t, n, addr(1))
	_, got := recorder(t, n, addr(2))

	require.NoError(t, a.Send(addr(2), []byte("hi")))
	require.Equal(t, 1, n.Pending())
	require.True(t, n.Step())
	require.False(t, n.Step())
	require.Equal(t, []received{{at: n.Now(), from: addr(1), data: "hi"}}, *got)
	require.Equal(t, time.Millisecond, n.Now().Sub(time.Unix(1_700_000_000, 0)))
}

func TestNetworkOrdersByTimeThenFIFO(t *testing.T) {
	start := time.Unix(0, 0).UTC()
	n := NewNetwork(NetworkConfig{Start: start})
	var order []string
	note := func(s string) func() { return func() { order = append(order, s) } }

	n.At(start.Add(3*time.Second), note("3s"))
	n.At(start.Add(1*time.Second), note("1s-a"))
	n.At(start.Add(2*time.Second), note("2s"))
	n.At(start.Add(1*time.Second), note("1s-b"))
	n.At(start.Add(1*time.Second), note("1s-c"))
	// Many same-time events, to exercise the heap beyond a few levels.
	for i := range 100 {
		n.At(start.Add(4*time.Second), note(string(rune('A'+i%26))+string(rune('0'+i/26))))
	}
	require.Equal(t, 105, n.Pending())

	for n.Step() {
	}
	require.Equal(t, []string{"1s-a", "1s-b", "1s-c", "2s", "3s"}, order[:5])
	for i := range 100 {
		require.Equal(t, string(rune('A'+i%26))+string(rune('0'+i/26)), order[5+i])
	}
	require.Equal(t, start.Add(4*time.Second), n.Now())
}

func TestNetworkDatagramsFIFOWithoutJitter(t *testing.T) {
	n := NewNetwork(NetworkConfig{Latency: 5 * time.Millisecond})
	a, _ := recorder(t, n, addr(1))
	_, got := recorder(t, n, addr(2))
	for _, s := range []string{"one", "two", "three"} {
		require.NoError(t, a.Send(addr(2), []byte(s)))
	}
	n.RunUntil(n.Now().Add(time.Second))
	require.Len(t, *got, 3)
	for i, s := range []string{"one", "two", "three"} {
		require.Equal(t, s, (*got)[i].data)
	}
}

func TestNetworkLatencyAndJitterBounds(t *testing.T) {
	const latency, jitter = 10 * time.Millisecond, 5 * time.Millisecond
	n := NewNetwork(NetworkConfig{Seed: 7, Latency: latency, Jitter: jitter})
	a, _ := recorder(t, n, addr(1))
	_, got := recorder(t, n, addr(2))
	sent := n.Now()
	for range 1000 {
		require.NoError(t, a.Send(addr(2), []byte("x")))
	}
	n.RunUntil(sent.Add(time.Second))
	require.Len(t, *got, 1000)
	lo, hi := time.Duration(1<<62), time.Duration(0)
	for _, r := range *got {
		d := r.at.Sub(sent)
		lo, hi = min(lo, d), max(hi, d)
	}
	require.GreaterOrEqual(t, lo, latency)
	require.Less(t, hi, latency+jitter)
	// 1000 uniform draws cover most of the range.
	require.Less(t, lo, latency+jitter/10)
	require.Greater(t, hi, latency+jitter*9/10)
	require.Equal(t, sent.Add(time.Second), n.Now())
}

func TestNetworkLatencyFunc(t *testing.T) {
	n := NewNetwork(NetworkConfig{})
	a, _ := recorder(t, n, addr(1))
	_, got := recorder(t, n, addr(2))
	start := n.Now()
	n.SetLatencyFunc(func(from, to netip.AddrPort, rng *rand.Rand) time.Duration {
		if to.Port() == 2 {
			return 0
		}
		return time.Hour
	})
	require.NoError(t, a.Send(addr(2), []byte("now")))
	n.RunUntil(start)
	require.Len(t, *got, 1, "zero latency delivers at the current time")

	n.SetLatencyFunc(func(netip.AddrPort, netip.AddrPort, *rand.Rand) time.Duration { return -time.Second })
	require.NoError(t, a.Send(addr(2), []byte("negative")))
	n.RunUntil(start)
	require.Len(t, *got, 2, "negative latency counts as zero")

	n.SetLatencyFunc(nil)
	require.NoError(t, a.Send(addr(2), []byte("default")))
	n.RunUntil(start.Add(time.Millisecond - 1))
	require.Len(t, *got, 2)
	n.RunUntil(start.Add(time.Millisecond))
	require.Len(t, *got, 3)
}

// lossRun sends 10,000 datagrams through a lossy, jittery network and
// returns what arrived, in order.
func lossRun(t *testing.T, seed uint64) (NetworkStats, []received) {
	n := NewNetwork(NetworkConfig{Seed: seed, Loss: 0.2, Jitter: time.Millisecond})
	a, _ := recorder(t, n, addr(1))
	_, got := recorder(t, n, addr(2))
	for i := range 10_000 {
		require.NoError(t, a.Send(addr(2), []byte{byte(i), byte(i >> 8)}))
	}
	n.RunUntil(n.Now().Add(time.Second))
	return n.Stats(), *got
}

func TestNetworkLossRateAndDeterminism(t *testing.T) {
	stats, got := lossRun(t, 42)
	require.Equal(t, uint64(10_000), stats.Sent)
	require.Equal(t, stats.Sent, stats.Delivered+stats.Lost)
	require.InDelta(t, 2000, float64(stats.Lost), 200, "loss of 20%% over 10,000 sends")
	require.Len(t, got, int(stats.Delivered))

	again, gotAgain := lossRun(t, 42)
	require.Equal(t, stats, again)
	require.Equal(t, got, gotAgain, "same seed, same run")

	other, gotOther := lossRun(t, 43)
	require.False(t, other == stats && len(gotOther) == len(got) && gotOther[0] == got[0] && gotOther[len(got)-1] == got[len(got)-1],
		"another seed gives another run")
}

func TestNetworkSetLoss(t *testing.T) {
	n := NewNetwork(NetworkConfig{})
	a, _ := recorder(t, n, addr(1))
	recorder(t, n, addr(2))
	n.SetLoss(2) // clamped to 1: everything lost
	for range 100 {
		require.NoError(t, a.Send(addr(2), []byte("x")))
	}
	require.Equal(t, 0, n.Pending())
	n.SetLoss(-1)
	require.NoError(t, a.Send(addr(2), []byte("x")))
	n.RunUntil(n.Now().Add(time.Second))
	s := n.Stats()
	require.Equal(t, uint64(100), s.Lost)
	require.Equal(t, uint64(1), s.Delivered)
}

func TestNetworkPartition(t *testing.T) {
	n := NewNetwork(NetworkConfig{Latency: 10 * time.Millisecond})
	a, gotA := recorder(t, n, addr(1))
	b, gotB := recorder(t, n, addr(2))
	c, gotC := recorder(t, n, addr(3))
	byPort := func(ap netip.AddrPort) int {
		if ap.Port() == 1 {
			return 0
		}
		return 1
	}

	// In flight when the partition starts: dropped on arrival.
	require.NoError(t, a.Send(addr(2), []byte("in flight")))
	n.RunUntil(n.Now().Add(5 * time.Millisecond))
	n.Partition(byPort)
	n.RunUntil(n.Now().Add(time.Second))
	require.Empty(t, *gotB)
	require.Equal(t, uint64(1), n.Stats().Partitioned)

	// Sent during the partition: dropped at once, in both directions; the
	// same side still talks.
	require.NoError(t, a.Send(addr(2), []byte("a->b")))
	require.NoError(t, b.Send(addr(1), []byte("b->a")))
	require.NoError(t, b.Send(addr(3), []byte("b->c")))
	require.Equal(t, 1, n.Pending())
	n.RunUntil(n.Now().Add(time.Second))
	require.Empty(t, *gotA)
	require.Empty(t, *gotB)
	require.Len(t, *gotC, 1)
	require.Equal(t, uint64(3), n.Stats().Partitioned)

	n.Heal()
	require.NoError(t, a.Send(addr(2), []byte("healed")))
	require.NoError(t, c.Send(addr(1), []byte("healed")))
	n.RunUntil(n.Now().Add(time.Second))
	require.Len(t, *gotA, 1)
	require.Len(t, *gotB, 1)

	s := n.Stats()
	require.Equal(t, s.Sent, s.Delivered+s.Partitioned)
}

func TestNetworkDetach(t *testing.T) {
	n := NewNetwork(NetworkConfig{})
	a, _ := recorder(t, n, addr(1))
	b, gotB := recorder(t, n, addr(2))

	_, err := n.Attach(addr(2), func(netip.AddrPort, []byte) {})
	require.ErrorIs(t, err, ErrAddressInUse)

	require.NoError(t, a.Send(addr(2), []byte("lost in flight")))
	n.Detach(addr(2))
	n.Detach(addr(2)) // no-op
	n.RunUntil(n.Now().Add(time.Second))
	require.Empty(t, *gotB)
	require.Equal(t, uint64(1), n.Stats().Undeliverable)
	require.ErrorIs(t, b.Send(addr(1), []byte("x")), ErrDetached)

	require.NoError(t, a.Send(addr(9), []byte("nobody")))
	n.RunUntil(n.Now().Add(time.Second))
	require.Equal(t, uint64(2), n.Stats().Undeliverable)

	// The address can be taken again.
	_, gotB2 := recorder(t, n, addr(2))
	require.NoError(t, a.Send(addr(2), []byte("again")))
	n.RunUntil(n.Now().Add(time.Second))
	require.Len(t, *gotB2, 1)
}

func TestNetworkReentrantSend(t *testing.T) {
	n := NewNetwork(NetworkConfig{})
	// a and b play ping-pong with a counter until it reaches 10.
	var a, b *Endpoint
	var hops []byte
	bounce := func(self **Endpoint) Handler {
		return func(from netip.AddrPort, d []byte) {
			hops = append(hops, d[0])
			if d[0] < 10 {
				d[0]++ // the handler may use the buffer during the call
				require.NoError(t, (*self).Send(from, d))
			}
		}
	}
	var err error
	a, err = n.Attach(addr(1), bounce(&a))
	require.NoError(t, err)
	b, err = n.Attach(addr(2), bounce(&b))
	require.NoError(t, err)

	start := n.Now()
	require.NoError(t, a.Send(addr(2), []byte{0}))
	n.RunUntil(start.Add(time.Second))
	require.Equal(t, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, hops)
	require.Equal(t, 0, n.Pending())
	require.Equal(t, uint64(11), n.Stats().Delivered)
}

func TestNetworkAtPastAndReentrant(t *testing.T) {
	n := NewNetwork(NetworkConfig{})
	start := n.Now()
	n.RunUntil(start.Add(time.Second))
	now := n.Now()
	require.Equal(t, start.Add(time.Second), now)

	var ran []time.Time
	n.At(start, func() { // in the past: runs at Now
		ran = append(ran, n.Now())
		n.At(n.Now().Add(time.Minute), func() { ran = append(ran, n.Now()) })
	})
	n.At(time.Time{}, func() { ran = append(ran, n.Now()) }) // far past
	n.At(now, nil)                                           // ignored
	require.Equal(t, 2, n.Pending())

	n.RunUntil(now) // events due now run; the clock stays
	require.Equal(t, []time.Time{now, now}, ran)
	require.Equal(t, 1, n.Pending())

	n.RunUntil(start) // the clock never goes back
	require.Equal(t, now, n.Now())

	n.RunUntil(now.Add(time.Hour))
	require.Equal(t, []time.Time{now, now, now.Add(time.Minute)}, ran)
	require.Equal(t, now.Add(time.Hour), n.Now())
}

func TestNetworkSendErrors(t *testing.T) {
	n := NewNetwork(NetworkConfig{MaxDatagram: 10})
	a, _ := recorder(t, n, addr(1))
	require.ErrorIs(t, a.Send(addr(2), make([]byte, 11)), ErrDatagramTooLarge)
	require.Error(t, a.Send(netip.AddrPort{}, []byte("x")))
	require.NoError(t, a.Send(addr(2), make([]byte, 10)))
	require.Equal(t, uint64(1), n.Stats().Sent)

	_, err := n.Attach(netip.AddrPort{}, func(netip.AddrPort, []byte) {})
	require.Error(t, err)
	_, err = n.Attach(addr(5), nil)
	require.Error(t, err)
}

func TestNetworkUnmapsAddresses(t *testing.T) {
	n := NewNetwork(NetworkConfig{})
	mapped := netip.AddrPortFrom(netip.AddrFrom16(addr(2).Addr().As16()), 2)
	require.True(t, mapped.Addr().Is4In6())
	a, _ := recorder(t, n, addr(1))
	b, got := recorder(t, n, mapped)
	require.Equal(t, addr(2), b.Addr())
	require.NoError(t, a.Send(mapped, []byte("x")))
	n.RunUntil(n.Now().Add(time.Second))
	require.Len(t, *got, 1)
}

func TestNetworkEmptyDatagramAndBufferReuse(t *testing.T) {
	n := NewNetwork(NetworkConfig{})
	a, _ := recorder(t, n, addr(1))
	var sizes []int
	_, err := n.Attach(addr(2), func(_ netip.AddrPort, d []byte) { sizes = append(sizes, len(d)) })
	require.NoError(t, err)
	for _, size := range []int{0, 1, 64, 65, 1500, 65507} {
		require.NoError(t, a.Send(addr(2), make([]byte, size)))
	}
	n.RunUntil(n.Now().Add(time.Second))
	require.Equal(t, []int{0, 1, 64, 65, 1500, 65507}, sizes)

	// Steady state: a send and its delivery allocate nothing.
	payload := make([]byte, 512)
	allocs := testing.AllocsPerRun(100, func() {
		_ = a.Send(addr(2), payload)
		n.Step()
	})
	require.Zero(t, allocs)
}

// BenchmarkNetworkSendDeliver measures events per second through a network
// of 10,000 endpoints with jitter, each delivery causing one send to a random
// endpoint, so that 10,000 datagrams are always in flight. One event is one
// delivery plus the send it causes.
func BenchmarkNetworkSendDeliver(b *testing.B) {
	const endpoints = 10_000
	n := NewNetwork(NetworkConfig{Seed: 1, Jitter: time.Millisecond})
	rng := rand.New(rand.NewPCG(1, 2))
	eps := make([]*Endpoint, endpoints)
	for i := range eps {
		i := i
		a := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 7946)
		var err error
		eps[i], err = n.Attach(a, func(_ netip.AddrPort, d []byte) {
			to := eps[rng.IntN(endpoints)].Addr()
			_ = eps[i].Send(to, d)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	payload := make([]byte, 256)
	for _, e := range eps {
		_ = e.Send(eps[rng.IntN(endpoints)].Addr(), payload)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		n.Step()
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// An endpoint made by Listen is a Transport: it receives nothing until
// Start, counts what it sends and receives, and Close detaches it.
func TestEndpointTransport(t *testing.T) {
	n := NewNetwork(NetworkConfig{MaxDatagram: 100})
	a, err := n.Listen(addr(1))
	require.NoError(t, err)
	b, err := n.Listen(addr(2))
	require.NoError(t, err)
	_, err = n.Listen(addr(2))
	require.ErrorIs(t, err, ErrAddressInUse)
	var ta Transport = a
	require.Equal(t, addr(1), ta.LocalAddr())

	require.NoError(t, a.Send(addr(2), []byte("before start")))
	n.RunUntil(n.Now().Add(time.Second))
	require.Equal(t, uint64(1), n.Stats().Undeliverable, "nobody listens yet")

	var got []string
	require.NoError(t, b.Start(func(batch []Received) {
		for _, r := range batch {
			require.Equal(t, addr(1), r.From)
			got = append(got, string(r.Data))
		}
	}))
	require.Error(t, b.Start(func([]Received) {}), "started once")
	require.Error(t, a.Start(nil))
	err = ta.SendBatch([]Datagram{
		{To: addr(2), Data: []byte("one")},
		{To: addr(2), Data: make([]byte, 101)},
		{To: addr(2), Data: []byte("two")},
	})
	require.ErrorIs(t, err, ErrDatagramTooLarge, "the first error, after the rest went out")
	n.RunUntil(n.Now().Add(time.Second))
	require.Equal(t, []string{"one", "two"}, got)
	require.Equal(t, Stats{DatagramsOut: 3, BytesOut: 18, WriteErrors: 1}, a.Stats())
	require.Equal(t, Stats{DatagramsIn: 2, BytesIn: 6}, b.Stats())

	require.NoError(t, b.Close())
	require.ErrorIs(t, b.Start(func([]Received) {}), ErrDetached)
	c, err := n.Listen(addr(2))
	require.NoError(t, err, "the address is free again")
	require.NoError(t, b.Close(), "closing again leaves the new endpoint alone")
	require.NoError(t, c.Start(func([]Received) { got = append(got, "c") }))
	require.NoError(t, a.Send(addr(2), []byte("x")))
	n.RunUntil(n.Now().Add(time.Second))
	require.Equal(t, []string{"one", "two", "c"}, got)

	e, err := n.Attach(addr(3), func(netip.AddrPort, []byte) {})
	require.NoError(t, err)
	require.Error(t, e.Start(func([]Received) {}), "Attach gave it its handler")
	require.Zero(t, e.Stats(), "an attached endpoint keeps no counters")
}

// AfterFunc runs f on virtual time; stop cancels it before it runs, and
// only then.
func TestNetworkAfterFunc(t *testing.T) {
	start := time.Unix(0, 0).UTC()
	n := NewNetwork(NetworkConfig{Start: start})
	var ran []time.Duration
	note := func() { ran = append(ran, n.Now().Sub(start)) }
	stopA := n.AfterFunc(2*time.Second, note)
	stopB := n.AfterFunc(time.Second, note)
	stopC := n.AfterFunc(3*time.Second, note)
	n.AfterFunc(-time.Second, note) // at once
	n.AfterFunc(time.Duration(1<<62), note)
	require.True(t, stopB())
	require.False(t, stopB(), "stopped already")
	n.RunUntil(start.Add(2 * time.Second))
	require.Equal(t, []time.Duration{0, 2 * time.Second}, ran)
	require.False(t, stopA(), "it ran")
	require.True(t, stopC())
	n.RunUntil(start.Add(time.Hour))
	require.Len(t, ran, 2)
	require.Equal(t, 1, n.Pending(), "the far one waits")
}
