//go:build !race

package simulations

const raceDetector = false
