package gossip

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
)

// statsFields calls counter for every counter of s (each uint64 field and
// each element of a uint64 array) and gauge for every gauge (each int
// field), with its name, and fails on a field of any other kind: a new
// field must be one or the other for Add and Sub to know what to do.
func statsFields(t *testing.T, s *Stats, counter func(name string, v reflect.Value), gauge func(name string, v reflect.Value)) {
	t.Helper()
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch {
		case f.Kind() == reflect.Uint64:
			counter(name, f)
		case f.Kind() == reflect.Array && f.Type().Elem().Kind() == reflect.Uint64:
			for k := range f.Len() {
				counter(name+"["+DropReason(k).String()+"]", f.Index(k))
			}
		case f.Kind() == reflect.Int:
			gauge(name, f)
		default:
			t.Fatalf("Stats.%s is a %v: neither a counter (uint64) nor a gauge (int)", name, f.Type())
		}
	}
}

// numbered gives every counter and gauge of a Stats a distinct value from
// base on.
func numbered(t *testing.T, base uint64) Stats {
	var s Stats
	n := base
	set := func(_ string, v reflect.Value) {
		if v.Kind() == reflect.Int {
			v.SetInt(int64(n))
		} else {
			v.SetUint(n)
		}
		n++
	}
	statsFields(t, &s, set, set)
	return s
}

// TestStatsAddSubEveryField fails when a field of Stats is left out of Add
// or Sub.
func TestStatsAddSubEveryField(t *testing.T) {
	a, b := numbered(t, 1000), numbered(t, 1)
	sum := a
	sum.Add(b)
	diff := a
	diff.Sub(b)
	wantSum, wantDiff := uint64(1001), uint64(999) // field k: (1000+k) + (1+k), (1000+k) - (1+k)
	n := uint64(0)
	statsFields(t, &sum, func(name string, v reflect.Value) {
		require.Equal(t, wantSum+2*n, v.Uint(), "Add leaves out the counter %s", name)
		n++
	}, func(name string, v reflect.Value) {
		require.Equal(t, int64(wantSum+2*n), v.Int(), "Add leaves out the gauge %s", name)
		n++
	})
	n = 0
	statsFields(t, &diff, func(name string, v reflect.Value) {
		require.Equal(t, wantDiff, v.Uint(), "Sub leaves out the counter %s", name)
		n++
	}, func(name string, v reflect.Value) {
		require.Equal(t, int64(1000+n), v.Int(), "Sub keeps the gauge %s", name)
		n++
	})
}
