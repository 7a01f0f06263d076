//go:build race

package simulations

// raceDetector is set when the tests run with -race, which slows the
// simulator five to ten times.
const raceDetector = true
