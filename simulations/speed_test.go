package simulations

import (
	"strconv"
	"testing"
)

// underRace is n, or the smaller race when the tests run with -race. A
// Simulator runs on one goroutine, so the race detector finds nothing in a
// large run that a small one would not show, and slows the simulator five
// to ten times (the DHT tables' lookups most). Tests whose property holds
// at any size run the small size under -race; their full size runs
// without it.
func underRace(n, race int) int {
	if raceDetector {
		return race
	}
	return n
}

// inParallel runs the independent simulations of one test, each fn in a
// parallel subtest, and returns when all have ended, reporting whether all
// passed: a test's runs then share the cores with the other tests' instead
// of following one another.
func inParallel(t *testing.T, fns ...func(t *testing.T)) bool {
	t.Helper()
	return t.Run("runs", func(t *testing.T) {
		for i, fn := range fns {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				t.Parallel()
				fn(t)
			})
		}
	})
}
