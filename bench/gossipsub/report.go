package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

// systemName is the name the report gives this system, as `hearsay bench
// --systems` knows it.
const systemName = "gossipsub"

// The report's JSON has hearsay bench's shape and field names (its
// internal/bench/report.go), for one system, so that `hearsay bench` can
// read it as a result of its own; the fields past hearsay's are marked.
// Durations are in milliseconds; a figure that could not be measured is
// null.
type jsonReport struct {
	Config  jsonConfig   `json:"config"`
	Results []jsonResult `json:"results"`
}

type jsonConfig struct {
	Nodes    int `json:"nodes"`
	Messages int `json:"messages"`
	Size     int `json:"size"`
	Rate     int `json:"rate"` // 0: as fast as Publish returns
	Origins  int `json:"origins"`
	// IntervalMS and Fanout are GossipSub's heartbeat interval and mesh
	// degree D, its defaults: no flag changes them.
	IntervalMS float64  `json:"interval_ms"`
	Fanout     int      `json:"fanout"`
	Encrypt    bool     `json:"encrypt"` // always: libp2p secures every connection
	TimeoutMS  float64  `json:"timeout_ms"`
	Systems    []string `json:"systems"`
	Mode       string   `json:"mode"`
	// Peers is --peers (not in hearsay's): 0, every host connected to
	// every other.
	Peers int `json:"peers"`
}

type jsonResult struct {
	System            string            `json:"system"`
	Published         int               `json:"published"`
	PublishRate       *float64          `json:"publish_rate"`
	BackpressureWaits uint64            `json:"backpressure_waits"`
	Deliveries        int64             `json:"deliveries"`
	Expected          int64             `json:"expected"`
	DeliveredFraction float64           `json:"delivered_fraction"`
	TimeToFullMS      *float64          `json:"time_to_full_ms"`
	LatencyP50MS      *float64          `json:"latency_p50_ms"`
	LatencyP99MS      *float64          `json:"latency_p99_ms"`
	LatencyMaxMS      *float64          `json:"latency_max_ms"`
	LatencySamples    int               `json:"latency_samples"`
	BytesOut          uint64            `json:"bytes_out"`
	OverheadRatio     float64           `json:"overhead_ratio"`
	Duplicates        uint64            `json:"duplicates"`
	DuplicateRatio    float64           `json:"duplicate_ratio"`
	Drops             map[string]uint64 `json:"drops"`
	CPUMS             *float64          `json:"cpu_ms"`
	CPUUSPerDelivery  *float64          `json:"cpu_us_per_delivery"`
	WindowMS          float64           `json:"window_ms"`

	// Not in hearsay's: the publishing time, from which publish_rate
	// comes, and the TCP segments sent with the IP and TCP header bytes
	// they carried (null where the kernel does not say).
	PublishTimeMS            float64  `json:"publish_time_ms"`
	TCPSegmentsOut           *uint64  `json:"tcp_segments_out"`
	BytesOutWithHeaders      *uint64  `json:"bytes_out_with_headers"`
	OverheadRatioWithHeaders *float64 `json:"overhead_ratio_with_headers"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func msOrNull(d time.Duration, known bool) *float64 {
	if !known {
		return nil
	}
	v := ms(d)
	return &v
}

// WriteJSON writes cfg (defaults applied) and res as one JSON object.
func WriteJSON(w io.Writer, cfg Config, res Result) error {
	jr := jsonResult{
		System: systemName, Published: res.Published,
		Deliveries: res.Deliveries, Expected: res.Expected(), DeliveredFraction: res.DeliveredFraction(),
		TimeToFullMS:   msOrNull(res.TimeToFull, res.Complete()),
		LatencyP50MS:   msOrNull(res.LatencyP50, res.LatencySamples > 0),
		LatencyP99MS:   msOrNull(res.LatencyP99, res.LatencySamples > 0),
		LatencyMaxMS:   msOrNull(res.LatencyMax, res.LatencySamples > 0),
		LatencySamples: res.LatencySamples,
		BytesOut:       res.BytesOut, OverheadRatio: res.OverheadRatio(),
		Duplicates: res.Duplicates, DuplicateRatio: res.DuplicateRatio(), Drops: res.Drops,
		CPUMS:         msOrNull(res.CPU, res.CPUKnown),
		WindowMS:      ms(res.Window),
		PublishTimeMS: ms(res.PublishTime),
	}
	if rate, ok := res.PublishRate(); ok {
		jr.PublishRate = &rate
	}
	if us, ok := res.CPUPerDelivery(); ok {
		jr.CPUUSPerDelivery = &us
	}
	if ratio, ok := res.OverheadRatioWithHeaders(); ok {
		segs, all := res.Segments, res.BytesOut+res.HeaderBytes
		jr.TCPSegmentsOut, jr.BytesOutWithHeaders, jr.OverheadRatioWithHeaders = &segs, &all, &ratio
	}
	if jr.Drops == nil {
		jr.Drops = map[string]uint64{}
	}
	out := jsonReport{
		Config: jsonConfig{
			Nodes: cfg.Nodes, Messages: cfg.Messages, Size: cfg.Size, Rate: max(cfg.Rate, 0), Origins: cfg.Origins,
			IntervalMS: ms(pubsub.GossipSubHeartbeatInterval), Fanout: pubsub.GossipSubD, Encrypt: true,
			TimeoutMS: ms(cfg.Timeout), Systems: []string{systemName}, Mode: "one process", Peers: cfg.Peers,
		},
		Results: []jsonResult{jr},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// WriteTable writes res as hearsay bench's table does, one column.
func WriteTable(w io.Writer, cfg Config, res Result) error {
	rate := "as fast as possible"
	if cfg.Rate > 0 {
		rate = fmt.Sprintf("at %d/s", cfg.Rate)
	}
	peers := "all"
	if cfg.Peers > 0 {
		peers = fmt.Sprint(cfg.Peers)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d hosts, %d messages of %d bytes %s from %d origin(s), GossipSub defaults (heartbeat %s, D %d), dials: %s, one process\n\n",
		cfg.Nodes, cfg.Messages, cfg.Size, rate, cfg.Origins, pubsub.GossipSubHeartbeatInterval, pubsub.GossipSubD, peers)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	row := func(label, value string) { fmt.Fprintf(tw, "%s\t%s\n", label, value) }
	row("", systemName)
	row("delivered", fmt.Sprintf("%.2f%%", 100*res.DeliveredFraction()))
	if res.Complete() {
		row("time to 100%", formatDuration(res.TimeToFull))
	} else {
		row("time to 100%", "-")
	}
	if res.LatencySamples > 0 {
		row("latency p50 / p99", formatDuration(res.LatencyP50)+"/"+formatDuration(res.LatencyP99))
	} else {
		row("latency p50 / p99", "-")
	}
	row("overhead ratio", fmt.Sprintf("%.2f", res.OverheadRatio()))
	if ratio, ok := res.OverheadRatioWithHeaders(); ok {
		row("overhead ratio, IP+TCP headers", fmt.Sprintf("%.2f", ratio))
	}
	row("duplicates per delivery", fmt.Sprintf("%.2f", res.DuplicateRatio()))
	if us, ok := res.CPUPerDelivery(); ok {
		row("CPU µs / msg / node", fmt.Sprintf("%.1f", us))
	} else {
		row("CPU µs / msg / node", "-")
	}
	if r, ok := res.PublishRate(); ok {
		row("publish rate (msg/s)", fmt.Sprintf("%.0f", r))
	} else {
		row("publish rate (msg/s)", "-")
	}
	row("bytes sent", formatBytes(res.BytesOut))
	var drops uint64
	for _, n := range res.Drops {
		drops += n
	}
	row("drops (by reason: --json)", fmt.Sprint(drops))
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// formatDuration prints d to three significant figures at most.
func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.3gs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.3gms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.3gµs", float64(d)/float64(time.Microsecond))
	}
}

// formatBytes prints n in B, kB or MB (powers of 1000).
func formatBytes(n uint64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	default:
		return fmt.Sprintf("%d B", n)
	}
}
