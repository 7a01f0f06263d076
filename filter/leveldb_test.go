package filter

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func openLevelDB(t testing.TB, dir string) *LevelDB {
	t.Helper()
	f, err := OpenLevelDB(dir, LevelDBConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func TestLevelDBReopenKeepsIDs(t *testing.T) {
	dir := t.TempDir()
	f := openLevelDB(t, dir)
	require.Equal(t, dir, f.Dir())
	for n := range uint64(10) {
		_, err := f.Add(testID(n), at(int(n)))
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())

	f = openLevelDB(t, dir)
	require.Equal(t, 10, f.Len())
	for n := range uint64(10) {
		requireContains(t, f, testID(n), true)
		added, err := f.Add(testID(n), at(int(n)))
		require.NoError(t, err)
		require.False(t, added, "ID %d was added before the restart", n)
	}
	requireContains(t, f, testID(10), false)
	require.Equal(t, 10, f.Len())
}

func TestLevelDBPrunePersists(t *testing.T) {
	dir := t.TempDir()
	f := openLevelDB(t, dir)
	for n := range uint64(10) {
		_, err := f.Add(testID(n), at(int(n)))
		require.NoError(t, err)
	}
	removed, err := f.Prune(at(4))
	require.NoError(t, err)
	require.Equal(t, 4, removed)
	require.NoError(t, f.Close())

	f = openLevelDB(t, dir)
	require.Equal(t, 6, f.Len())
	for n := range uint64(10) {
		requireContains(t, f, testID(n), n >= 4)
	}
	removed, err = f.Prune(at(4))
	require.NoError(t, err)
	require.Zero(t, removed, "the index of pruned IDs is gone too")
	removed, err = f.Prune(at(100))
	require.NoError(t, err)
	require.Equal(t, 6, removed)
}

// An extended expiry survives a restart, and the old index entry is gone.
func TestLevelDBExtensionPersists(t *testing.T) {
	dir := t.TempDir()
	f := openLevelDB(t, dir)
	_, err := f.Add(testID(1), at(10))
	require.NoError(t, err)
	_, err = f.Add(testID(1), at(20))
	require.NoError(t, err)
	require.NoError(t, f.Close())

	f = openLevelDB(t, dir)
	removed, err := f.Prune(at(15))
	require.NoError(t, err)
	require.Zero(t, removed)
	requireContains(t, f, testID(1), true)
	removed, err = f.Prune(at(21))
	require.NoError(t, err)
	require.Equal(t, 1, removed)
	require.Zero(t, f.Len())
}

// Prune deletes in several batches when it has many IDs to remove.
func TestLevelDBPruneMany(t *testing.T) {
	f := openLevelDB(t, t.TempDir())
	const n = 2*pruneBatch + 100
	for i := range uint64(n) {
		_, err := f.Add(testID(i), at(int(i%7)))
		require.NoError(t, err)
	}
	_, err := f.Add(testID(n), at(7))
	require.NoError(t, err)
	removed, err := f.Prune(at(7))
	require.NoError(t, err)
	require.Equal(t, n, removed)
	require.Equal(t, 1, f.Len())
	requireContains(t, f, testID(n), true)
}

func TestLevelDBSync(t *testing.T) {
	dir := t.TempDir()
	f, err := OpenLevelDB(dir, LevelDBConfig{Sync: true})
	require.NoError(t, err)
	added, err := f.Add(testID(1), at(1))
	require.NoError(t, err)
	require.True(t, added)
	require.NoError(t, f.Close())
	f = openLevelDB(t, dir)
	requireContains(t, f, testID(1), true)
}

func TestLevelDBInUse(t *testing.T) {
	dir := t.TempDir()
	first := openLevelDB(t, dir)

	second, err := OpenLevelDB(dir, LevelDBConfig{})
	require.Error(t, err)
	require.Nil(t, second)
	require.ErrorIs(t, err, ErrInUse)
	require.Contains(t, err.Error(), "data directory "+dir+" is in use by another process")

	// The failed open must not have disturbed the first one or the lock.
	_, err = first.Add(testID(1), at(1))
	require.NoError(t, err)
	require.NoError(t, first.Close())
	again := openLevelDB(t, dir)
	requireContains(t, again, testID(1), true)
}

func TestLevelDBNotADirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(path, []byte("x"), 0o600))
	f, err := OpenLevelDB(path, LevelDBConfig{})
	require.Error(t, err)
	require.Nil(t, f)
	require.NotErrorIs(t, err, ErrInUse)
	require.NotErrorIs(t, err, ErrCorrupt)
	require.Contains(t, err.Error(), path)
}

func TestLevelDBCorrupt(t *testing.T) {
	// Each case damages a database holding a few IDs, flushed to a table
	// file by a close and reopen.
	cases := []struct {
		name   string
		damage func(t *testing.T, dir, file string) (damaged bool)
	}{
		{"garbage in CURRENT", func(t *testing.T, dir, file string) bool {
			if file == "CURRENT" {
				require.NoError(t, os.WriteFile(filepath.Join(dir, file), []byte("\x00garbage\xff"), 0o644))
				return true
			}
			return false
		}},
		{"garbage in MANIFEST", func(t *testing.T, dir, file string) bool {
			if strings.HasPrefix(file, "MANIFEST-") {
				require.NoError(t, os.WriteFile(filepath.Join(dir, file), []byte("not a manifest, not at all"), 0o644))
				return true
			}
			return false
		}},
		{"MANIFEST missing", func(t *testing.T, dir, file string) bool {
			if strings.HasPrefix(file, "MANIFEST-") {
				require.NoError(t, os.Remove(filepath.Join(dir, file)))
				return true
			}
			return false
		}},
		{"table truncated", func(t *testing.T, dir, file string) bool {
			if filepath.Ext(file) == ".ldb" {
				require.NoError(t, os.Truncate(filepath.Join(dir, file), 20))
				return true
			}
			return false
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			f := openLevelDB(t, dir)
			for n := range uint64(100) {
				_, err := f.Add(testID(n), at(int(n)))
				require.NoError(t, err)
			}
			require.NoError(t, f.Close())
			f = openLevelDB(t, dir)
			require.NoError(t, f.Close())

			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			damaged := false
			for _, e := range entries {
				damaged = c.damage(t, dir, e.Name()) || damaged
			}
			require.True(t, damaged, "no file to damage in %v", entries)

			var g *LevelDB
			require.NotPanics(t, func() { g, err = OpenLevelDB(dir, LevelDBConfig{}) })
			if g != nil {
				_ = g.Close()
			}
			require.Error(t, err)
			require.Nil(t, g)
			require.ErrorIs(t, err, ErrCorrupt)
			msg := err.Error()
			require.Contains(t, msg, "seen-filter database at "+dir+" is corrupt")
			require.Contains(t, msg, "move the directory aside")
			require.Contains(t, msg, "may deliver again")
			// The cause from goleveldb is still reachable.
			require.True(t, isCorrupted(err))
		})
	}
}

func BenchmarkLevelDBAdd(b *testing.B) {
	f := openLevelDB(b, b.TempDir())
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := f.Add(testID(uint64(i)), at(i)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLevelDBContains is the check a node makes for an ID it has seen:
// the hot path of a duplicate.
func BenchmarkLevelDBContains(b *testing.B) {
	f := openLevelDB(b, b.TempDir())
	const held = 10_000
	for i := range held {
		if _, err := f.Add(testID(uint64(i)), at(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if ok, err := f.Contains(testID(uint64(i % held))); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}
