package filter

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Compile-time checks that both implementations satisfy SeenFilter.
var (
	_ SeenFilter = (*Memory)(nil)
	_ SeenFilter = (*LevelDB)(nil)
)

// t0 is an arbitrary fixed instant; tests never read the wall clock.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func testID(n uint64) ID {
	var id ID
	binary.BigEndian.PutUint64(id[8:], n)
	id[0] = 0xAB // not all zero, to catch an ID confused with a zero value
	return id
}

type constructor struct {
	name string
	open func(t testing.TB) SeenFilter
}

var constructors = []constructor{
	{"Memory", func(testing.TB) SeenFilter { return NewMemory(MemoryConfig{}) }},
	{"LevelDB", func(t testing.TB) SeenFilter {
		f, err := OpenLevelDB(t.TempDir(), LevelDBConfig{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = f.Close() })
		return f
	}},
}

// forEach runs test against a fresh filter of every implementation.
func forEach(t *testing.T, test func(t *testing.T, f SeenFilter)) {
	for _, c := range constructors {
		t.Run(c.name, func(t *testing.T) { test(t, c.open(t)) })
	}
}

func requireContains(t *testing.T, f SeenFilter, id ID, want bool) {
	t.Helper()
	got, err := f.Contains(id)
	require.NoError(t, err)
	require.Equal(t, want, got, "Contains(%x)", id)
}

func TestAddNewAndDuplicate(t *testing.T) {
	forEach(t, func(t *testing.T, f SeenFilter) {
		added, err := f.Add(testID(1), at(10))
		require.NoError(t, err)
		require.True(t, added)

		added, err = f.Add(testID(1), at(10))
		require.NoError(t, err)
		require.False(t, added, "second Add of the same ID")

		added, err = f.Add(testID(1), at(5))
		require.NoError(t, err)
		require.False(t, added, "Add of the same ID with another expiry")

		added, err = f.Add(testID(2), at(10))
		require.NoError(t, err)
		require.True(t, added)
		require.Equal(t, 2, f.Len())
	})
}

func TestContains(t *testing.T) {
	forEach(t, func(t *testing.T, f SeenFilter) {
		requireContains(t, f, testID(1), false)
		_, err := f.Add(testID(1), at(10))
		require.NoError(t, err)
		requireContains(t, f, testID(1), true)
		requireContains(t, f, testID(2), false)
		requireContains(t, f, ID{}, false)
	})
}

func TestPruneRemovesExactlyTheExpired(t *testing.T) {
	forEach(t, func(t *testing.T, f SeenFilter) {
		// Added out of order of expiry; IDs 3, 4 and 5 share one instant.
		expiries := map[uint64]int{1: 50, 2: 10, 3: 30, 4: 30, 5: 30, 6: 20, 7: 40, 8: -5}
		for n, sec := range expiries {
			added, err := f.Add(testID(n), at(sec))
			require.NoError(t, err)
			require.True(t, added)
		}
		require.Equal(t, len(expiries), f.Len())

		steps := []struct {
			now         int
			wantRemoved int
		}{
			{now: -10, wantRemoved: 0},
			{now: 10, wantRemoved: 1},  // 8 (-5); 2 expires at 10, not before it
			{now: 11, wantRemoved: 1},  // 2
			{now: 11, wantRemoved: 0},  // nothing left to remove at 11
			{now: 31, wantRemoved: 4},  // 6, and 3, 4, 5 together
			{now: 100, wantRemoved: 2}, // 7, 1
		}
		for _, s := range steps {
			removed, err := f.Prune(at(s.now))
			require.NoError(t, err)
			require.Equal(t, s.wantRemoved, removed, "Prune(%d)", s.now)
			wantLen := 0
			for n, sec := range expiries {
				present := sec >= s.now
				requireContains(t, f, testID(n), present)
				if present {
					wantLen++
				}
			}
			require.Equal(t, wantLen, f.Len(), "Len after Prune(%d)", s.now)
		}
	})
}

func TestPruneEmpty(t *testing.T) {
	forEach(t, func(t *testing.T, f SeenFilter) {
		removed, err := f.Prune(at(0))
		require.NoError(t, err)
		require.Zero(t, removed)
		require.Zero(t, f.Len())
	})
}

func TestAddAfterPruneIsNew(t *testing.T) {
	forEach(t, func(t *testing.T, f SeenFilter) {
		_, err := f.Add(testID(1), at(10))
		require.NoError(t, err)
		removed, err := f.Prune(at(20))
		require.NoError(t, err)
		require.Equal(t, 1, removed)
		added, err := f.Add(testID(1), at(30))
		require.NoError(t, err)
		require.True(t, added, "an ID is new again once pruned")
		require.Equal(t, 1, f.Len())
	})
}

// An ID is remembered until the latest expiry it was added with.
func TestDuplicateAddKeepsLaterExpiry(t *testing.T) {
	forEach(t, func(t *testing.T, f SeenFilter) {
		_, err := f.Add(testID(1), at(10))
		require.NoError(t, err)
		added, err := f.Add(testID(1), at(30))
		require.NoError(t, err)
		require.False(t, added)
		added, err = f.Add(testID(1), at(20)) // earlier: ignored
		require.NoError(t, err)
		require.False(t, added)
		require.Equal(t, 1, f.Len())

		removed, err := f.Prune(at(25))
		require.NoError(t, err)
		require.Zero(t, removed)
		requireContains(t, f, testID(1), true)
		require.Equal(t, 1, f.Len())

		removed, err = f.Prune(at(31))
		require.NoError(t, err)
		require.Equal(t, 1, removed)
		requireContains(t, f, testID(1), false)
		require.Zero(t, f.Len())
	})
}

// Times before 1970 and beyond the int64 nanosecond range keep their order.
func TestExtremeTimes(t *testing.T) {
	forEach(t, func(t *testing.T, f SeenFilter) {
		times := []time.Time{
			{}, // year 1, clamped
			time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Unix(0, -1),
			time.Unix(0, 0),
			time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), // clamped
		}
		for i, tm := range times {
			_, err := f.Add(testID(uint64(i)), tm)
			require.NoError(t, err)
		}
		removed, err := f.Prune(time.Unix(0, 0))
		require.NoError(t, err)
		require.Equal(t, 3, removed)
		requireContains(t, f, testID(3), true)
		requireContains(t, f, testID(4), true)
		removed, err = f.Prune(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
		require.NoError(t, err)
		require.Equal(t, 1, removed)
		require.Equal(t, 1, f.Len())
	})
}

func TestErrClosedAfterClose(t *testing.T) {
	forEach(t, func(t *testing.T, f SeenFilter) {
		_, err := f.Add(testID(1), at(10))
		require.NoError(t, err)
		require.NoError(t, f.Close())

		_, err = f.Add(testID(2), at(10))
		require.ErrorIs(t, err, ErrClosed)
		_, err = f.Contains(testID(1))
		require.ErrorIs(t, err, ErrClosed)
		_, err = f.Prune(at(20))
		require.ErrorIs(t, err, ErrClosed)
		require.ErrorIs(t, f.Close(), ErrClosed)
		require.Zero(t, f.Len())
	})
}

// TestAgainstModel runs random operations against every implementation and
// a plain map, and requires the same answers.
func TestAgainstModel(t *testing.T) {
	forEach(t, func(t *testing.T, f SeenFilter) {
		rng := rand.New(rand.NewPCG(1, 2))
		model := map[ID]int{} // ID -> expiry in seconds
		now := 0
		for step := range 3000 {
			id := testID(rng.Uint64N(300))
			switch op := rng.IntN(10); {
			case op < 6:
				exp := now + rng.IntN(60) - 5
				added, err := f.Add(id, at(exp))
				require.NoError(t, err)
				old, present := model[id]
				require.Equal(t, !present, added, "step %d: Add", step)
				if !present || exp > old {
					model[id] = exp
				}
			case op < 9:
				requireContains(t, f, id, hasKey(model, id))
			default:
				now += rng.IntN(20)
				removed, err := f.Prune(at(now))
				require.NoError(t, err)
				want := 0
				for k, exp := range model {
					if exp < now {
						delete(model, k)
						want++
					}
				}
				require.Equal(t, want, removed, "step %d: Prune", step)
			}
			require.Equal(t, len(model), f.Len(), "step %d: Len", step)
		}
	})
}

func hasKey(m map[ID]int, id ID) bool { _, ok := m[id]; return ok }
