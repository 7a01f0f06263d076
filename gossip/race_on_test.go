//go:build race

package gossip_test

// raceDetector is set when the tests run with -race, which slows the
// long runs of the core five to ten times.
const raceDetector = true
