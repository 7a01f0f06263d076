package merkle

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/wire"
)

// An answer of many reports never passes the packet size, whatever their
// kind: a run of IDS probes of cells too full to list (each answered with
// a summary) once overflowed it by the last summary, which the size check
// did not see.
func TestAnswerV2FitsWithSummaries(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]ID, 100_000)
	for i := range ids {
		for j := range ids[i] {
			ids[i][j] = byte(rng.Uint32())
		}
	}
	tree, err := BuildTree(DefaultTreeConfig(), ids)
	require.NoError(t, err)
	r, err := NewResponder(tree, ResponderConfig{MaxPacketSize: 1400})
	require.NoError(t, err)
	// Deep cells (a few IDs each, listed) first, in every number, then
	// full ones: some mix puts a summary right at the packet's end.
	for deep := range 60 {
		q := QueryV2{Session: 1, Shape: DefaultTreeConfig(), HashSize: 8, CheckSize: 2, MaxAnswerSize: 1400}
		for i := range deep {
			q.Items = append(q.Items, ProbeItem{Kind: ProbeIDs, Pos: tree.PositionOf(ids[i], 5)})
		}
		for i := range 100 {
			q.Items = append(q.Items, ProbeItem{Kind: ProbeIDs, Pos: tree.PositionOf(ids[1000+i], 2)})
		}
		out, err := r.AnswerV2(nil, AppendQueryV2(nil, &q)[wire.HeaderSize:])
		require.NoError(t, err)
		require.LessOrEqual(t, len(out), 1400, "%d deep cells first", deep)
		a, err := DecodeAnswerV2(out[wire.HeaderSize:])
		require.NoError(t, err)
		require.NotEmpty(t, a.Entries)
	}
}
