// Package exposition writes metrics in the Prometheus text exposition
// format (version 0.0.4): families with their HELP and TYPE lines,
// samples with labels, and a histogram with fixed buckets. It holds no
// registry: the node writes its counters as it reads them at scrape time.
//
// It stands in for github.com/prometheus/client_golang, whose protobuf
// dependency weighs some megabytes in the binary for a format the node
// does not serve.
package exposition

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"sync"
)

// ContentType is the HTTP Content-Type of the text format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Type is a metric family's type, as its TYPE line gives it.
type Type string

// The types of family this package writes.
const (
	TypeCounter   Type = "counter"
	TypeGauge     Type = "gauge"
	TypeHistogram Type = "histogram"
)

// Label is one label of a sample.
type Label struct{ Name, Value string }

// Writer accumulates families and their samples. Each family's samples must
// follow its Family call, before the next family's.
type Writer struct {
	buf bytes.Buffer
}

// Bytes is what was written so far.
func (w *Writer) Bytes() []byte { return w.buf.Bytes() }

// Write appends p, text already in the format (another library's
// samples); it never fails.
func (w *Writer) Write(p []byte) (int, error) { return w.buf.Write(p) }

// Family starts a family: its HELP and TYPE lines.
func (w *Writer) Family(name string, t Type, help string) {
	w.buf.WriteString("# HELP ")
	w.buf.WriteString(name)
	w.buf.WriteByte(' ')
	w.buf.WriteString(helpEscaper.Replace(help))
	w.buf.WriteString("\n# TYPE ")
	w.buf.WriteString(name)
	w.buf.WriteByte(' ')
	w.buf.WriteString(string(t))
	w.buf.WriteByte('\n')
}

// Sample writes a sample of a float value.
func (w *Writer) Sample(name string, value float64, labels ...Label) {
	w.sampleStart(name, labels)
	w.buf.WriteString(formatFloat(value))
	w.buf.WriteByte('\n')
}

// Uint writes a sample of an integer value, exactly (a float64 would round
// counters past 2⁵³).
func (w *Writer) Uint(name string, value uint64, labels ...Label) {
	w.sampleStart(name, labels)
	w.buf.WriteString(strconv.FormatUint(value, 10))
	w.buf.WriteByte('\n')
}

func (w *Writer) sampleStart(name string, labels []Label) {
	w.buf.WriteString(name)
	if len(labels) > 0 {
		w.buf.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				w.buf.WriteByte(',')
			}
			w.buf.WriteString(l.Name)
			w.buf.WriteString(`="`)
			w.buf.WriteString(labelEscaper.Replace(l.Value))
			w.buf.WriteByte('"')
		}
		w.buf.WriteByte('}')
	}
	w.buf.WriteByte(' ')
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// formatFloat writes v as the format wants it: Go's shortest form, and
// +Inf, -Inf and NaN spelt so.
func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// ExponentialBuckets returns n bucket upper bounds, the first start, each
// next one factor times the one before.
func ExponentialBuckets(start, factor float64, n int) []float64 {
	b := make([]float64, n)
	for i := range b {
		b[i] = start
		start *= factor
	}
	return b
}

// Histogram counts observations into buckets of fixed upper bounds. It is safe
// for concurrent use.
type Histogram struct {
	name, help string
	upper      []float64 // ascending; +Inf is implied

	mu     sync.Mutex
	counts []uint64 // per bucket, not cumulative; the last is +Inf's
	sum    float64
	count  uint64
}

// NewHistogram returns a histogram family named name with the given
// ascending bucket upper bounds.
func NewHistogram(name, help string, upper []float64) *Histogram {
	return &Histogram{name: name, help: help, upper: upper, counts: make([]uint64, len(upper)+1)}
}

// Observe counts v.
func (h *Histogram) Observe(v float64) {
	i := 0
	for i < len(h.upper) && v > h.upper[i] {
		i++
	}
	h.mu.Lock()
	h.counts[i]++
	h.sum += v
	h.count++
	h.mu.Unlock()
}

// WriteTo writes the histogram's family to w: its cumulative buckets, sum
// and count.
func (h *Histogram) WriteTo(w *Writer) {
	h.mu.Lock()
	counts := append([]uint64(nil), h.counts...)
	sum, count := h.sum, h.count
	h.mu.Unlock()

	w.Family(h.name, TypeHistogram, h.help)
	cumulative := uint64(0)
	for i, c := range counts {
		cumulative += c
		le := math.Inf(1)
		if i < len(h.upper) {
			le = h.upper[i]
		}
		w.Uint(h.name+"_bucket", cumulative, Label{"le", formatFloat(le)})
	}
	w.Sample(h.name+"_sum", sum)
	w.Uint(h.name+"_count", count)
}
