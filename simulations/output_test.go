package simulations

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
)

// TestSummaryTotalsEveryCounter fails when a counter of gossip.Stats is
// left out of summary.json: each uint64 field gets a distinct value, which
// must appear under exactly one key of "totals"; the drops by reason go
// to "dropped".
func TestSummaryTotalsEveryCounter(t *testing.T) {
	var st gossip.Stats
	want := map[uint64]string{}
	v := reflect.ValueOf(&st).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Uint64 {
			n := uint64(100 + i)
			f.SetUint(n)
			want[n] = v.Type().Field(i).Name
		}
	}
	for _, r := range gossip.DropReasons() {
		st.Dropped[r] = uint64(1000 + r)
	}
	rep := Report{Config: Config{Nodes: 2}, Totals: st, Rounds: []Round{{}}}

	raw, err := json.Marshal(rep.Summary())
	require.NoError(t, err)
	var out struct {
		Totals  map[string]uint64 `json:"totals"`
		Dropped map[string]uint64 `json:"dropped"`
	}
	require.NoError(t, json.Unmarshal(raw, &out))
	keys := map[uint64]string{}
	for k, n := range out.Totals {
		require.NotContains(t, keys, n, "%s and %s hold the same counter", k, keys[n])
		keys[n] = k
	}
	for n, name := range want {
		assert.Contains(t, keys, n, "gossip.Stats.%s is not in summary.json's totals", name)
	}
	assert.Len(t, out.Totals, len(want), "one key per counter")
	for _, r := range gossip.DropReasons() {
		assert.Equal(t, uint64(1000+r), out.Dropped[r.String()], "dropped %v", r)
	}
}
