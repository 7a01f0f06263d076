package simulations

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
