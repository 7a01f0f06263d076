package merkle

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// randomIDs returns n distinct random IDs drawn from rng.
func randomIDs(rng *rand.Rand, n int) []ID {
	ids := make([]ID, n)
	for i := range ids {
		binary.BigEndian.PutUint64(ids[i][:8], rng.Uint64())
		binary.BigEndian.PutUint64(ids[i][8:], rng.Uint64())
	}
	return ids
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x6d65726b6c65)) }

// sharedIDs returns a function that returns n random IDs from seed, sorted
// if asked, drawn at its first call and the same for every caller after,
// which must not modify them.
func sharedIDs(seed uint64, n int, sorted bool) func() []ID {
	return sync.OnceValue(func() []ID {
		ids := randomIDs(newRand(seed), n)
		if sorted {
			slices.SortFunc(ids, ID.Compare)
		}
		return ids
	})
}

func mustTree(t testing.TB, cfg TreeConfig, ids ...ID) *Tree {
	t.Helper()
	tr, err := NewTree(cfg)
	require.NoError(t, err)
	for _, id := range ids {
		tr.Insert(id)
	}
	return tr
}

// refHash is the tree's hash of the subtree at level holding ids (sorted,
// all sharing their first level·b bits), computed from scratch by the
// definition: the model the incremental tree must agree with.
func refHash(ids []ID, level int, cfg TreeConfig) Hash {
	if len(ids) <= cfg.LeafSize || level >= maxLevel(cfg.FanoutBits) {
		in := []byte{0x00}
		for _, id := range ids {
			in = append(in, id[:]...)
		}
		return sha256.Sum256(in)
	}
	subs := make([][]ID, 1<<cfg.FanoutBits)
	for _, id := range ids {
		i := childIndex(&id, level, cfg.FanoutBits)
		subs[i] = append(subs[i], id)
	}
	in := []byte{0x01}
	for _, sub := range subs {
		h := refHash(sub, level+1, cfg)
		in = append(in, h[:]...)
	}
	return sha256.Sum256(in)
}

// withNearTwins appends n IDs that differ from ids[0] in their last 16 bits
// only: sharing long prefixes with it, they reach the deepest levels of a
// tree.
func withNearTwins(ids []ID, n int) []ID {
	for i := 1; i <= n; i++ {
		id := ids[0]
		id[15] ^= byte(i)
		id[14] ^= byte(i >> 3)
		ids = append(ids, id)
	}
	return ids
}

// idSet returns the set of the IDs of every list.
func idSet(lists ...[]ID) map[ID]bool {
	set := map[ID]bool{}
	for _, ids := range lists {
		for _, id := range ids {
			set[id] = true
		}
	}
	return set
}

func sortedKeys(set map[ID]bool) []ID {
	ids := make([]ID, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, ID.Compare)
	return ids
}

func TestEmptyTreeRootIsTheDocumentedConstant(t *testing.T) {
	tr := mustTree(t, TreeConfig{})
	want, _ := hex.DecodeString("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
	require.Equal(t, want, tr.Root().Bytes())
	require.Equal(t, Hash(sha256.Sum256([]byte{0x00})), tr.Root())
	require.Equal(t, EmptyHash, tr.Root())
	require.Zero(t, tr.Len())
}

func TestTreeInsertRemoveContains(t *testing.T) {
	t.Parallel()
	ids := randomIDs(newRand(1), 2000)
	tr := mustTree(t, TreeConfig{})
	for i, id := range ids {
		require.False(t, tr.Contains(id))
		require.True(t, tr.Insert(id))
		require.False(t, tr.Insert(id), "a second insert changes nothing")
		require.True(t, tr.Contains(id))
		require.Equal(t, i+1, tr.Len())
	}
	var absent ID
	absent[0] = 0xaa
	require.False(t, tr.Contains(absent))
	require.False(t, tr.Remove(absent))
	for i, id := range ids {
		require.True(t, tr.Remove(id))
		require.False(t, tr.Remove(id))
		require.False(t, tr.Contains(id))
		require.Equal(t, len(ids)-i-1, tr.Len())
	}
	require.Equal(t, EmptyHash, tr.Root())
}

func TestTreeRootIndependentOfInsertionOrder(t *testing.T) {
	t.Parallel()
	rng := newRand(2)
	ids := randomIDs(rng, 5000)
	cfg := TreeConfig{}
	want := mustTree(t, cfg, ids...).Root()
	for range 3 {
		rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		require.Equal(t, want, mustTree(t, cfg, ids...).Root())
	}
	built, err := BuildTree(cfg, append(ids, ids[:10]...))
	require.NoError(t, err)
	require.Equal(t, want, built.Root(), "bulk build agrees with inserts")
	require.Equal(t, len(ids), built.Len())
	sorted := slices.SortedFunc(slices.Values(ids), ID.Compare)
	require.Equal(t, refHash(sorted, 0, DefaultTreeConfig()), want)
}

func TestTreeRootChangesOnAnyChange(t *testing.T) {
	rng := newRand(3)
	ids := randomIDs(rng, 3000)
	tr := mustTree(t, TreeConfig{}, ids...)
	seen := map[Hash]bool{tr.Root(): true}
	for _, id := range randomIDs(rng, 200) {
		tr.Insert(id)
		require.False(t, seen[tr.Root()], "insert gives a new root")
		seen[tr.Root()] = true
	}
	for _, id := range ids[:200] {
		tr.Remove(id)
		require.False(t, seen[tr.Root()], "remove gives a new root")
		seen[tr.Root()] = true
	}
}

func TestRemovingWhatWasInsertedRestoresTheRoot(t *testing.T) {
	t.Parallel()
	rng := newRand(4)
	for _, cfg := range []TreeConfig{{}, {FanoutBits: 1, LeafSize: 1}, {FanoutBits: 8, LeafSize: 64}} {
		tr := mustTree(t, cfg, randomIDs(rng, 3000)...)
		before := tr.Root()
		batch := randomIDs(rng, 500)
		for _, id := range batch {
			tr.Insert(id)
		}
		require.NotEqual(t, before, tr.Root())
		rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		for _, id := range batch {
			tr.Remove(id)
		}
		require.Equal(t, before, tr.Root(), "%+v", cfg)
		require.Equal(t, 3000, tr.Len())
	}
}

// TestTreeDomainSeparation checks the bytes hashed: 0x00 before a leaf's IDs
// and 0x01 before an inner node's child hashes, so that a leaf whose IDs
// spell out an inner node's child hashes still hashes differently.
func TestTreeDomainSeparation(t *testing.T) {
	cfg := TreeConfig{FanoutBits: 1, LeafSize: 2}
	// Three IDs, two under child 0 and one under child 1: the root is inner.
	a, b, c := ID{0x01}, ID{0x02}, ID{0x81}
	tr := mustTree(t, cfg, a, b, c)
	left := sha256.Sum256(slices.Concat([]byte{0x00}, a[:], b[:]))
	right := sha256.Sum256(slices.Concat([]byte{0x00}, c[:]))
	root := sha256.Sum256(slices.Concat([]byte{0x01}, left[:], right[:]))
	require.Equal(t, Hash(root), tr.Root())
	require.Equal(t, Hash(left), tr.HashAt(tr.PositionOf(a, 1)))

	// Four IDs whose bytes are the root's input less its prefix byte: as a
	// leaf they hash with 0x00 in front, so not to the root.
	var forged []ID
	body := slices.Concat(left[:], right[:])
	for i := 0; i < len(body); i += 16 {
		forged = append(forged, ID(body[i:i+16]))
	}
	require.NotEqual(t, tr.Root(), leafHash(forged))
	require.Equal(t, Hash(sha256.Sum256(slices.Concat([]byte{0x00}, body))), leafHash(forged))
}

// TestTreeMatchesModel runs random inserts and removes on trees of many
// shapes and checks every observable against a from-scratch model.
func TestTreeMatchesModel(t *testing.T) {
	t.Parallel()
	shapes := []TreeConfig{
		{FanoutBits: 1, LeafSize: 1}, {FanoutBits: 2, LeafSize: 3}, {FanoutBits: 3, LeafSize: 16},
		{FanoutBits: 4, LeafSize: 8}, {FanoutBits: 5, LeafSize: 2}, {FanoutBits: 7, LeafSize: 4},
		{FanoutBits: 8, LeafSize: 64},
	}
	for si, cfg := range shapes {
		rng := newRand(uint64(10 + si))
		tr := mustTree(t, cfg)
		set := map[ID]bool{}
		pool := withNearTwins(randomIDs(rng, 300), 40)
		for step := range 3000 {
			id := pool[rng.IntN(len(pool))]
			if rng.IntN(3) == 0 {
				require.Equal(t, set[id], tr.Remove(id))
				delete(set, id)
			} else {
				require.Equal(t, !set[id], tr.Insert(id))
				set[id] = true
			}
			if step%100 != 0 {
				continue
			}
			want := sortedKeys(set)
			require.Equal(t, refHash(want, 0, cfg), tr.Root(), "%+v step %d", cfg, step)
			require.Equal(t, len(want), tr.Len())
			requireEqualIDs(t, want, slices.Collect(tr.All()))
			// Random positions, above and below the leaves.
			for range 20 {
				level := rng.IntN(maxLevel(cfg.FanoutBits) + 1)
				p := tr.PositionOf(pool[rng.IntN(len(pool))], level)
				var under []ID
				for _, id := range want {
					if hasPrefix(&id, &p.Prefix, level*cfg.FanoutBits) {
						under = append(under, id)
					}
				}
				requireEqualIDs(t, under, slices.Collect(tr.IDs(p)))
				require.Equal(t, len(under), tr.CountAt(p))
				require.Equal(t, refHash(under, level, cfg), tr.HashAt(p), "%+v level %d", cfg, level)
			}
		}
		built, err := BuildTree(cfg, sortedKeys(set))
		require.NoError(t, err)
		require.Equal(t, tr.Root(), built.Root())
	}
}

// TestQueuedChangesMatchModel: batches of InsertLater and RemoveLater, with
// the same ID changed several times in a batch, leave the tree exactly as
// the model says (the last change of an ID wins), with the shape rule kept.
func TestQueuedChangesMatchModel(t *testing.T) {
	t.Parallel()
	shapes := []TreeConfig{{FanoutBits: 1, LeafSize: 1}, {FanoutBits: 3, LeafSize: 16}, {FanoutBits: 2, LeafSize: 3}, {FanoutBits: 8, LeafSize: 64}}
	for si, cfg := range shapes {
		rng := newRand(uint64(40 + si))
		tr := mustTree(t, cfg)
		set := map[ID]bool{}
		pool := withNearTwins(randomIDs(rng, 1000), 60)
		for batch := range 60 {
			// Batches grow then shrink the tree, down to empty once.
			size := rng.IntN(200)
			removeShare := 3
			if batch > 30 {
				removeShare = 1
			}
			for range size {
				id := pool[rng.IntN(len(pool))]
				if rng.IntN(4) < removeShare {
					tr.InsertLater(id)
					set[id] = true
				} else {
					tr.RemoveLater(id)
					delete(set, id)
				}
			}
			if batch == 50 {
				for id := range set {
					tr.RemoveLater(id)
				}
				clear(set)
			}
			want := sortedKeys(set)
			require.Equal(t, refHash(want, 0, cfg), tr.Root(), "%+v batch %d", cfg, batch)
			require.Equal(t, len(want), tr.Len())
			requireEqualIDs(t, want, slices.Collect(tr.All()))
			require.NoError(t, shapeError(tr, tr.root, 0), "%+v batch %d", cfg, batch)
		}
	}
}

// shapeError checks the shape rule under n: counts add up, a node holding
// more than LeafSize IDs is inner (above the deepest level), and no empty
// subtree is stored. It returns the first violation, so that the walk costs
// no assertion per node.
func shapeError(tr *Tree, n *node, level int) error {
	if n.isLeaf() {
		switch {
		case len(n.ids) != n.count:
			return fmt.Errorf("leaf at level %d holds %d IDs and counts %d", level, len(n.ids), n.count)
		case n.count > tr.leafSize && level < tr.maxLevel:
			return fmt.Errorf("leaf of %d IDs at level %d", n.count, level)
		case !slices.IsSortedFunc(n.ids, ID.Compare):
			return fmt.Errorf("leaf at level %d is not sorted", level)
		}
		return nil
	}
	if n.count <= tr.leafSize {
		return fmt.Errorf("inner node of %d IDs at level %d", n.count, level)
	}
	sum := 0
	for i, c := range n.inner.children {
		if c == nil {
			continue
		}
		if c.count <= 0 {
			return fmt.Errorf("empty child %d stored at level %d", i, level+1)
		}
		if err := shapeError(tr, c, level+1); err != nil {
			return err
		}
		sum += c.count
	}
	if sum != n.count {
		return fmt.Errorf("inner node at level %d counts %d, its children %d", level, n.count, sum)
	}
	return nil
}

// requireEqualIDs checks that want and got hold the same IDs in the same
// order, nil and empty alike. slices.Equal decides, because require.Equal's
// reflection is slow under the race detector; only a failure needs its diff.
func requireEqualIDs(t testing.TB, want, got []ID, msgAndArgs ...any) {
	if !slices.Equal(want, got) {
		t.Helper()
		require.Equal(t, nilIfEmpty(want), nilIfEmpty(got), msgAndArgs...)
	}
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestChildPositionsAndIndexes(t *testing.T) {
	t.Parallel()
	for b := MinFanoutBits; b <= MaxFanoutBits; b++ {
		rng := newRand(uint64(b))
		for _, id := range randomIDs(rng, 50) {
			p := Position{}
			for level := 0; level < maxLevel(b); level++ {
				i := childIndex(&id, level, b)
				c, ok := childPosition(p, i, b)
				require.True(t, ok)
				require.Equal(t, Position{Level: level + 1, Prefix: maskBits(id, (level+1)*b)}, c)
				p = c
			}
			require.Equal(t, id, p.Prefix, "the deepest prefix is the whole ID")
			_, ok := childPosition(p, 0, b)
			require.False(t, ok, "nothing below the deepest level")
		}
	}
	// b = 3: the deepest level has one real bit of three; odd children would
	// set the 129th bit.
	p := Position{Level: 42}
	_, ok := childPosition(p, 1, 3)
	require.False(t, ok)
	_, ok = childPosition(p, 4, 3)
	require.True(t, ok)
}

func TestNewTreeRejectsBadShapes(t *testing.T) {
	for _, cfg := range []TreeConfig{{FanoutBits: 9}, {FanoutBits: -1}, {LeafSize: 65}, {LeafSize: -2}} {
		_, err := NewTree(cfg)
		require.ErrorIs(t, err, ErrInvalidConfig, "%+v", cfg)
	}
}

func TestInvalidPositionsAreEmpty(t *testing.T) {
	tr := mustTree(t, TreeConfig{}, randomIDs(newRand(5), 100)...)
	for _, p := range []Position{{Level: -1}, {Level: 1000}} {
		require.Equal(t, EmptyHash, tr.HashAt(p))
		require.Zero(t, tr.CountAt(p))
		require.Empty(t, slices.Collect(tr.IDs(p)))
	}
}
