package deploy

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dashboardQueries returns every PromQL expression of the dashboard, and
// the template variables' queries.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("grafana", "hearsay.json"))
	require.NoError(t, err)
	var dash struct {
		Title  string
		Panels []struct {
			ID      int
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct {
				Name  string
				Type  string
				Query any
			}
		}
	}
	require.NoError(t, json.Unmarshal(b, &dash), "grafana/hearsay.json")
	require.NotEmpty(t, dash.Title)
	var exprs []string
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		require.False(t, ids[p.ID], "panel %q: a second panel with id %d", p.Title, p.ID)
		ids[p.ID] = true
		require.NotEmpty(t, p.Targets, "panel %q queries nothing", p.Title)
		for _, target := range p.Targets {
			require.NotEmpty(t, target.Expr, "panel %q", p.Title)
			exprs = append(exprs, target.Expr)
		}
	}
	variables := map[string]bool{}
	for _, v := range dash.Templating.List {
		variables[v.Name] = true
		if q, ok := v.Query.(map[string]any); ok && v.Type == "query" {
			exprs = append(exprs, q["query"].(string))
		}
	}
	// Every $variable a query uses is defined (Grafana's own begin with $__).
	for _, expr := range exprs {
		for _, m := range variableRE.FindAllStringSubmatch(expr, -1) {
			assert.True(t, strings.HasPrefix(m[1], "__") || variables[m[1]], "%q uses $%s, which the dashboard does not define", expr, m[1])
		}
	}
	require.True(t, variables["datasource"], "the dashboard asks for its data source")
	return exprs
}

var (
	// A sample line of the Prometheus text format: name, labels.
	sampleLineRE = regexp.MustCompile(`^(hearsay_\w+)(?:\{(.*)\})? `)
	labelPairRE  = regexp.MustCompile(`(\w+)="([^"]*)"`)
	// In PromQL: a metric name, its selector, and grouping clauses.
	metricRefRE = regexp.MustCompile(`\b(hearsay_\w+)(?:\{([^}]*)\})?`)
	matcherRE   = regexp.MustCompile(`(\w+)\s*(=~|!=|!~|=)\s*"([^"]*)"`)
	groupingRE  = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	variableRE  = regexp.MustCompile(`\$\{?(\w+)`)
)

// Labels Prometheus adds to every scraped series, and le, the buckets'.
var scrapeLabels = map[string]bool{"instance": true, "job": true, "le": true}

// Every metric the dashboard queries is exported by a running agent, with
// the labels the queries group or filter by, and the label values they
// match exactly.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	exprs := dashboardQueries(t)
	status, body := httpGet(t, startAgent(t)+"/metrics")
	require.Equal(t, http.StatusOK, status)

	labels := map[string]map[string]map[string]bool{} // metric, label, values
	for _, line := range strings.Split(body, "\n") {
		m := sampleLineRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if labels[m[1]] == nil {
			labels[m[1]] = map[string]map[string]bool{}
		}
		for _, l := range labelPairRE.FindAllStringSubmatch(m[2], -1) {
			if labels[m[1]][l[1]] == nil {
				labels[m[1]][l[1]] = map[string]bool{}
			}
			labels[m[1]][l[1]][l[2]] = true
		}
	}
	require.Contains(t, labels, "hearsay_peers", "the agent's /metrics as this test reads it")

	queried := 0
	for _, expr := range exprs {
		refs := metricRefRE.FindAllStringSubmatch(expr, -1)
		require.NotEmpty(t, refs, "%q queries no hearsay metric", expr)
		var grouped []string
		for _, g := range groupingRE.FindAllStringSubmatch(expr, -1) {
			for _, l := range strings.Split(g[1], ",") {
				grouped = append(grouped, strings.TrimSpace(l))
			}
		}
		for _, ref := range refs {
			queried++
			name := ref[1]
			have, ok := labels[name]
			if !assert.True(t, ok, "%q queries %s, which the agent does not export", expr, name) {
				continue
			}
			for _, l := range grouped {
				assert.True(t, scrapeLabels[l] || have[l] != nil, "%q groups by %s, a label %s does not have", expr, l, name)
			}
			for _, m := range matcherRE.FindAllStringSubmatch(ref[2], -1) {
				label, op, value := m[1], m[2], m[3]
				if scrapeLabels[label] {
					continue
				}
				if assert.True(t, have[label] != nil, "%q matches %s on %s, a label it does not have", expr, name, label) &&
					(op == "=" || op == "!=") {
					assert.True(t, have[label][value], "%q: %s has no %s=%q", expr, name, label, value)
				}
			}
		}
	}
	assert.Greater(t, queried, 20, "the dashboard's queries as this test reads them")
}
