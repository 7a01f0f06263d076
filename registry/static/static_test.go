package static

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

// touch sets a distinct modification time, so that a rewrite of the same size
// is seen as a change even where the file system's clock is coarse.
func touch(t *testing.T, path string, mod time.Time) {
	t.Helper()
	require.NoError(t, os.Chtimes(path, mod, mod))
}

func TestParsePeersAndFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "peers")
	writeFile(t, file, strings.Join([]string{
		"# the cluster",
		"",
		"10.0.0.1:7946",
		"   10.0.0.2:7946   # trailing comment",
		"10.0.0.1:7946",  // duplicate of a file entry
		"192.0.2.9:7946", // duplicate of a Peers entry
		"[::ffff:10.0.0.3]:7946",
		"\t",
		"[2001:db8::1]:7946\r", // CRLF line
		"10.0.0.9:7946",        // self
		"# end",
	}, "\n"))

	r, err := New(Config{
		Peers: []string{"192.0.2.9:7946", " ", "192.0.2.9:7946", "localhost:7000"},
		File:  file,
		Self:  ap("[::ffff:10.0.0.9]:7946"),
	})
	require.NoError(t, err)
	want := []netip.AddrPort{
		ap("192.0.2.9:7946"),
		ap("127.0.0.1:7000"), // localhost resolves preferring IPv4
		ap("10.0.0.1:7946"),
		ap("10.0.0.2:7946"),
		ap("10.0.0.3:7946"), // unmapped
		ap("[2001:db8::1]:7946"),
	}
	require.Equal(t, want, r.Peers())
	require.Equal(t, len(want), r.Len())

	// Peers is a copy.
	got := r.Peers()
	got[0] = ap("1.1.1.1:1")
	require.Equal(t, want, r.Peers())
}

func TestNoPeers(t *testing.T) {
	r, err := New(Config{})
	require.NoError(t, err)
	require.Zero(t, r.Len())
	require.Empty(t, r.Peers())
	require.Empty(t, r.SamplePeers(rand.New(rand.NewPCG(1, 1)), 3, nil))
	changed, err := r.ReloadIfChanged()
	require.NoError(t, err)
	require.False(t, changed)
}

func TestBadEntries(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		cfg  Config
		file string
		want string
	}{
		{name: "missing port", cfg: Config{Peers: []string{"10.0.0.1:1", "foo"}}, want: `static: peer "foo": missing port in address`},
		{name: "bad port", cfg: Config{Peers: []string{"10.0.0.1:http0"}}, want: `static: peer "10.0.0.1:http0": `},
		{name: "port zero", cfg: Config{Peers: []string{"10.0.0.1:0"}}, want: `static: peer "10.0.0.1:0": port 0 cannot be reached`},
		{name: "unspecified", cfg: Config{Peers: []string{"0.0.0.0:7946"}}, want: `static: peer "0.0.0.0:7946": unspecified address`},
		{
			name: "file line",
			file: "# peers\n10.0.0.1:7946\nfoo  # oops\n",
			want: `peers line 3: "foo": missing port in address`,
		},
		{name: "missing file", cfg: Config{File: filepath.Join(dir, "absent")}, want: "static: peers file: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.file != "" {
				tc.cfg.File = filepath.Join(dir, "peers")
				writeFile(t, tc.cfg.File, tc.file)
				tc.want = "static: peers file " + dir + string(filepath.Separator) + tc.want
			}
			_, err := New(tc.cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}

	// The entry, file and line are there for programs too.
	file := filepath.Join(dir, "peers2")
	writeFile(t, file, "\n\nnot an address\n")
	_, err := New(Config{File: file})
	var entryErr *EntryError
	require.ErrorAs(t, err, &entryErr)
	require.Equal(t, EntryError{File: file, Line: 3, Entry: "not an address", Err: entryErr.Err}, *entryErr)

	// The resolver's error is wrapped.
	errNoDNS := errors.New("no DNS here")
	_, err = New(Config{
		Peers:   []string{"node-a:7946"},
		Resolve: func(string) (netip.AddrPort, error) { return netip.AddrPort{}, errNoDNS },
	})
	require.ErrorIs(t, err, errNoDNS)
	require.EqualError(t, err, `static: peer "node-a:7946": no DNS here`)
}

func TestCustomResolver(t *testing.T) {
	hosts := map[string]netip.AddrPort{"a:1": ap("10.1.0.1:1"), "b:1": ap("10.1.0.2:1"), "a-again:1": ap("10.1.0.1:1")}
	r, err := New(Config{
		Peers:   []string{"a:1", "b:1", "a-again:1"},
		Resolve: func(s string) (netip.AddrPort, error) { return hosts[s], nil },
	})
	require.NoError(t, err)
	require.Equal(t, []netip.AddrPort{ap("10.1.0.1:1"), ap("10.1.0.2:1")}, r.Peers())
}

// peerList makes count distinct peers.
func peerList(count int) []string {
	s := make([]string, count)
	for i := range s {
		s[i] = fmt.Sprintf("10.0.%d.%d:7946", i/256, i%256)
	}
	return s
}

func TestSamplePeersDistinctAndBounded(t *testing.T) {
	for _, size := range []int{1, 2, 5, 17, 40, 100} {
		r, err := New(Config{Peers: peerList(size)})
		require.NoError(t, err)
		rng := rand.New(rand.NewPCG(uint64(size), 9))
		for _, n := range []int{-1, 0, 1, 3, 16, 17, 30, 99, 100, 1000} {
			prefix := []netip.AddrPort{ap("1.2.3.4:5")}
			got := r.SamplePeers(rng, n, prefix)
			require.Equal(t, prefix[0], got[0], "dst is appended to")
			got = got[1:]
			require.Len(t, got, max(0, min(n, size)), "size %d n %d", size, n)
			seen := map[netip.AddrPort]bool{}
			for _, p := range got {
				require.False(t, seen[p], "duplicate %s (size %d n %d)", p, size, n)
				seen[p] = true
				require.True(t, strings.HasPrefix(p.String(), "10.0."))
			}
		}
	}
}

// chiSquare is Pearson's statistic of counts against a uniform expectation.
func chiSquare(counts []int, expected float64) float64 {
	var x2 float64
	for _, c := range counts {
		d := float64(c) - expected
		x2 += d * d / expected
	}
	return x2
}

func TestSamplePeersUniform(t *testing.T) {
	const draws = 30_000
	// n=3 exercises rejection sampling, n=20 Floyd's algorithm, n=size the
	// full shuffle.
	for _, tc := range []struct{ size, n int }{{10, 3}, {50, 20}, {8, 8}} {
		t.Run(fmt.Sprintf("%d of %d", tc.n, tc.size), func(t *testing.T) {
			r, err := New(Config{Peers: peerList(tc.size)})
			require.NoError(t, err)
			index := map[netip.AddrPort]int{}
			for i, p := range r.Peers() {
				index[p] = i
			}
			rng := rand.New(rand.NewPCG(2026, 1))
			inSample := make([]int, tc.size) // how often each peer is chosen
			first := make([]int, tc.size)    // how often each peer comes first
			var dst []netip.AddrPort
			for range draws {
				dst = r.SamplePeers(rng, tc.n, dst[:0])
				for _, p := range dst {
					inSample[index[p]]++
				}
				first[index[dst[0]]]++
			}
			// With k-1 = size-1 degrees of freedom (at most 49), a uniform
			// sampler exceeds these bounds with probability below 1e-4.
			limit := float64(tc.size-1) + 6*math.Sqrt(2*float64(tc.size-1))
			if tc.n < tc.size {
				// Every peer is in every full sample, so only partial ones
				// say anything about membership.
				require.Less(t, chiSquare(inSample, float64(draws*tc.n)/float64(tc.size)), limit, "membership %v", inSample)
			}
			require.Less(t, chiSquare(first, float64(draws)/float64(tc.size)), limit, "first place %v", first)
		})
	}
}

func TestSamplePeersDeterministic(t *testing.T) {
	r, err := New(Config{Peers: peerList(100)})
	require.NoError(t, err)
	run := func(seed uint64) []netip.AddrPort {
		rng := rand.New(rand.NewPCG(seed, 0))
		var out []netip.AddrPort
		for _, n := range []int{3, 3, 40, 100} {
			out = r.SamplePeers(rng, n, out)
		}
		return out
	}
	require.Equal(t, run(1), run(1))
	require.NotEqual(t, run(1), run(2))
}

func TestSamplePeersAllocations(t *testing.T) {
	r, err := New(Config{Peers: peerList(1000)})
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	dst := make([]netip.AddrPort, 0, 16)
	allocs := testing.AllocsPerRun(100, func() { dst = r.SamplePeers(rng, 3, dst[:0]) })
	require.Zero(t, allocs)
	allocs = testing.AllocsPerRun(100, func() { dst = r.SamplePeers(rng, 16, dst[:0]) })
	require.Zero(t, allocs)
}

func TestReloadOnChange(t *testing.T) {
	file := filepath.Join(t.TempDir(), "peers")
	writeFile(t, file, "10.0.0.1:7946\n")
	mod := time.Now().Add(-time.Hour).Truncate(time.Second)
	touch(t, file, mod)
	r, err := New(Config{Peers: []string{"192.0.2.1:7946"}, File: file})
	require.NoError(t, err)
	require.Equal(t, []netip.AddrPort{ap("192.0.2.1:7946"), ap("10.0.0.1:7946")}, r.Peers())

	changed, err := r.ReloadIfChanged()
	require.NoError(t, err)
	require.False(t, changed)

	// Same size, new mtime.
	writeFile(t, file, "10.0.0.2:7946\n")
	touch(t, file, mod.Add(time.Second))
	changed, err = r.ReloadIfChanged()
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, []netip.AddrPort{ap("192.0.2.1:7946"), ap("10.0.0.2:7946")}, r.Peers())

	// New size, same mtime.
	writeFile(t, file, "10.0.0.2:7946\n10.0.0.3:7946\n")
	touch(t, file, mod.Add(time.Second))
	changed, err = r.ReloadIfChanged()
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, 3, r.Len())

	// A bad version: reported once, the old list stays.
	writeFile(t, file, "10.0.0.4:7946\nbroken\n")
	touch(t, file, mod.Add(2*time.Second))
	changed, err = r.ReloadIfChanged()
	require.True(t, changed)
	require.ErrorContains(t, err, `line 2: "broken"`)
	require.Equal(t, 3, r.Len())
	changed, err = r.ReloadIfChanged()
	require.NoError(t, err)
	require.False(t, changed)

	// Reload retries at once, and still keeps the old list.
	require.Error(t, r.Reload())
	require.Equal(t, 3, r.Len())

	// Fixed.
	writeFile(t, file, "10.0.0.4:7946\n")
	touch(t, file, mod.Add(3*time.Second))
	require.NoError(t, r.Reload())
	require.Equal(t, []netip.AddrPort{ap("192.0.2.1:7946"), ap("10.0.0.4:7946")}, r.Peers())

	// The file disappearing is an error, not an empty cluster.
	require.NoError(t, os.Remove(file))
	_, err = r.ReloadIfChanged()
	require.ErrorIs(t, err, os.ErrNotExist)
	require.ErrorIs(t, r.Reload(), os.ErrNotExist)
	require.Equal(t, 2, r.Len())
}

func TestConcurrentReloadAndSample(t *testing.T) {
	file := filepath.Join(t.TempDir(), "peers")
	versions := []string{strings.Join(peerList(5), "\n"), strings.Join(peerList(50), "\n"), "broken"}
	writeFile(t, file, versions[0])
	r, err := New(Config{File: file})
	require.NoError(t, err)

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 0))
			var dst []netip.AddrPort
			for {
				select {
				case <-stop:
					return
				default:
				}
				dst = r.SamplePeers(rng, 3+g*10, dst[:0])
				if len(dst) == 0 || r.Len() == 0 || len(r.Peers()) == 0 {
					t.Error("empty peer list during reloads")
					return
				}
			}
		})
	}
	for i := range 200 {
		writeFile(t, file, versions[i%len(versions)])
		if i%2 == 0 {
			_ = r.Reload()
		} else {
			_, _ = r.ReloadIfChanged()
		}
	}
	close(stop)
	wg.Wait()
}
