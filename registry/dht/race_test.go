//go:build race

package dht

// raceEnabled: the race detector slows the simulations five to ten times.
const raceEnabled = true
