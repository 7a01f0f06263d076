//go:build !unix

package main

import "time"

// processCPU is unknown outside Unix.
func processCPU() (time.Duration, bool) { return 0, false }
