package security

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fastKDF keeps tests quick; production uses DefaultKDFParams.
var fastKDF = KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

func key(t testing.TB, passphrase string) Key {
	k, err := DeriveKey([]byte(passphrase), "test-cluster", fastKDF)
	require.NoError(t, err)
	return k
}

var now = time.Unix(1_700_000_000, 0)

func plain(body string) []byte { return append([]byte{'H', 'S', 1, 0x02}, body...) }

func sealer(t testing.TB, keys ...Key) *Sealer { return sealerOf(t, DefaultSuite, keys...) }

func sealerOf(t testing.TB, suite Suite, keys ...Key) *Sealer {
	r, err := NewKeyring(keys...)
	require.NoError(t, err)
	return NewSealer(r, SealerConfig{Suite: suite})
}

// forEachSuite runs test once per cipher suite: every property of sealing
// holds for each.
func forEachSuite(t *testing.T, test func(t *testing.T, suite Suite)) {
	for _, name := range SuiteNames() {
		suite, err := ParseSuite(name)
		require.NoError(t, err)
		t.Run(name, func(t *testing.T) { test(t, suite) })
	}
}

func TestDeriveKey(t *testing.T) {
	a := key(t, "correct horse battery staple")
	require.Equal(t, a, key(t, "correct horse battery staple"), "deterministic")
	require.NotEqual(t, a, key(t, "correct horse battery stapler"))
	other, err := DeriveKey([]byte("correct horse battery staple"), "other-cluster", fastKDF)
	require.NoError(t, err)
	require.NotEqual(t, a, other, "the cluster name salts the key")
	_, err = DeriveKey(nil, "c", fastKDF)
	require.ErrorIs(t, err, ErrEmptyPassphrase)
	_, err = DeriveKey([]byte("short"), "c", fastKDF)
	require.ErrorContains(t, err, "at least 12")
	p, err := NewPassphrase()
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(p), 43)
	id, err := ParseKeyID(a.ID().String())
	require.NoError(t, err)
	require.Equal(t, a.ID(), id)
	_, err = ParseKeyID("xyz")
	require.Error(t, err)
}

func TestSealOpenRoundTrip(t *testing.T) { forEachSuite(t, testSealOpenRoundTrip) }

func testSealOpenRoundTrip(t *testing.T, suite Suite) {
	k := key(t, "a passphrase for tests")
	a, b := sealerOf(t, suite, k), sealerOf(t, suite, k)
	dg := plain("hello, cluster")
	sealed, err := a.Seal(nil, dg, now)
	require.NoError(t, err)
	require.Len(t, sealed, len(dg)+Overhead)
	require.True(t, IsSealed(sealed))
	require.False(t, bytes.Contains(sealed, []byte("hello")), "the body is encrypted")
	out, err := b.Open(nil, sealed, now.Add(time.Second))
	require.NoError(t, err)
	require.Equal(t, dg, out)
	// Two seals of the same datagram differ (fresh nonce).
	again, err := a.Seal(nil, dg, now)
	require.NoError(t, err)
	require.NotEqual(t, sealed, again)
}

func TestOpenRejects(t *testing.T) { forEachSuite(t, testOpenRejects) }

func testOpenRejects(t *testing.T, suite Suite) {
	k := key(t, "a passphrase for tests")
	a := sealerOf(t, suite, k)
	dg := plain("payload")
	sealed, err := a.Seal(nil, dg, now)
	require.NoError(t, err)
	flip := func(i int) []byte {
		c := append([]byte(nil), sealed...)
		c[i] ^= 1
		return c
	}
	cases := []struct {
		name string
		dg   []byte
		at   time.Time
		want error
	}{
		{"plaintext", dg, now, ErrNotSealed},
		{"truncated header", sealed[:20], now, ErrTruncated},
		{"truncated tag", sealed[:len(sealed)-1], now, ErrAuth},
		{"flipped ciphertext bit", flip(len(sealed) - 20), now, ErrAuth},
		{"flipped tag bit", flip(len(sealed) - 1), now, ErrAuth},
		{"flipped type (associated data)", flip(3), now, ErrAuth},
		{"flipped timestamp (associated data)", flip(15), now, ErrAuth},
		{"flipped nonce", flip(20), now, ErrAuth},
		{"flipped key ID", flip(4), now, ErrKeyNotInstalled},
		{"old timestamp", sealed, now.Add(31 * time.Second), ErrStale},
		{"future timestamp", sealed, now.Add(-31 * time.Second), ErrStale},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := sealerOf(t, suite, k).Open(nil, c.dg, c.at)
			require.ErrorIs(t, err, c.want)
		})
	}
	wrong := sealerOf(t, suite, key(t, "another passphrase!!"))
	_, err = wrong.Open(nil, sealed, now)
	require.ErrorIs(t, err, ErrKeyNotInstalled, "a wrong key is an unknown key ID")
	require.Equal(t, "unknown_key", DropReason(err))

	// Replay: the first open succeeds, the second is refused.
	b := sealerOf(t, suite, k)
	_, err = b.Open(nil, sealed, now)
	require.NoError(t, err)
	_, err = b.Open(nil, sealed, now.Add(10*time.Second))
	require.ErrorIs(t, err, ErrReplay)
	require.Equal(t, "replay", DropReason(err))
}

func TestReplayCacheIsBounded(t *testing.T) { forEachSuite(t, testReplayCacheIsBounded) }

func testReplayCacheIsBounded(t *testing.T, suite Suite) {
	k := key(t, "a passphrase for tests")
	r, err := NewKeyring(k)
	require.NoError(t, err)
	a := NewSealer(r, SealerConfig{Suite: suite})
	b := NewSealer(r, SealerConfig{Suite: suite, ReplayCacheSize: 100, ReplayWindow: time.Second})
	for i := 0; i < 5000; i++ {
		s, err := a.Seal(nil, plain("x"), now)
		require.NoError(t, err)
		_, err = b.Open(nil, s, now)
		require.NoError(t, err)
	}
	require.LessOrEqual(t, len(b.seen), 100)
	// After the window, old nonces are forgotten.
	s, _ := a.Seal(nil, plain("y"), now.Add(3*time.Second))
	_, err = b.Open(nil, s, now.Add(3*time.Second))
	require.NoError(t, err)
	require.Equal(t, 1, len(b.seen))
	require.LessOrEqual(t, len(b.queue)-b.head, 100)
}

// Rotation: install everywhere, use everywhere, remove the old key.
func TestKeyRotation(t *testing.T) { forEachSuite(t, testKeyRotation) }

func testKeyRotation(t *testing.T, suite Suite) {
	old, next := key(t, "the old passphrase"), key(t, "the new passphrase")
	a, b := sealerOf(t, suite, old), sealerOf(t, suite, old)
	send := func(from, to *Sealer) error {
		s, err := from.Seal(nil, plain("m"), now)
		require.NoError(t, err)
		_, err = to.Open(nil, s, now)
		return err
	}
	require.NoError(t, send(a, b))
	_, err := a.Keyring().Install(next)
	require.NoError(t, err)
	require.NoError(t, send(a, b), "installing does not change the sealing key")
	require.NoError(t, a.Keyring().Use(next.ID()))
	require.ErrorIs(t, send(a, b), ErrKeyNotInstalled, "b does not have the new key yet")
	_, err = b.Keyring().Install(next)
	require.NoError(t, err)
	require.NoError(t, send(a, b))
	require.NoError(t, send(b, a), "b still seals with the old key, which a still has")
	require.NoError(t, b.Keyring().Use(next.ID()))
	require.ErrorIs(t, a.Keyring().Remove(next.ID()), ErrRemovePrimary)
	require.NoError(t, a.Keyring().Remove(old.ID()))
	require.NoError(t, send(b, a))
	require.Equal(t, []KeyInfo{{ID: next.ID().String(), Primary: true}}, a.Keyring().List())
	require.ErrorIs(t, a.Keyring().Use(old.ID()), ErrUnknownKey)
}

func TestKeyringFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyring.json")
	r, err := OpenKeyringFile(path)
	require.NoError(t, err)
	require.False(t, r.Enabled())
	k1, k2 := key(t, "first passphrase"), key(t, "second passphrase")
	_, err = r.Install(k1)
	require.NoError(t, err)
	_, err = r.Install(k2)
	require.NoError(t, err)
	require.NoError(t, r.Use(k2.ID()))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "keys are secrets")

	r2, err := OpenKeyringFile(path)
	require.NoError(t, err)
	require.Equal(t, r.List(), r2.List())
	id, _, _ := r2.primaryKey()
	require.Equal(t, k2.ID(), id)
	require.Equal(t, []Key{k2, k1}, r2.Keys(), "primary first")
	got, ok := r2.Key(k1.ID())
	require.True(t, ok)
	require.Equal(t, k1, got)
	_, ok = r2.Key(KeyID(12345))
	require.False(t, ok)

	require.NoError(t, os.WriteFile(path, []byte("{garbage"), 0o600))
	_, err = OpenKeyringFile(path)
	require.ErrorContains(t, err, "corrupt")
	require.NoError(t, os.WriteFile(path, []byte(`{"primary":"00000000","keys":["abcd"]}`), 0o600))
	_, err = OpenKeyringFile(path)
	require.ErrorContains(t, err, "corrupt")
}

func TestSealWithoutKey(t *testing.T) {
	s := sealer(t)
	_, err := s.Seal(nil, plain("x"), now)
	require.ErrorIs(t, err, ErrNoKey)
}

func FuzzOpen(f *testing.F) {
	k := key(f, "a passphrase for tests")
	a := sealer(f, k)
	s, err := a.Seal(nil, plain("seed"), now)
	require.NoError(f, err)
	f.Add(s)
	f.Add(plain("x"))
	f.Add([]byte{'H', 'S', 1, 0x82})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := sealer(t, k).Open(nil, b, now)
		if err == nil {
			require.GreaterOrEqual(t, len(out), 4)
		}
	})
}

func BenchmarkSeal1400(b *testing.B) { benchSuites(b, benchSeal, 1400) }
func BenchmarkSeal64K(b *testing.B)  { benchSuites(b, benchSeal, 64<<10) }
func BenchmarkOpen1400(b *testing.B) { benchSuites(b, benchOpen, 1400) }
func BenchmarkOpen64K(b *testing.B)  { benchSuites(b, benchOpen, 64<<10) }

func benchSuites(b *testing.B, bench func(*testing.B, Suite, int), size int) {
	for _, name := range SuiteNames() {
		suite, _ := ParseSuite(name)
		b.Run("cipher="+name, func(b *testing.B) { bench(b, suite, size) })
	}
}

func benchSeal(b *testing.B, suite Suite, size int) {
	s := sealerOf(b, suite, key(b, "a passphrase for tests"))
	dg := plain(string(make([]byte, size-4-Overhead)))
	buf := make([]byte, 0, size+64)
	b.SetBytes(int64(len(dg)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = s.Seal(buf[:0], dg, now); err != nil {
			b.Fatal(err)
		}
	}
}

func benchOpen(b *testing.B, suite Suite, size int) {
	r, _ := NewKeyring(key(b, "a passphrase for tests"))
	// A large cache window: every iteration opens a fresh datagram.
	s := NewSealer(r, SealerConfig{Suite: suite})
	dg := plain(string(make([]byte, size-4-Overhead)))
	const n = 256
	sealed := make([][]byte, n)
	for i := range sealed {
		sealed[i], _ = s.Seal(nil, dg, now)
	}
	buf := make([]byte, 0, size+64)
	b.SetBytes(int64(len(dg)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// A fresh sealer every n opens, so none is a replay.
		if i%n == 0 {
			s = NewSealer(r, SealerConfig{Suite: suite})
		}
		var err error
		if buf, err = s.Open(buf[:0], sealed[i%n], now); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkDeriveKeyDefault(b *testing.B) {
	for b.Loop() {
		if _, err := DeriveKey([]byte("a passphrase for benchmarks"), "bench", DefaultKDFParams); err != nil {
			b.Fatal(err)
		}
	}
}
