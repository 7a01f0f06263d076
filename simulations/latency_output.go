package simulations

import (
	"encoding/csv"
	"fmt"
	"image/color"
	"io"
	"strconv"
	"time"

	"github.com/hearsay-io/hearsay/simulations/chart"
)

// The delivery latency's outputs: its figures in summary.json, its CDF as
// CSV and as a chart.

// LatencyCSVHeader is the first line of WriteLatencyCSV's output.
var LatencyCSVHeader = []string{"latency_ms", "deliveries", "fraction_delivered"}

// LatencyPercentiles are DeliveryLatency's percentiles in milliseconds, as
// summary.json gives them.
type LatencyPercentiles struct {
	P50 int64 `json:"p50"`
	P90 int64 `json:"p90"`
	P99 int64 `json:"p99"`
	Max int64 `json:"max"`
}

func (d *DeliveryLatency) percentiles() LatencyPercentiles {
	return LatencyPercentiles{P50: durationMs(d.P50), P90: durationMs(d.P90), P99: durationMs(d.P99), Max: durationMs(d.Max)}
}

// durationMs is d in whole milliseconds, -1 for a negative d (never).
func durationMs(d time.Duration) int64 {
	if d < 0 {
		return -1
	}
	return int64(d / time.Millisecond)
}

// WriteLatencyCSV writes the points of the delivery latency's CDF, one
// line per millisecond at which deliveries happened, under
// LatencyCSVHeader. Like WriteCSV, the same Config gives the same bytes.
func (r *Report) WriteLatencyCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(LatencyCSVHeader); err != nil {
		return err
	}
	for _, p := range r.DeliveryLatency.CDF {
		err := cw.Write([]string{
			strconv.FormatInt(durationMs(p.Latency), 10),
			strconv.Itoa(p.Deliveries),
			strconv.FormatFloat(p.Fraction, 'f', 6, 64),
		})
		if err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// maxRoundMarks bounds the round boundaries the latency chart marks: past
// it they would blot out the curve.
const maxRoundMarks = 60

// WriteLatencyChart draws, as a PNG, the delivery latency's CDF: the
// fraction of (message, node) pairs delivered against the milliseconds
// since the publication, until the run's end, with the round boundaries
// marked.
func (r *Report) WriteLatencyChart(w io.Writer) error {
	c := r.Config
	d := &r.DeliveryLatency
	title := fmt.Sprintf("hearsay delivery latency: %d nodes, links %v, fanout %d, interval %v, loss %s, peers %v",
		c.Nodes, c.Latency, c.Gossip.Fanout, c.Gossip.Interval, formatPercent(c.Loss), c.Peers)
	if c.Messages > 1 || c.Partition != nil || c.Churn != nil || c.Skew != nil {
		title += fmt.Sprintf("\n%d messages, partition %v, churn %v", c.Messages, c.Partition, c.Churn)
		if c.Skew != nil {
			title += fmt.Sprintf(", skew %v", c.Skew)
		}
	}
	end := float64(max(durationMs(r.Virtual), 1))
	if n := len(d.CDF); n > 0 {
		end = max(end, float64(durationMs(d.CDF[n-1].Latency)))
	}
	const top = 1.02
	var series []chart.Series
	interval := float64(durationMs(c.Gossip.Interval))
	if interval > 0 && end/interval <= maxRoundMarks {
		for x := interval; x <= end; x += interval {
			mark := chart.Series{Points: []chart.Point{{X: x, Y: 0}, {X: x, Y: top}},
				Color: color.RGBA{R: 170, G: 170, B: 170, A: 255}, Width: pt, Dashes: []float64{2 * pt, 3 * pt}}
			if len(series) == 0 {
				mark.Label = fmt.Sprintf("round boundaries (every %v)", c.Gossip.Interval)
			}
			series = append(series, mark)
		}
	}

	// A step per millisecond with deliveries, flat to the run's end.
	steps := []chart.Point{{X: 0, Y: 0}}
	prev := 0.0
	for _, p := range d.CDF {
		x := float64(durationMs(p.Latency))
		steps = append(steps, chart.Point{X: x, Y: prev}, chart.Point{X: x, Y: p.Fraction})
		prev = p.Fraction
	}
	steps = append(steps, chart.Point{X: end, Y: prev})
	outcome := fmt.Sprintf("%.2f%% delivered", 100*prev)
	if d.Full >= 0 {
		outcome = fmt.Sprintf("all at %d ms", durationMs(d.Full))
	}
	// Drawn last, the curve is on top of the marks and first in the legend.
	curve := chart.Series{Label: fmt.Sprintf("simulated: p50 %d ms, p90 %d ms, p99 %d ms, %s",
		durationMs(d.P50), durationMs(d.P90), durationMs(d.P99), outcome),
		Points: steps, Color: simulatedColor, Width: 2 * pt}
	ch := chart.Chart{
		Title: title, Width: chartWidth, Height: chartHeight,
		X:      chart.Axis{Label: "milliseconds since the publication", Min: 0, Max: end},
		Y:      chart.Axis{Label: "fraction of (message, node) pairs delivered", Min: 0, Max: top},
		Series: append(series, curve),
	}
	return ch.WritePNG(w)
}
