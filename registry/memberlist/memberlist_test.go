package memberlist

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/security"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// gossipAddr is member i's gossip address: only carried in metadata here,
// never bound.
func gossipAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(17000+i))
}

// fastConfig is member i on 127.0.0.1, a free port, with failure detection
// in well under a second.
func fastConfig(i int) Config {
	return Config{
		Name:             fmt.Sprintf("node-%d", i),
		GossipAddr:       gossipAddr(i),
		BindAddr:         "127.0.0.1",
		Profile:          ProfileLocal,
		ProbeInterval:    100 * time.Millisecond,
		ProbeTimeout:     50 * time.Millisecond,
		GossipInterval:   20 * time.Millisecond,
		SuspicionMult:    1,
		PushPullInterval: time.Second,
		Logger:           quiet,
	}
}

func start(t *testing.T, cfg Config) *Registry {
	t.Helper()
	r, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Shutdown() })
	return r
}

// cluster starts n members, all joining through the first.
func cluster(t *testing.T, n int, tweak func(*Config)) []*Registry {
	t.Helper()
	var rs []*Registry
	for i := range n {
		cfg := fastConfig(i)
		if tweak != nil {
			tweak(&cfg)
		}
		r := start(t, cfg)
		if i > 0 {
			joined, err := r.Join([]string{rs[0].Addr().String()})
			require.NoError(t, err)
			require.Equal(t, 1, joined)
		}
		rs = append(rs, r)
	}
	return rs
}

// othersOf returns the gossip addresses of every member but i.
func othersOf(rs []*Registry, i int, except ...int) []netip.AddrPort {
	var out []netip.AddrPort
	for j := range rs {
		if j != i && !slices.Contains(except, j) {
			out = append(out, gossipAddr(j))
		}
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return out
}

const settle = 10 * time.Second // generous: failure detection takes about a second here

func TestFiveMembersJoinThroughOneSeed(t *testing.T) {
	rs := cluster(t, 5, nil)
	for i, r := range rs {
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			assert.Equal(c, othersOf(rs, i), r.Peers())
		}, settle, 20*time.Millisecond, "member %d", i)
	}
	members := rs[2].Members()
	require.Len(t, members, 5)
	for i, m := range members {
		require.Equal(t, fmt.Sprintf("node-%d", i), m.Name)
		require.Equal(t, "alive", m.State)
		require.Equal(t, gossipAddr(i), m.GossipAddr)
		require.Equal(t, rs[i].Addr(), m.Addr)
		require.Equal(t, i == 2, m.Self)
	}
}

func TestCrashedMemberIsDropped(t *testing.T) {
	rs := cluster(t, 5, nil)
	for i, r := range rs {
		require.EventuallyWithT(t, func(c *assert.CollectT) { assert.Len(c, r.Peers(), 4) }, settle, 20*time.Millisecond, "member %d", i)
	}
	// A crash: no Leave.
	require.NoError(t, rs[3].Shutdown())
	for i, r := range rs {
		if i == 3 {
			continue
		}
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			assert.Equal(c, othersOf(rs, i, 3), r.Peers())
		}, settle, 20*time.Millisecond, "member %d", i)
	}
	m := memberNamed(t, rs[0].Members(), "node-3")
	require.Equal(t, "gone", m.State)
	require.Equal(t, gossipAddr(3), m.GossipAddr)
}

func TestLeavingMemberIsDropped(t *testing.T) {
	rs := cluster(t, 4, nil)
	for i, r := range rs {
		require.EventuallyWithT(t, func(c *assert.CollectT) { assert.Len(c, r.Peers(), 3) }, settle, 20*time.Millisecond, "member %d", i)
	}
	require.NoError(t, rs[1].Leave(time.Second))
	require.NoError(t, rs[1].Shutdown())
	for i, r := range rs {
		if i == 1 {
			continue
		}
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			assert.Equal(c, othersOf(rs, i, 1), r.Peers())
		}, settle, 20*time.Millisecond, "member %d", i)
	}
	require.Equal(t, "gone", memberNamed(t, rs[2].Members(), "node-1").State)

	// After Shutdown, Leave and Join refuse rather than panic.
	require.ErrorIs(t, rs[1].Leave(time.Second), ErrShutdown)
	_, err := rs[1].Join([]string{rs[0].Addr().String()})
	require.ErrorIs(t, err, ErrShutdown)
	require.NoError(t, rs[1].Shutdown(), "twice is fine")
}

func memberNamed(t *testing.T, ms []MemberInfo, name string) MemberInfo {
	t.Helper()
	for _, m := range ms {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("no member %s in %+v", name, ms)
	return MemberInfo{}
}

func key(t *testing.T, passphrase string) security.Key {
	t.Helper()
	k, err := security.DeriveKey([]byte(passphrase), "test", security.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1})
	require.NoError(t, err)
	return k
}

func TestSecretKey(t *testing.T) {
	keyA := DeriveSecretKey(key(t, "correct horse battery"))
	keyB := DeriveSecretKey(key(t, "another passphrase!!"))
	rs := cluster(t, 2, func(c *Config) { c.SecretKey = keyA })
	require.EventuallyWithT(t, func(c *assert.CollectT) { assert.Len(c, rs[0].Peers(), 1) }, settle, 20*time.Millisecond)

	for name, cfg := range map[string]func(*Config){
		"another key": func(c *Config) { c.SecretKey = keyB },
		"no key":      func(*Config) {},
	} {
		t.Run(name, func(t *testing.T) {
			c := fastConfig(9)
			cfg(&c)
			stranger := start(t, c)
			n, err := stranger.Join([]string{rs[0].Addr().String()})
			require.ErrorIs(t, err, ErrNoneJoined)
			require.Zero(t, n)
			time.Sleep(300 * time.Millisecond) // a few probe and gossip rounds
			require.Empty(t, stranger.Peers())
			require.NotContains(t, rs[0].Peers(), gossipAddr(9))
			require.NoError(t, stranger.Shutdown())
		})
	}

}

// TestKeyRotation: in the middle of a rotation, a member already encrypting
// with the new key and one still on the old one understand each other, as
// both accept both keys.
func TestKeyRotation(t *testing.T) {
	oldKey := DeriveSecretKey(key(t, "correct horse battery"))
	newKey := DeriveSecretKey(key(t, "another passphrase!!"))
	early, late := fastConfig(0), fastConfig(1)
	early.SecretKey, early.ExtraKeys = newKey, [][]byte{oldKey}
	late.SecretKey, late.ExtraKeys = oldKey, [][]byte{newKey}
	a, b := start(t, early), start(t, late)
	_, err := b.Join([]string{a.Addr().String()})
	require.NoError(t, err)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, []netip.AddrPort{gossipAddr(1)}, a.Peers())
		assert.Equal(c, []netip.AddrPort{gossipAddr(0)}, b.Peers())
	}, settle, 20*time.Millisecond)
}

// TestKeyRotationAtRuntime follows the procedure of docs/security.md with
// running members: add the new key everywhere, use it, remove the old.
func TestKeyRotationAtRuntime(t *testing.T) {
	oldKey := DeriveSecretKey(key(t, "correct horse battery"))
	newKey := DeriveSecretKey(key(t, "another passphrase!!"))
	rs := cluster(t, 3, func(c *Config) { c.SecretKey = oldKey })
	for _, r := range rs {
		require.NoError(t, r.AddKey(newKey))
	}
	for _, r := range rs {
		require.NoError(t, r.UseKey(newKey))
	}
	for _, r := range rs {
		require.NoError(t, r.RemoveKey(oldKey))
		require.Error(t, r.RemoveKey(newKey), "the key in use stays")
	}
	// A member with only the new key joins; one with only the old cannot.
	c := fastConfig(5)
	c.SecretKey = newKey
	_, err := start(t, c).Join([]string{rs[0].Addr().String()})
	require.NoError(t, err)
	c = fastConfig(6)
	c.SecretKey = oldKey
	_, err = start(t, c).Join([]string{rs[0].Addr().String()})
	require.ErrorIs(t, err, ErrNoneJoined)
	for _, r := range rs {
		require.EventuallyWithT(t, func(c *assert.CollectT) { assert.Len(c, r.Peers(), 3) }, settle, 20*time.Millisecond)
	}

	plain := start(t, fastConfig(7))
	require.ErrorIs(t, plain.AddKey(newKey), ErrNotEncrypted)
}

func TestDeriveSecretKey(t *testing.T) {
	k := key(t, "correct horse battery")
	a := DeriveSecretKey(k)
	require.Len(t, a, 32)
	require.Equal(t, a, DeriveSecretKey(k))
	require.NotEqual(t, k[:], a, "never the gossip key's bytes")
	require.NotEqual(t, a, DeriveSecretKey(key(t, "another passphrase!!")))
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		tweak func(*Config)
		want  string
	}{
		{func(c *Config) { c.Name = "" }, "Name is required"},
		{func(c *Config) { c.GossipAddr = netip.AddrPort{} }, "not a gossip address"},
		{func(c *Config) { c.GossipAddr = netip.MustParseAddrPort("127.0.0.1:0") }, "not a gossip address"},
		{func(c *Config) { c.Profile = "moon" }, `unknown profile "moon"`},
		{func(c *Config) { c.SecretKey = []byte("short") }, "secret key"},
		{func(c *Config) { c.ExtraKeys = [][]byte{make([]byte, 32)} }, "ExtraKeys without a SecretKey"},
	} {
		cfg := fastConfig(0)
		tc.tweak(&cfg)
		_, err := New(cfg)
		require.ErrorContains(t, err, tc.want)
	}
}

func TestMeta(t *testing.T) {
	member := netip.MustParseAddr("10.1.2.3")
	for _, ap := range []string{"192.0.2.1:7600", "[2001:db8::1]:7600"} {
		want := netip.MustParseAddrPort(ap)
		got, err := decodeMeta(encodeMeta(want), member)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	require.Len(t, encodeMeta(netip.MustParseAddrPort("192.0.2.1:7600")), 8)
	require.Equal(t, []byte{1, 4, 192, 0, 2, 1, 0x1d, 0xb0}, encodeMeta(netip.MustParseAddrPort("[::ffff:192.0.2.1]:7600")))

	// Bound to every interface: the member's own IP stands in.
	got, err := decodeMeta(encodeMeta(netip.MustParseAddrPort("0.0.0.0:7600")), member)
	require.NoError(t, err)
	require.Equal(t, netip.MustParseAddrPort("10.1.2.3:7600"), got)

	for _, bad := range [][]byte{nil, {2, 4, 1, 2, 3, 4, 0, 1}, {1, 5, 1, 2, 3, 4, 0, 1}, {1, 4, 1, 2, 3}, {1, 4, 1, 2, 3, 4, 0, 0}, {1, 4, 1, 2, 3, 4, 0, 1, 9}} {
		_, err := decodeMeta(bad, member)
		require.ErrorIs(t, err, errBadMeta, "%x", bad)
	}
	_, err = decodeMeta(encodeMeta(netip.MustParseAddrPort("0.0.0.0:7600")), netip.Addr{})
	require.ErrorIs(t, err, errBadMeta)
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(encodeMeta(netip.MustParseAddrPort("192.0.2.1:7600")))
	f.Add(encodeMeta(netip.MustParseAddrPort("[2001:db8::1]:7600")))
	f.Fuzz(func(t *testing.T, b []byte) {
		ap, err := decodeMeta(b, netip.MustParseAddr("10.0.0.1"))
		if err == nil {
			require.True(t, ap.IsValid())
			require.NotZero(t, ap.Port())
		}
	})
}

// recorder is a slog handler that keeps its records.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func TestLogsGoToSlog(t *testing.T) {
	rec := &recorder{}
	w := &logWriter{logger: slog.New(rec)}
	for _, line := range []string{
		"[DEBUG] memberlist: Stream connection from=127.0.0.1:5000\n",
		"[WARN] memberlist: Was able to connect to node-3 over TCP but UDP probes failed\n",
		"[ERR] memberlist: Failed fallback TCP ping: io: read/write on closed pipe\n",
		"[INFO] memberlist: Marking node-3 as failed\n",
		"no level at all\n",
	} {
		n, err := w.Write([]byte(line))
		require.NoError(t, err)
		require.Equal(t, len(line), n)
	}
	var got []string
	for _, r := range rec.records {
		got = append(got, r.Level.String()+" "+r.Message)
	}
	require.Equal(t, []string{
		"DEBUG Stream connection from=127.0.0.1:5000",
		"WARN Was able to connect to node-3 over TCP but UDP probes failed",
		"ERROR Failed fallback TCP ping: io: read/write on closed pipe",
		"INFO Marking node-3 as failed",
		"INFO no level at all",
	}, got)

	// A real instance logs through it.
	var buf bytes.Buffer
	var mu sync.Mutex
	cfg := fastConfig(0)
	cfg.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := start(t, cfg)
	_, _ = r.Join([]string{"127.0.0.1:1"}) // nobody there: logged
	require.NoError(t, r.Shutdown())
	mu.Lock()
	defer mu.Unlock()
	require.Contains(t, buf.String(), "component=memberlist")
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestSamplePeers(t *testing.T) {
	r := &Registry{alive: map[string]member{}, dirty: true}
	for i := range 40 {
		r.alive[fmt.Sprint(i)] = member{gossip: gossipAddr(i % 30)} // 30 distinct addresses
	}
	require.Len(t, r.Peers(), 30)
	rng := rand.New(rand.NewPCG(1, 2))
	counts := map[netip.AddrPort]int{}
	for _, n := range []int{0, 1, 3, 16, 20, 30, 50} {
		for range 200 {
			got := r.SamplePeers(rng, n, nil)
			require.Len(t, got, min(n, 30))
			require.Len(t, slices.Compact(slices.SortedFunc(slices.Values(got), func(a, b netip.AddrPort) int { return a.Compare(b) })), len(got), "distinct")
			if n == 3 {
				for _, p := range got {
					counts[p]++
				}
			}
		}
	}
	for _, c := range counts {
		require.InDelta(t, 200*3/30, c, 15)
	}
	// Same seed, same choice.
	a := r.SamplePeers(rand.New(rand.NewPCG(5, 5)), 3, nil)
	b := r.SamplePeers(rand.New(rand.NewPCG(5, 5)), 3, nil)
	require.Equal(t, a, b)
}
