package handler

import (
	"fmt"
	"testing"
)

// Messages per second through a trivial command (/bin/sh -c true) with the
// default concurrency, progress kept in a file: the cost of a process per
// message.
func BenchmarkTrivialHandler(b *testing.B) {
	if err := (Shell{}).Run(b.Context(), Job{Command: "true"}); err != nil {
		b.Skip("no /bin/sh: the Shell runner needs it")
	}
	n, err := newBenchNode(b)
	if err != nil {
		b.Fatal(err)
	}
	rec := &countingShell{done: make(chan struct{}, 1024)}
	hs, err := Start(n, Config{Handlers: []Spec{{Pattern: mustPattern(">"), Command: "true"}}, Dir: b.TempDir(), Runner: rec, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer hs.Close()
	if err := n.Start(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	go func() {
		for i := range b.N {
			if _, err := n.Publish(b.Context(), "bench", fmt.Appendf(nil, "m%d", i)); err != nil {
				b.Error(err)
				return
			}
		}
	}()
	for range b.N {
		<-rec.done
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
