package dht

import (
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"
)

// figures are the measurements quoted in docs/registries.md.
type figures struct {
	Nodes                          int
	Lookups                        int
	HopsMean, HopsP99              float64
	MessagesMean, MessagesP99      float64
	TableMean, TableP99            float64
	PeersMean                      float64
	Uniformity                     *uniformity
	MessagesPerNodePerSecond       float64 // in the measured steady state
	BuildSeconds, HeapMBAfterBuild float64
}

func percentile(xs []float64, p float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, int(math.Ceil(p*float64(len(s))))-1)]
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// measureNetwork grows a network of n nodes, each joining through a random
// earlier one, lets it settle and measures lookups, tables and, if pool,
// the uniformity of gossip's samples.
func measureNetwork(tb testing.TB, n int, pool bool) figures {
	start := time.Now()
	c := newCluster(tb, 42, lanNetwork)
	cfg := Config{PingInterval: 5 * time.Minute, RefreshInterval: 10 * time.Minute, SampleInterval: 2 * time.Second}
	if !pool {
		cfg.SamplePoolSize = -1
	}
	gap := 50 * time.Second / time.Duration(n) // everyone joins within 50 s
	c.grow(n, gap, cfg, func(i int) int { return c.rng.IntN(i) })
	settle := 10 * time.Second
	if pool {
		settle = 45 * cfg.SampleInterval // the pools turn over
	}
	c.run(settle)
	f := figures{Nodes: n, BuildSeconds: time.Since(start).Seconds()}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	f.HeapMBAfterBuild = float64(ms.HeapAlloc) / (1 << 20)

	var tables, peers []float64
	for _, nd := range c.nodes {
		st := nd.t.Stats()
		tables = append(tables, float64(st.TableSize))
		peers = append(peers, float64(st.Answering))
	}
	f.TableMean, f.TableP99, f.PeersMean = mean(tables), percentile(tables, 0.99), mean(peers)

	// Lookups of random IDs from random nodes, 100 at a time.
	var hops, msgs []float64
	for batch := 0; batch < 10; batch++ {
		var from []*simNode
		for range 100 {
			nd := c.nodes[c.rng.IntN(len(c.nodes))]
			nd.lookup(c.randomID())
			from = append(from, nd)
		}
		c.run(5 * time.Second)
		for _, nd := range from {
			for _, res := range nd.lookups {
				hops = append(hops, float64(res.Hops))
				msgs = append(msgs, float64(res.Messages))
			}
			nd.lookups = nil
		}
	}
	f.Lookups = len(hops)
	f.HopsMean, f.HopsP99 = mean(hops), percentile(hops, 0.99)
	f.MessagesMean, f.MessagesP99 = mean(msgs), percentile(msgs, 0.99)

	before := c.net.Stats().Sent
	c.run(20 * time.Second)
	f.MessagesPerNodePerSecond = float64(c.net.Stats().Sent-before) / float64(n) / 20
	if pool {
		u := c.measureUniformity(300)
		f.Uniformity = &u
	}
	return f
}

// BenchmarkFigures measures a simulated network of HEARSAY_DHT_NODES nodes
// (default 10000), as quoted in docs/registries.md:
//
//	HEARSAY_DHT_NODES=10000 go test -run XXX -bench Figures -benchtime 1x -timeout 2h ./registry/dht
//	HEARSAY_DHT_NODES=100000 HEARSAY_DHT_POOL=0 go test -run XXX -bench Figures -benchtime 1x -timeout 4h ./registry/dht
func BenchmarkFigures(b *testing.B) {
	n, pool := 10000, true
	if s := os.Getenv("HEARSAY_DHT_NODES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	if os.Getenv("HEARSAY_DHT_POOL") == "0" {
		pool = false
	}
	for b.Loop() {
		f := measureNetwork(b, n, pool)
		b.ReportMetric(f.HopsMean, "hops/lookup")
		b.ReportMetric(f.HopsP99, "hops-p99")
		b.ReportMetric(f.MessagesMean, "msgs/lookup")
		b.ReportMetric(f.MessagesP99, "msgs-p99")
		b.ReportMetric(f.TableMean, "table/node")
		if f.Uniformity != nil {
			b.ReportMetric(f.Uniformity.SampledCV, "sampled-CV")
			b.ReportMetric(f.Uniformity.FullCV, "full-CV")
		}
		b.Logf("%+v", f)
		if f.Uniformity != nil {
			b.Logf("%+v", *f.Uniformity)
		}
	}
}
