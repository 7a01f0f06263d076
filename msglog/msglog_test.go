package msglog

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.UnixMilli(1_700_000_000_000)

func id(i int) ID {
	var x ID
	x[0], x[1], x[15] = byte(i), byte(i>>8), 0xaa
	return x
}

type opener func(t *testing.T, maxBytes int64) Log

func impls() map[string]opener {
	return map[string]opener{
		"memory": func(t *testing.T, maxBytes int64) Log { return NewMemory(maxBytes) },
		"leveldb": func(t *testing.T, maxBytes int64) Log {
			l, err := OpenLevelDB(filepath.Join(t.TempDir(), "log"), maxBytes)
			require.NoError(t, err)
			t.Cleanup(func() { l.Close() })
			return l
		},
	}
}

func ids(l Log) []ID {
	var out []ID
	l.ForEach(func(e Entry) bool { out = append(out, e.ID); return true })
	return out
}

func TestLogConformance(t *testing.T) {
	for name, open := range impls() {
		t.Run(name, func(t *testing.T) {
			l := open(t, 1000)
			for i := 1; i <= 5; i++ {
				ev, err := l.Append(id(i), t0.Add(time.Duration(i)*time.Second), []byte{byte(i), 1, 2})
				require.NoError(t, err)
				require.Empty(t, ev)
			}
			ev, err := l.Append(id(3), t0, []byte("dup"))
			require.NoError(t, err)
			require.Empty(t, ev)
			require.Equal(t, 5, l.Len())
			require.Equal(t, int64(15), l.Bytes())
			require.Equal(t, uint64(5), l.LastSeq())
			data, ok, err := l.Get(id(3))
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, []byte{3, 1, 2}, data)
			_, ok, err = l.Get(id(9))
			require.NoError(t, err)
			require.False(t, ok)
			has, err := l.Contains(id(2))
			require.NoError(t, err)
			require.True(t, has)

			var after []uint64
			found, err := l.After(id(2), func(e Entry) bool { after = append(after, e.Seq); return true })
			require.NoError(t, err)
			require.True(t, found)
			require.Equal(t, []uint64{3, 4, 5}, after)
			found, err = l.After(id(9), func(Entry) bool { t.Fatal("called"); return true })
			require.NoError(t, err)
			require.False(t, found)

			// A message created early but appended late is pruned by its
			// creation time, not its position.
			_, err = l.Append(id(6), t0.Add(-time.Hour), []byte{6})
			require.NoError(t, err)
			removed, err := l.Prune(t0.Add(2500 * time.Millisecond))
			require.NoError(t, err)
			require.ElementsMatch(t, []ID{id(6), id(1), id(2)}, removed)
			require.Equal(t, []ID{id(3), id(4), id(5)}, ids(l))
			require.Equal(t, int64(9), l.Bytes())
			require.NoError(t, l.Close())
			_, err = l.Append(id(7), t0, nil)
			require.ErrorIs(t, err, ErrClosed)
		})
	}
}

func TestLogEvictsOldestOverTheByteBound(t *testing.T) {
	for name, open := range impls() {
		t.Run(name, func(t *testing.T) {
			l := open(t, 100)
			var evicted []ID
			for i := 1; i <= 30; i++ {
				ev, err := l.Append(id(i), t0, make([]byte, 10))
				require.NoError(t, err)
				evicted = append(evicted, ev...)
			}
			require.Equal(t, 10, l.Len())
			require.LessOrEqual(t, l.Bytes(), int64(100))
			require.Len(t, evicted, 20)
			require.Equal(t, id(1), evicted[0])
			require.Equal(t, id(20), evicted[19])
			require.Equal(t, id(21), ids(l)[0])
		})
	}
}

func TestLevelDBLogSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	l, err := OpenLevelDB(path, 0)
	require.NoError(t, err)
	for i := 1; i <= 3; i++ {
		_, err := l.Append(id(i), t0, []byte{byte(i)})
		require.NoError(t, err)
	}
	require.NoError(t, l.Close())
	l, err = OpenLevelDB(path, 0)
	require.NoError(t, err)
	defer func() { l.Close() }()
	require.Equal(t, 3, l.Len())
	require.Equal(t, int64(3), l.Bytes())
	require.Equal(t, uint64(3), l.LastSeq())
	_, err = l.Append(id(4), t0, []byte{4})
	require.NoError(t, err)
	require.Equal(t, []ID{id(1), id(2), id(3), id(4)}, ids(l))
	// The horizon of what the byte bound evicted survives too.
	require.NoError(t, l.Close())
	l, err = OpenLevelDB(path, 3)
	require.NoError(t, err)
	ev, err := l.Append(id(5), t0.Add(time.Second), []byte{5})
	require.NoError(t, err)
	require.Equal(t, []ID{id(1), id(2)}, ev)
	require.NoError(t, l.Close())
	l, err = OpenLevelDB(path, 3)
	require.NoError(t, err)
	h, err := l.Horizon()
	require.NoError(t, err)
	require.Equal(t, t0, h)
	_, err = OpenLevelDB(path, 0)
	require.ErrorContains(t, err, "another hearsay node")
}

func TestLevelDBLogCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	l, err := OpenLevelDB(path, 0)
	require.NoError(t, err)
	_, err = l.Append(id(1), t0, []byte{1})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	require.NoError(t, os.WriteFile(filepath.Join(path, "CURRENT"), []byte("garbage\n"), 0o600))
	_, err = OpenLevelDB(path, 0)
	require.Error(t, err)
	require.ErrorContains(t, err, "msglog")
}

// The byte bound evicts by creation time, as pruning does, so that logs of
// a cluster sharing a bound keep the same messages: a message created
// before all the others goes first, even the one being appended.
func TestLogEvictsOldestCreatedFirst(t *testing.T) {
	for name, open := range impls() {
		t.Run(name, func(t *testing.T) {
			l := open(t, 30)
			h, err := l.Horizon()
			require.NoError(t, err)
			require.True(t, h.IsZero())
			for i := 1; i <= 3; i++ {
				ev, err := l.Append(id(i), t0.Add(time.Duration(i)*time.Second), make([]byte, 10))
				require.NoError(t, err)
				require.Empty(t, ev)
			}
			// Created before everything logged: it is the one evicted.
			ev, err := l.Append(id(4), t0, make([]byte, 10))
			require.NoError(t, err)
			require.Equal(t, []ID{id(4)}, ev)
			h, err = l.Horizon()
			require.NoError(t, err)
			require.Equal(t, t0, h)
			// Created after: the oldest created goes, not the first appended.
			ev, err = l.Append(id(5), t0.Add(10*time.Second), make([]byte, 10))
			require.NoError(t, err)
			require.Equal(t, []ID{id(1)}, ev)
			require.Equal(t, []ID{id(2), id(3), id(5)}, ids(l))
			h, err = l.Horizon()
			require.NoError(t, err)
			require.Equal(t, t0.Add(time.Second), h)
			// Pruning and evicting again after many deletions start where
			// the last left off.
			for i := 6; i < 200; i++ {
				_, err := l.Append(id(i), t0.Add(time.Duration(i)*time.Second), make([]byte, 10))
				require.NoError(t, err)
			}
			require.Equal(t, 3, l.Len())
			removed, err := l.Prune(t0.Add(198 * time.Second))
			require.NoError(t, err)
			require.Equal(t, []ID{id(197)}, removed)
			h, err = l.Horizon()
			require.NoError(t, err)
			require.Equal(t, t0.Add(196*time.Second), h, "pruning does not move the horizon")
		})
	}
}
