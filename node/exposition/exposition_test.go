package exposition

import (
	"math"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriterFormat(t *testing.T) {
	var w Writer
	w.Family("x_total", TypeCounter, "Things, by kind.\nSecond line with a \\.")
	w.Uint("x_total", 1<<60, Label{"kind", "a"})
	w.Uint("x_total", 0, Label{"kind", `q"uo\te` + "\n"}, Label{"side", "in"})
	w.Family("y", TypeGauge, "A level.")
	w.Sample("y", 0.25)
	w.Sample("y", math.Inf(1), Label{"at", "top"})
	w.Sample("y", math.Inf(-1), Label{"at", "bottom"})
	w.Sample("y", math.NaN(), Label{"at", "nowhere"})
	w.Sample("y", 12345678, Label{"at", "large"})
	assert.Equal(t, `# HELP x_total Things, by kind.\nSecond line with a \\.
# TYPE x_total counter
x_total{kind="a"} 1152921504606846976
x_total{kind="q\"uo\\te\n",side="in"} 0
# HELP y A level.
# TYPE y gauge
y 0.25
y{at="top"} +Inf
y{at="bottom"} -Inf
y{at="nowhere"} NaN
y{at="large"} 1.2345678e+07
`, string(w.Bytes()))

	// Prometheus' own parser reads it back as written.
	families := parse(t, string(w.Bytes()))
	require.Contains(t, families, "x_total")
	x := families["x_total"]
	assert.Equal(t, dto.MetricType_COUNTER, x.GetType())
	assert.Equal(t, "Things, by kind.\nSecond line with a \\.", x.GetHelp())
	require.Len(t, x.Metric, 2)
	assert.Equal(t, `q"uo\te`+"\n", x.Metric[1].Label[0].GetValue())
	assert.Equal(t, dto.MetricType_GAUGE, families["y"].GetType())
}

func TestHistogram(t *testing.T) {
	assert.Equal(t, []float64{1e-05, 4e-05, 0.00016}, ExponentialBuckets(10e-6, 4, 3))
	h := NewHistogram("tick_seconds", "Time in a tick.", []float64{0.1, 1, 10})
	for _, v := range []float64{0.05, 0.1, 0.5, 5, 50, 2} {
		h.Observe(v)
	}
	var w Writer
	h.WriteTo(&w)
	assert.Equal(t, `# HELP tick_seconds Time in a tick.
# TYPE tick_seconds histogram
tick_seconds_bucket{le="0.1"} 2
tick_seconds_bucket{le="1"} 3
tick_seconds_bucket{le="10"} 5
tick_seconds_bucket{le="+Inf"} 6
tick_seconds_sum 57.65
tick_seconds_count 6
`, string(w.Bytes()))

	hist := parse(t, string(w.Bytes()))["tick_seconds"]
	require.NotNil(t, hist)
	require.Equal(t, dto.MetricType_HISTOGRAM, hist.GetType())
	got := hist.Metric[0].GetHistogram()
	assert.Equal(t, uint64(6), got.GetSampleCount())
	assert.InDelta(t, 57.65, got.GetSampleSum(), 1e-9)
	require.Len(t, got.Bucket, 4)
	assert.Equal(t, uint64(5), got.Bucket[2].GetCumulativeCount())
	assert.True(t, math.IsInf(got.Bucket[3].GetUpperBound(), 1))
}

func TestHistogramConcurrentObservations(t *testing.T) {
	h := NewHistogram("h", "Concurrent.", []float64{1})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				h.Observe(0.5)
			}
		}()
	}
	wg.Wait()
	var w Writer
	h.WriteTo(&w)
	assert.Contains(t, string(w.Bytes()), "h_bucket{le=\"1\"} 8000\nh_bucket{le=\"+Inf\"} 8000\nh_sum 4000\nh_count 8000\n")
}

func TestEmptyHistogram(t *testing.T) {
	var w Writer
	NewHistogram("h", "Nothing yet.", ExponentialBuckets(1, 2, 2)).WriteTo(&w)
	assert.Contains(t, string(w.Bytes()), "h_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n")
	parse(t, string(w.Bytes()))
}

func parse(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(strings.NewReader(text))
	require.NoError(t, err, "Prometheus' parser:\n%s", text)
	return families
}
