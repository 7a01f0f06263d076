//go:build !unix

package bench

import "time"

// processCPU reports that the process's CPU time is not read on this
// system: the CPU figure is then left out.
func processCPU() (time.Duration, bool) { return 0, false }
