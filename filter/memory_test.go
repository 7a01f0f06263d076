package filter

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMemoryErrFullThenPrune(t *testing.T) {
	m := NewMemory(MemoryConfig{MaxEntries: 3})
	for n := range uint64(3) {
		added, err := m.Add(testID(n), at(int(n)))
		require.NoError(t, err)
		require.True(t, added)
	}
	added, err := m.Add(testID(3), at(10))
	require.ErrorIs(t, err, ErrFull)
	require.False(t, added)
	requireContains(t, m, testID(3), false)
	require.Equal(t, 3, m.Len())

	// An ID already present is still reported as such when full.
	added, err = m.Add(testID(0), at(0))
	require.NoError(t, err)
	require.False(t, added)

	removed, err := m.Prune(at(1)) // removes ID 0 (expiry 0)
	require.NoError(t, err)
	require.Equal(t, 1, removed)

	added, err = m.Add(testID(3), at(10))
	require.NoError(t, err)
	require.True(t, added)
	_, err = m.Add(testID(4), at(10))
	require.ErrorIs(t, err, ErrFull)
}

func TestMemoryDefaultMaxEntries(t *testing.T) {
	require.Equal(t, DefaultMaxEntries, NewMemory(MemoryConfig{}).max)
	require.Equal(t, DefaultMaxEntries, NewMemory(MemoryConfig{MaxEntries: -1}).max)
	require.Equal(t, 7, NewMemory(MemoryConfig{MaxEntries: 7}).max)
}

// An idle filter holds no map or heap; one that was pruned mostly empty
// gives its memory back.
func TestMemoryShrinks(t *testing.T) {
	m := NewMemory(MemoryConfig{})
	require.Nil(t, m.expiry)
	require.Nil(t, m.heap)
	_, err := m.Contains(testID(1))
	require.NoError(t, err)
	_, err = m.Prune(at(0))
	require.NoError(t, err)
	require.Nil(t, m.expiry, "Contains and Prune allocate nothing")

	const n = 1000
	for i := range uint64(n) {
		_, err := m.Add(testID(i), at(int(i)))
		require.NoError(t, err)
	}
	removed, err := m.Prune(at(n - 10)) // keep 10
	require.NoError(t, err)
	require.Equal(t, n-10, removed)
	require.LessOrEqual(t, cap(m.heap), 2*10)
	require.Equal(t, 10, m.peak, "map rebuilt at its new size")
	for i := range uint64(n) {
		requireContains(t, m, testID(i), i >= n-10)
	}

	removed, err = m.Prune(at(n))
	require.NoError(t, err)
	require.Equal(t, 10, removed)
	require.Nil(t, m.expiry)
	require.Nil(t, m.heap)
}

// Extending the same IDs over and over must not grow the heap without bound.
func TestMemoryExtensionsKeepHeapBounded(t *testing.T) {
	m := NewMemory(MemoryConfig{})
	const n = 100
	for round := range 50 {
		for i := range uint64(n) {
			_, err := m.Add(testID(i), at(round))
			require.NoError(t, err)
		}
		require.LessOrEqual(t, len(m.heap), 2*n+1)
	}
	require.Equal(t, n, m.Len())
	removed, err := m.Prune(at(49))
	require.NoError(t, err)
	require.Zero(t, removed)
	removed, err = m.Prune(at(50))
	require.NoError(t, err)
	require.Equal(t, n, removed)
}

func BenchmarkMemoryAdd(b *testing.B) {
	m := NewMemory(MemoryConfig{MaxEntries: math.MaxInt})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := m.Add(testID(uint64(i)), at(i)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemoryContains(b *testing.B) {
	const n = 1 << 16
	m := NewMemory(MemoryConfig{})
	for i := range uint64(n) {
		if _, err := m.Add(testID(i), at(int(i))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for i := uint64(0); b.Loop(); i++ {
		// Half the lookups hit, half miss.
		if _, err := m.Contains(testID(i % (2 * n))); err != nil {
			b.Fatal(err)
		}
	}
}
