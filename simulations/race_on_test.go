//go:build race

package simulations

// raceDetector is set when the tests run with -race, which slows the
// simulator about five times.
const raceDetector = true
