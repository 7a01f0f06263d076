package node

import "time"

// Clock is the time a node runs on. The system clock is the default; a
// transport.Network is one too, on virtual time, so that a cluster of nodes
// runs in one goroutine, deterministically, inside Network.RunUntil.
type Clock interface {
	// Now is the current time.
	Now() time.Time
	// AfterFunc calls f once, d from now (on a goroutine of the clock's
	// choosing), and returns a func that cancels the call: stop reports
	// whether it did so before f started.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// systemClock is the real time.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}
