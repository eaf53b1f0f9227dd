package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/productsmanager/exportplatform/pkg/auth"
)

// TestMetricsNamedByRules: every metric that an alerting rule or a dashboard query of
// deployments/observability names is on the /metrics of a running service (a histogram's
// _bucket, _sum and _count are its own name's). A rule or panel naming a metric that no service
// exposes would never fire, or stay empty, without anyone noticing.
//
// Labelled series appear once observed (or pre-set at 0): one export makes the job, attempt
// and audit counters appear, a small stream the stream counters, and a WebSocket refused for
// want of a token the hub's refusals.
func TestMetricsNamedByRules(t *testing.T) {
	s := getStack(t)
	named := observabilityMetrics(t, filepath.Join(s.root, "deployments", "observability"))
	if len(named) < 20 {
		t.Fatalf("only %d metrics named by the rules and the dashboard: parsing them failed", len(named))
	}

	job := s.requestCSV(t, s.writer(t))
	s.waitStatus(t, job.JobID, "completed", 2*time.Minute)
	if code, body := s.do(t, http.MethodGet, "/api/v1/exports/stream/csv/products?fields=sku&search=-0001",
		s.token(t, "e2e-writer", auth.PermReadExports), nil); code != http.StatusOK {
		t.Fatalf("stream = %d %s", code, body)
	}
	resp, err := http.Get(strings.TrimSuffix(env("HUB_URL", "http://127.0.0.1:8081"), "/") + "/api/v1/exports/ws")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the hub's WebSocket without a token = %d, want 401", resp.StatusCode)
	}

	services := map[string]string{
		"producer-api": env("API_ADDR", "127.0.0.1:8080"),
		"progress-hub": env("HUB_ADDR", "127.0.0.1:8081"),
		"exporter":     env("EXPORTER_ADDR", "127.0.0.1:8082"),
		"scheduler":    env("SCHEDULER_ADDR", "127.0.0.1:8083"),
		"audit-sink":   env("AUDIT_ADDR", "127.0.0.1:8084"),
	}
	// The audit sink and the hub count events as they consume them: poll until every name is
	// there (and every service answers) or the deadline passes.
	var missing []string
	var unreachable error
	deadline := time.Now().Add(30 * time.Second)
	for {
		exposed := map[string]string{}
		unreachable = nil
		for svc, addr := range services {
			got, err := exposedMetrics(svc, addr)
			if err != nil {
				unreachable = err
			}
			for name, typ := range got {
				exposed[name] = typ
			}
		}
		missing = missing[:0]
		for name, where := range named {
			if !isExposed(exposed, name) {
				missing = append(missing, fmt.Sprintf("%s (named by %s)", name, strings.Join(where, ", ")))
			}
		}
		if len(missing) == 0 && unreachable == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if unreachable != nil {
		t.Error(unreachable)
	}
	slices.Sort(missing)
	for _, m := range missing {
		t.Errorf("no service exposes %s", m)
	}
	t.Logf("%d metrics named by the rules and the dashboard, %d not exposed", len(named), len(missing))
}

// observabilityMetrics reads the rules and the dashboard of dir and returns each metric they
// name with where (alert, recording rule or panel).
func observabilityMetrics(t *testing.T, dir string) map[string][]string {
	t.Helper()
	named := map[string][]string{}
	add := func(where, expr string) {
		names := promqlMetricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s names no metric: %q", where, expr)
		}
		for _, n := range names {
			if !slices.Contains(named[n], where) {
				named[n] = append(named[n], where)
			}
		}
	}

	raw, err := os.ReadFile(filepath.Join(dir, "rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert, Record, Expr string
			}
		}
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("rules.yml: %v", err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			add("rule "+r.Alert+r.Record, r.Expr)
		}
	}

	raw, err = os.ReadFile(filepath.Join(dir, "export-platform.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
			Panels  []struct { // a collapsed row holds its panels
				Title   string
				Targets []struct{ Expr string }
			}
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("export-platform.json: %v", err)
	}
	for _, p := range dash.Panels {
		for _, q := range p.Targets {
			add("panel "+p.Title, q.Expr)
		}
		for _, sub := range p.Panels {
			for _, q := range sub.Targets {
				add("panel "+sub.Title, q.Expr)
			}
		}
	}
	return named
}

// exposedMetrics reads a service's /metrics: each metric family's name and type.
func exposedMetrics(svc, addr string) (map[string]string, error) {
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	resp, err := cl.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("%s /metrics: %w", svc, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s /metrics = %d", svc, resp.StatusCode)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		// "# TYPE name type", one per family, whether or not it has samples yet.
		if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = f[3]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s /metrics: %w", svc, err)
	}
	return out, nil
}

// isExposed says whether name is a family of exposed, or a histogram's (or summary's) series.
func isExposed(exposed map[string]string, name string) bool {
	if _, ok := exposed[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			typ := exposed[base]
			return typ == "histogram" || typ == "summary" && suffix != "_bucket"
		}
	}
	return false
}

var (
	promqlStrings = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	// Grafana's variables ($__rate_interval, ${DS}): not PromQL.
	promqlVariables = regexp.MustCompile(`\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*`)
	// Label matchers, range and subquery brackets, and label lists of grouping clauses.
	promqlMatchers = regexp.MustCompile(`\{[^{}]*\}|\[[^\[\]]*\]`)
	promqlGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	// A number (with a duration unit, in an offset) is one token, so that 1e3 holds no
	// identifier; an identifier followed by "(" is a function or an aggregation.
	promqlTokens   = regexp.MustCompile(`(?:0[xX][0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)[a-zA-Z0-9_]*|([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?`)
	promqlKeywords = []string{"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
		"bool", "offset", "inf", "nan", "atan2"}
)

// promqlMetricNames returns the metric names a PromQL expression selects, in order of first
// appearance: the identifiers left once strings, variables, label matchers, ranges and
// grouping labels are removed, that are neither keywords nor called as functions.
func promqlMetricNames(expr string) []string {
	expr = promqlStrings.ReplaceAllString(expr, " ")
	expr = promqlVariables.ReplaceAllString(expr, " ")
	expr = promqlMatchers.ReplaceAllString(expr, " ")
	expr = promqlGrouping.ReplaceAllString(expr, " ")
	var names []string
	for _, m := range promqlTokens.FindAllStringSubmatch(expr, -1) {
		id, call := m[1], m[2] != ""
		if id == "" || call || slices.Contains(promqlKeywords, strings.ToLower(id)) || slices.Contains(names, id) {
			continue
		}
		names = append(names, id)
	}
	return names
}

// TestPromQLMetricNames: the parser behind TestMetricsNamedByRules finds the selected metrics
// and nothing else (no function, label, keyword, number or Grafana variable).
func TestPromQLMetricNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		expr string
		want []string
	}{
		{"plain", "max(outbox_oldest_age_seconds) > 60", []string{"outbox_oldest_age_seconds"}},
		{"matchers and grouping", `sum by (group, topic) (max by (group, topic, partition) (kafka_consumer_lag{group="exporter", topic=~"a|b"})) > 500`,
			[]string{"kafka_consumer_lag"}},
		{"histogram over a Grafana range", `histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket[$__rate_interval])))`,
			[]string{"http_request_duration_seconds_bucket"}},
		{"ratio with and", "(sum(increase(a_total{x=\"1\"}[15m])) / sum(increase(b_total[15m]))) > 0.1\nand\nsum(increase(a_total[15m])) >= 3",
			[]string{"a_total", "b_total"}},
		{"vector matching", `x_total / on (instance) group_left (version) build_info * 1e3 offset 5m`, []string{"x_total", "build_info"}},
		{"bool and numbers", `up == bool 1 unless absent(z_seconds) or 0x1F > Inf`, []string{"up", "z_seconds"}},
		{"strings are not metrics", `label_replace(m_total, "dst", "$1", "src", "(not_a_metric).*")`, []string{"m_total"}},
		{"colons and a variable", `job:rate5m:sum{job="$job"} > ${threshold}`, []string{"job:rate5m:sum"}},
		{"subquery", `max_over_time(rate(c_total[5m])[1h:1m])`, []string{"c_total"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := promqlMetricNames(tt.expr); !slices.Equal(got, tt.want) {
				t.Errorf("promqlMetricNames(%q) = %q, want %q", tt.expr, got, tt.want)
			}
		})
	}
}

// TestIsExposed: a histogram's or summary's series are its family's; a counter's are not.
func TestIsExposed(t *testing.T) {
	t.Parallel()
	exposed := map[string]string{"h_seconds": "histogram", "s_seconds": "summary", "c_total": "counter", "g": "gauge"}
	for name, want := range map[string]bool{
		"h_seconds_bucket": true, "h_seconds_sum": true, "h_seconds_count": true, "h_seconds": true,
		"s_seconds_sum": true, "s_seconds_bucket": false, "c_total": true, "c_total_count": false,
		"g": true, "missing_total": false, "g_sum": false,
	} {
		if got := isExposed(exposed, name); got != want {
			t.Errorf("isExposed(%q) = %v, want %v", name, got, want)
		}
	}
}
