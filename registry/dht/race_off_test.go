//go:build !race

package dht

const raceDetector = false
