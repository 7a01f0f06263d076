//go:build race

package dht

// raceDetector is set when the tests run with -race, which slows the
// tables' simulations about ten times.
const raceDetector = true
