package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hearsay-io/hearsay/security"
)

// WriteTable writes the report as a table, one column per system, under a
// line describing the workload.
func (r Report) WriteTable(w io.Writer) error {
	cfg := r.Config
	rate := "as fast as possible"
	if cfg.Rate > 0 {
		rate = fmt.Sprintf("at %d/s", cfg.Rate)
	}
	encryption := "encrypted"
	if cfg.Cipher != security.DefaultSuite {
		encryption = "encrypted (hearsay: " + cfg.Cipher.String() + ")"
	}
	if cfg.Plaintext {
		encryption = "not encrypted"
	}
	if cfg.Sign {
		encryption += ", signed"
	}
	var b strings.Builder
	longPoll := "long-poll off"
	if cfg.LongPoll > 0 {
		longPoll = "long-poll " + cfg.LongPoll.String()
	}
	via := ""
	if cfg.API {
		via = ", hearsay through its HTTP API (POST, SSE)"
	}
	fmt.Fprintf(&b, "%d nodes, %d messages of %d bytes %s from %d origin(s), interval %s, fanout %d, %s, %s, %s%s\n\n",
		cfg.Nodes, cfg.Messages, cfg.Size, rate, cfg.Origins, cfg.Interval, cfg.Fanout, longPoll, encryption, cfg.mode(), via)

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	row := func(label string, cell func(Result) string) {
		fmt.Fprint(tw, label)
		for _, res := range r.Results {
			fmt.Fprint(tw, "\t", cell(res))
		}
		fmt.Fprintln(tw)
	}
	row("", func(res Result) string { return string(res.System) })
	row("delivered", func(res Result) string {
		return fmt.Sprintf("%.2f%%", 100*res.DeliveredFraction())
	})
	row("time to 100%", func(res Result) string {
		if !res.Complete() {
			return "-"
		}
		return formatDuration(res.TimeToFull)
	})
	row("latency p50 / p99", func(res Result) string {
		if res.LatencySamples == 0 {
			return "-"
		}
		return formatDuration(res.LatencyP50) + "/" + formatDuration(res.LatencyP99)
	})
	row("overhead ratio", func(res Result) string { return fmt.Sprintf("%.2f", res.OverheadRatio()) })
	row("wire overhead (IP headers)", func(res Result) string {
		if ratio, ok := res.WireOverheadRatio(); ok {
			return fmt.Sprintf("%.2f", ratio)
		}
		return "-"
	})
	row("duplicates per delivery", func(res Result) string { return fmt.Sprintf("%.2f", res.DuplicateRatio()) })
	row("CPU µs / msg / node", func(res Result) string {
		if us, ok := res.CPUPerDelivery(); ok {
			return fmt.Sprintf("%.1f", us)
		}
		return "-"
	})
	row("publish rate (msg/s)", func(res Result) string {
		if rate, ok := res.PublishRate(); ok {
			return fmt.Sprintf("%.0f", rate)
		}
		return "-"
	})
	row("backpressure waits", func(res Result) string {
		if res.System == Memberlist || res.System == GossipSub {
			return "-" // memberlist's queue and GossipSub's Publish never refuse
		}
		return fmt.Sprint(res.BackpressureWaits)
	})
	row("bytes sent", func(res Result) string { return formatBytes(res.BytesOut) })
	row("drops (by reason: --json)", func(res Result) string {
		var total uint64
		for _, n := range res.Drops {
			total += n
		}
		return fmt.Sprint(total)
	})
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Modes, as the report names them.
const (
	modeOneProcess = "one process"
	modeProcesses  = "processes"
)

// mode is modeProcesses with Processes, else modeOneProcess.
func (c Config) mode() string {
	if c.Processes {
		return modeProcesses
	}
	return modeOneProcess
}

// formatDuration prints d to three significant figures at most: 4.2ms,
// 180ms, 1.21s.
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

// jsonReport is the machine-readable report of WriteJSON. Durations are in
// milliseconds; a figure that could not be measured is null.
type jsonReport struct {
	Config  jsonConfig   `json:"config"`
	Results []jsonResult `json:"results"`
}

type jsonConfig struct {
	Nodes      int      `json:"nodes"`
	Messages   int      `json:"messages"`
	Size       int      `json:"size"`
	Rate       int      `json:"rate"` // 0: as fast as backpressure allows
	Origins    int      `json:"origins"`
	IntervalMS float64  `json:"interval_ms"`
	Fanout     int      `json:"fanout"`
	LongPollMS float64  `json:"long_poll_ms"` // hearsay's; 0: off
	Encrypt    bool     `json:"encrypt"`
	Cipher     string   `json:"cipher"`         // hearsay's suite
	Sign       bool     `json:"sign,omitempty"` // hearsay's messages signed (--sign)
	TimeoutMS  float64  `json:"timeout_ms"`
	Systems    []System `json:"systems"`
	// Mode is "one process", or "processes": a process per node.
	Mode string `json:"mode"`
	// API: hearsay's messages went through its HTTP API (Config.API).
	API bool `json:"api"`
}

type jsonResult struct {
	System            System            `json:"system"`
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
	HeaderBytes       *uint64           `json:"header_bytes"`
	WireOverheadRatio *float64          `json:"wire_overhead_ratio"`
	Duplicates        uint64            `json:"duplicates"`
	DuplicateRatio    float64           `json:"duplicate_ratio"`
	Drops             map[string]uint64 `json:"drops"`
	CPUMS             *float64          `json:"cpu_ms"`
	CPUUSPerDelivery  *float64          `json:"cpu_us_per_delivery"`
	WindowMS          float64           `json:"window_ms"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func msOrNull(d time.Duration, known bool) *float64 {
	if !known {
		return nil
	}
	v := ms(d)
	return &v
}

// WriteJSON writes the report as one JSON object (see docs/bench.md).
func (r Report) WriteJSON(w io.Writer) error {
	cfg := r.Config
	out := jsonReport{Config: jsonConfig{
		Nodes: cfg.Nodes, Messages: cfg.Messages, Size: cfg.Size, Rate: max(cfg.Rate, 0),
		Origins: cfg.Origins, IntervalMS: ms(cfg.Interval), Fanout: cfg.Fanout, LongPollMS: ms(max(cfg.LongPoll, 0)),
		Encrypt: !cfg.Plaintext, Sign: cfg.Sign, TimeoutMS: ms(cfg.Timeout), Systems: cfg.Systems, Mode: cfg.mode(), API: cfg.API, Cipher: cfg.Cipher.String(),
	}, Results: []jsonResult{}}
	for _, res := range r.Results {
		jr := jsonResult{
			System: res.System, Published: res.Published, BackpressureWaits: res.BackpressureWaits,
			Deliveries: res.Deliveries, Expected: res.Expected(), DeliveredFraction: res.DeliveredFraction(),
			TimeToFullMS: msOrNull(res.TimeToFull, res.Complete()),
			LatencyP50MS: msOrNull(res.LatencyP50, res.LatencySamples > 0),
			LatencyP99MS: msOrNull(res.LatencyP99, res.LatencySamples > 0),
			LatencyMaxMS: msOrNull(res.LatencyMax, res.LatencySamples > 0), LatencySamples: res.LatencySamples,
			BytesOut: res.BytesOut, OverheadRatio: res.OverheadRatio(),
			Duplicates: res.Duplicates, DuplicateRatio: res.DuplicateRatio(), Drops: res.Drops,
			CPUMS:    msOrNull(res.CPU, res.CPUKnown),
			WindowMS: ms(res.Window),
		}
		if rate, ok := res.PublishRate(); ok {
			jr.PublishRate = &rate
		}
		if us, ok := res.CPUPerDelivery(); ok {
			jr.CPUUSPerDelivery = &us
		}
		if ratio, ok := res.WireOverheadRatio(); ok {
			headers := res.HeaderBytes
			jr.HeaderBytes, jr.WireOverheadRatio = &headers, &ratio
		}
		if jr.Drops == nil {
			jr.Drops = map[string]uint64{}
		}
		out.Results = append(out.Results, jr)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
