package simulations

import (
	"encoding/csv"
	"fmt"
	"image/color"
	"io"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
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
	p := plot.New()
	p.Title.Padding = vg.Points(8)
	p.Title.Text = fmt.Sprintf("hearsay delivery latency: %d nodes, links %v, fanout %d, interval %v, loss %s, peers %v",
		c.Nodes, c.Latency, c.Gossip.Fanout, c.Gossip.Interval, formatPercent(c.Loss), c.Peers)
	if c.Messages > 1 || c.Partition != nil || c.Churn != nil || c.Skew != nil {
		p.Title.Text += fmt.Sprintf("\n%d messages, partition %v, churn %v", c.Messages, c.Partition, c.Churn)
		if c.Skew != nil {
			p.Title.Text += fmt.Sprintf(", skew %v", c.Skew)
		}
	}
	p.X.Label.Text = "milliseconds since the publication"
	p.Y.Label.Text = "fraction of (message, node) pairs delivered"
	p.Y.Min, p.Y.Max = 0, 1.02
	p.X.Min = 0
	end := float64(max(durationMs(r.Virtual), 1))
	if n := len(d.CDF); n > 0 {
		end = max(end, float64(durationMs(d.CDF[n-1].Latency)))
	}
	p.X.Max = end
	p.Add(plotter.NewGrid())

	interval := float64(durationMs(c.Gossip.Interval))
	var marks []*plotter.Line
	if interval > 0 && end/interval <= maxRoundMarks {
		for x := interval; x <= end; x += interval {
			mark, err := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: p.Y.Max}})
			if err != nil {
				return err
			}
			mark.Color = color.RGBA{R: 170, G: 170, B: 170, A: 255}
			mark.Dashes = []vg.Length{vg.Points(2), vg.Points(3)}
			marks = append(marks, mark)
		}
	}
	for _, m := range marks {
		p.Add(m)
	}

	// A step per millisecond with deliveries, flat to the run's end.
	steps := plotter.XYs{{X: 0, Y: 0}}
	prev := 0.0
	for _, pt := range d.CDF {
		x := float64(durationMs(pt.Latency))
		steps = append(steps, plotter.XY{X: x, Y: prev}, plotter.XY{X: x, Y: pt.Fraction})
		prev = pt.Fraction
	}
	steps = append(steps, plotter.XY{X: end, Y: prev})
	line, err := plotter.NewLine(steps)
	if err != nil {
		return err
	}
	line.Color = color.RGBA{R: 20, G: 80, B: 200, A: 255}
	line.Width = vg.Points(2)
	p.Add(line)

	outcome := fmt.Sprintf("%.2f%% delivered", 100*prev)
	if d.Full >= 0 {
		outcome = fmt.Sprintf("all at %d ms", durationMs(d.Full))
	}
	p.Legend.Add(fmt.Sprintf("simulated: p50 %d ms, p90 %d ms, p99 %d ms, %s",
		durationMs(d.P50), durationMs(d.P90), durationMs(d.P99), outcome), line)
	if len(marks) > 0 {
		p.Legend.Add(fmt.Sprintf("round boundaries (every %v)", c.Gossip.Interval), marks[0])
	}
	// Top left is empty: a CDF starts at the bottom.
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(8), -vg.Points(8)

	wt, err := p.WriterTo(9*vg.Inch, 5.5*vg.Inch, "png")
	if err != nil {
		return err
	}
	_, err = wt.WriteTo(w)
	return err
}
