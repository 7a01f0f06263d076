package transport

import (
	"bytes"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// serve runs u.Serve(h) in the background and, at cleanup, closes u and
// checks that Serve returned nil.
func serve(t testing.TB, u *UDP, h Handler) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- u.Serve(h) }()
	t.Cleanup(func() {
		require.NoError(t, u.Close())
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
}

func listenLoopback(t testing.TB, cfg UDPConfig) *UDP {
	t.Helper()
	u, err := ListenUDP("127.0.0.1:0", cfg)
	require.NoError(t, err)
	t.Cleanup(func() { u.Close() })
	return u
}

// datagram is one datagram copied out of a handler.
type datagram struct {
	from netip.AddrPort
	data []byte
}

// collector returns a handler that copies datagrams into a channel.
func collector(size int) (Handler, chan datagram) {
	ch := make(chan datagram, size)
	return func(from netip.AddrPort, d []byte) {
		ch <- datagram{from: from, data: bytes.Clone(d)}
	}, ch
}

func receive(t testing.TB, ch chan datagram) datagram {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("no datagram within 5s")
		return datagram{}
	}
}

func TestUDPExchange(t *testing.T) {
	a := listenLoopback(t, UDPConfig{})
	b := listenLoopback(t, UDPConfig{})
	require.True(t, a.LocalAddr().Addr().Is4())
	require.NotZero(t, a.LocalAddr().Port())

	ha, fromB := collector(16)
	hb, fromA := collector(16)
	serve(t, a, ha)
	serve(t, b, hb)

	for i := range 5 {
		msg := []byte{'p', 'i', 'n', 'g', byte('0' + i)}
		require.NoError(t, a.Send(b.LocalAddr(), msg))
		got := receive(t, fromA)
		require.Equal(t, a.LocalAddr(), got.from)
		require.Equal(t, msg, got.data)

		require.NoError(t, b.Send(got.from, []byte("pong")))
		got = receive(t, fromB)
		require.Equal(t, b.LocalAddr(), got.from)
		require.Equal(t, "pong", string(got.data))
	}

	sa, sb := a.Stats(), b.Stats()
	require.Equal(t, Stats{DatagramsIn: 5, BytesIn: 20, DatagramsOut: 5, BytesOut: 25}, sa)
	require.Equal(t, Stats{DatagramsIn: 5, BytesIn: 25, DatagramsOut: 5, BytesOut: 20}, sb)
}

func TestUDPCloseStopsServe(t *testing.T) {
	u, err := ListenUDP("127.0.0.1:0", UDPConfig{})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- u.Serve(func(netip.AddrPort, []byte) {}) }()

	time.Sleep(10 * time.Millisecond) // let Serve block in read
	require.NoError(t, u.Close())
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
	require.NoError(t, u.Close(), "Close is idempotent")
	require.NoError(t, u.Serve(func(netip.AddrPort, []byte) {}), "Serve after Close returns at once")
	require.Error(t, u.Send(u.LocalAddr(), []byte("x")))
	require.Equal(t, uint64(1), u.Stats().WriteErrors)
	require.Zero(t, u.Stats().ReadErrors)
}

func TestUDPServeNilHandler(t *testing.T) {
	u := listenLoopback(t, UDPConfig{})
	require.Error(t, u.Serve(nil))
}

func TestListenUDPBadAddress(t *testing.T) {
	_, err := ListenUDP("127.0.0.1:notaport", UDPConfig{})
	require.ErrorContains(t, err, "127.0.0.1:notaport")
}

func TestUDPOversizedDropped(t *testing.T) {
	sender := listenLoopback(t, UDPConfig{})
	receiver := listenLoopback(t, UDPConfig{MaxDatagram: 100})
	h, ch := collector(4)
	serve(t, receiver, h)

	require.NoError(t, sender.Send(receiver.LocalAddr(), make([]byte, 101)))
	require.NoError(t, sender.Send(receiver.LocalAddr(), make([]byte, 5000)))
	require.NoError(t, sender.Send(receiver.LocalAddr(), make([]byte, 100)))
	// Loopback keeps order, so the small one arrives after the big ones.
	got := receive(t, ch)
	require.Len(t, got.data, 100)
	s := receiver.Stats()
	require.Equal(t, uint64(2), s.Oversized)
	require.Equal(t, uint64(1), s.DatagramsIn)
	require.Equal(t, uint64(100), s.BytesIn)
}

func TestUDPConcurrentSend(t *testing.T) {
	const senders, each = 8, 200
	sender := listenLoopback(t, UDPConfig{})
	receiver := listenLoopback(t, UDPConfig{})
	var got atomic.Int64
	serve(t, receiver, func(_ netip.AddrPort, d []byte) {
		if len(d) == 64 {
			got.Add(1)
		}
	})
	// The sender serves too, so reads and writes share the socket.
	serve(t, sender, func(netip.AddrPort, []byte) {})

	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			msg := make([]byte, 64)
			for range each {
				if err := sender.Send(receiver.LocalAddr(), msg); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	s := sender.Stats()
	require.Equal(t, uint64(senders*each), s.DatagramsOut)
	require.Equal(t, uint64(senders*each*64), s.BytesOut)
	require.Zero(t, s.WriteErrors)
	// Loopback may drop when the receive buffer overflows (the kernel caps
	// it); most arrive.
	require.Eventually(t, func() bool { return got.Load() >= senders*each/2 }, 5*time.Second, 10*time.Millisecond)
	require.LessOrEqual(t, got.Load(), int64(senders*each))
}

func TestUDPUnmapsIPv4MappedSources(t *testing.T) {
	dual, err := ListenUDP("[::]:0", UDPConfig{})
	if err != nil {
		t.Skipf("no IPv6 socket here: %v", err)
	}
	t.Cleanup(func() { dual.Close() })
	h, ch := collector(1)
	serve(t, dual, h)

	sender := listenLoopback(t, UDPConfig{})
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), dual.LocalAddr().Port())
	require.NoError(t, sender.Send(to, []byte("v4")))
	got := receive(t, ch)
	require.Equal(t, sender.LocalAddr(), got.from, "::ffff:127.0.0.1 is reported as 127.0.0.1")

	// A mapped destination works on an IPv4 socket too.
	back, ch2 := collector(1)
	serve(t, sender, back)
	mapped := netip.AddrPortFrom(netip.AddrFrom16(netip.MustParseAddr("127.0.0.1").As16()), sender.LocalAddr().Port())
	require.NoError(t, dual.Send(mapped, []byte("back")))
	require.Equal(t, "back", string(receive(t, ch2).data))
}

func BenchmarkUDPSend(b *testing.B) {
	sender := listenLoopback(b, UDPConfig{})
	receiver := listenLoopback(b, UDPConfig{})
	serve(b, receiver, func(netip.AddrPort, []byte) {})
	to := receiver.LocalAddr()
	msg := make([]byte, 512)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := sender.Send(to, msg); err != nil {
			b.Fatal(err)
		}
	}
}

// SendBatch delivers every datagram in order, on a dual-stack socket too,
// and a destination that cannot be reached costs that datagram alone.
func TestUDPSendBatch(t *testing.T) {
	for _, bind := range []string{"127.0.0.1:0", ":0"} {
		sender, err := ListenUDP(bind, UDPConfig{})
		require.NoError(t, err)
		t.Cleanup(func() { sender.Close() })
		a, b := listenLoopback(t, UDPConfig{}), listenLoopback(t, UDPConfig{})
		ha, cha := collector(200)
		hb, chb := collector(200)
		serve(t, a, ha)
		serve(t, b, hb)
		var batch []Datagram
		for i := range 150 {
			to := a.LocalAddr()
			if i%3 == 0 {
				to = b.LocalAddr()
			}
			batch = append(batch, Datagram{To: to, Data: []byte{byte(i)}})
		}
		// An IPv6 destination, unreachable from 127.0.0.1, in the middle.
		bad := Datagram{To: netip.MustParseAddrPort("[2001:db8::1]:9"), Data: []byte("x")}
		batch = append(batch[:70:70], append([]Datagram{bad}, batch[70:]...)...)
		err = sender.SendBatch(batch)
		if bind == "127.0.0.1:0" {
			require.Error(t, err, "the IPv6 destination")
			require.EqualValues(t, 1, sender.Stats().WriteErrors)
		}
		for i := range 150 {
			ch := cha
			if i%3 == 0 {
				ch = chb
			}
			d := receive(t, ch)
			require.Equal(t, []byte{byte(i)}, d.data, "bind %s", bind)
			require.Equal(t, sender.LocalAddr().Port(), d.from.Port())
		}
		require.GreaterOrEqual(t, sender.Stats().DatagramsOut, uint64(150))
	}
}

func BenchmarkUDPSendBatch(b *testing.B) {
	sender := listenLoopback(b, UDPConfig{})
	receiver := listenLoopback(b, UDPConfig{})
	serve(b, receiver, func(netip.AddrPort, []byte) {})
	to := receiver.LocalAddr()
	batch := make([]Datagram, 16)
	for i := range batch {
		batch[i] = Datagram{To: to, Data: make([]byte, 512)}
	}
	b.SetBytes(int64(512 * len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if err := sender.SendBatch(batch); err != nil {
			b.Fatal(err)
		}
	}
}

// ServeBatch hands over every datagram, with its source, and drops the
// oversized ones like Serve.
func TestUDPServeBatch(t *testing.T) {
	receiver := listenLoopback(t, UDPConfig{MaxDatagram: 100})
	type got struct {
		from netip.AddrPort
		data string
	}
	ch := make(chan got, 300)
	batches := atomic.Int64{}
	done := make(chan error, 1)
	go func() {
		done <- receiver.ServeBatch(func(batch []Received) {
			batches.Add(1)
			for _, r := range batch {
				ch <- got{r.From, string(r.Data)}
			}
		})
	}()
	sender := listenLoopback(t, UDPConfig{})
	var batch []Datagram
	for i := range 200 {
		batch = append(batch, Datagram{To: receiver.LocalAddr(), Data: []byte{byte('a' + i%26), byte(i)}})
		if i == 100 {
			batch = append(batch, Datagram{To: receiver.LocalAddr(), Data: make([]byte, 101)})
		}
	}
	require.NoError(t, sender.SendBatch(batch))
	for i := range 200 {
		select {
		case g := <-ch:
			require.Equal(t, string([]byte{byte('a' + i%26), byte(i)}), g.data)
			require.Equal(t, sender.LocalAddr(), g.from)
		case <-time.After(5 * time.Second):
			t.Fatalf("datagram %d never came", i)
		}
	}
	require.Eventually(t, func() bool { return receiver.Stats().Oversized == 1 }, 5*time.Second, time.Millisecond)
	require.LessOrEqual(t, batches.Load(), int64(200))
	require.NoError(t, receiver.Close())
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("ServeBatch did not return after Close")
	}
	require.Error(t, receiver.ServeBatch(nil))
}

// Start serves on a goroutine of its own; Close waits for it, after which
// the handler is never called again.
func TestUDPStartAndClose(t *testing.T) {
	receiver, err := ListenUDP("127.0.0.1:0", UDPConfig{})
	require.NoError(t, err)
	got := make(chan string, 10)
	var running atomic.Bool
	require.NoError(t, receiver.Start(func(batch []Received) {
		running.Store(true)
		for _, r := range batch {
			got <- string(r.Data)
		}
		running.Store(false)
	}))
	require.Error(t, receiver.Start(func([]Received) {}), "started once")
	require.Error(t, receiver.Start(nil))

	var tr Transport = listenLoopback(t, UDPConfig{})
	require.NoError(t, tr.SendBatch([]Datagram{{To: receiver.LocalAddr(), Data: []byte("one")}}))
	select {
	case s := <-got:
		require.Equal(t, "one", s)
	case <-time.After(5 * time.Second):
		t.Fatal("nothing received")
	}
	require.NoError(t, receiver.Close())
	require.False(t, running.Load(), "Close returned while the handler ran")
	require.NoError(t, receiver.Close())
	require.ErrorContains(t, receiver.Start(func([]Received) {}), "closed")
	require.Equal(t, uint64(1), receiver.Stats().DatagramsIn)
	require.Equal(t, uint64(1), tr.Stats().DatagramsOut)
}
