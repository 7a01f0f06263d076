package node

import (
	"io"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/node/exposition"
)

// scrape reads srv's /metrics with Prometheus' own parser.
func scrape(t *testing.T, url string) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, exposition.ContentType, resp.Header.Get("Content-Type"))
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	require.NoError(t, err, "Prometheus' parser reads /metrics")
	return families, string(body)
}

// /metrics is well-formed text exposition, its families typed as their
// names say, with the runtime's and process's metrics only when asked.
func TestMetricsExposition(t *testing.T) {
	cluster := startCluster(t, 2, nil)
	_, _ = post(t, apiServer(t, cluster[0], APIConfig{}).URL, "m.a", "x")

	families, text := scrape(t, apiServer(t, cluster[0], APIConfig{ProcessMetrics: true}).URL)
	hearsay := 0
	for name, f := range families {
		if !strings.HasPrefix(name, "hearsay_") {
			continue
		}
		hearsay++
		assert.NotEmpty(t, f.GetHelp(), name)
		switch {
		case name == "hearsay_round_duration_seconds":
			assert.Equal(t, dto.MetricType_HISTOGRAM, f.GetType(), name)
			h := f.Metric[0].GetHistogram()
			assert.Len(t, h.Bucket, 11, "ten bounds and +Inf")
			assert.Equal(t, 1e-05, h.Bucket[0].GetUpperBound())
		case strings.HasSuffix(name, "_total"):
			assert.Equal(t, dto.MetricType_COUNTER, f.GetType(), name)
		default:
			assert.Equal(t, dto.MetricType_GAUGE, f.GetType(), name)
		}
	}
	assert.Equal(t, 48, hearsay, "the families docs/api.md lists")
	assert.Contains(t, text, "hearsay_messages_published_total 1\n")
	assert.Contains(t, text, `hearsay_datagrams_total{direction="out"} `)
	for _, name := range []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "process_cpu_seconds_total",
		"process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"} {
		assert.Contains(t, families, name)
	}

	families, _ = scrape(t, apiServer(t, cluster[1], APIConfig{}).URL)
	assert.Contains(t, families, "hearsay_peers")
	assert.NotContains(t, families, "go_goroutines", "without ProcessMetrics")
}
