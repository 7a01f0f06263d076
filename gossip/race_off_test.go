//go:build !race

package gossip_test

const raceDetector = false
