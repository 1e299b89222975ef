// Package promrules checks Herald's Prometheus alerts and Grafana
// dashboard (config/prometheus) with Prometheus's own parsers: the rules
// must load as Prometheus would load them, and every query of both may use
// only the metrics docs/metrics.md lists. It is a module of its own so
// that Prometheus's dependencies stay out of Herald's go.mod and binaries;
// `make test` runs it.
package promrules

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

var root = filepath.Join("..", "..", "..")

// promql parses queries as Prometheus does by default.
var promql = parser.NewParser(parser.Options{})

// documentedMetrics are the metric names docs/metrics.md names in
// backquotes.
func documentedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range regexp.MustCompile("`((?:herald|workqueue|controller_runtime|rest_client)_[a-z_]+)`").FindAllStringSubmatch(string(data), -1) {
		out[m[1]] = true
	}
	if len(out) < 10 {
		t.Fatalf("only %d metrics found in docs/metrics.md: %v", len(out), out)
	}
	return out
}

// metricsOf returns the metric names expr selects, histogram series
// (_bucket, _sum, _count) under their histogram's name.
func metricsOf(t *testing.T, expr string) []string {
	t.Helper()
	// Grafana's variables are not PromQL.
	expr = strings.ReplaceAll(expr, "$__rate_interval", "5m")
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Errorf("query does not parse: %v\n%s", err, expr)
		return nil
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				name = strings.TrimSuffix(name, suffix)
			}
			if name == "" {
				t.Errorf("a selector without a metric name: %s", vs)
			}
			names = append(names, name)
		}
		return nil
	})
	return names
}

func checkMetrics(t *testing.T, where, expr string, known map[string]bool) {
	t.Helper()
	for _, name := range metricsOf(t, expr) {
		if !known[name] {
			t.Errorf("%s uses %s, which docs/metrics.md does not list", where, name)
		}
	}
}

func TestAlertRules(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "config", "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rule struct {
		Kind string          `json:"kind"`
		Spec json.RawMessage `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &rule); err != nil {
		t.Fatal(err)
	}
	if rule.Kind != "PrometheusRule" {
		t.Fatalf("kind %q, want PrometheusRule", rule.Kind)
	}
	// The PrometheusRule's spec is a Prometheus rule file.
	spec, err := yaml.JSONToYAML(rule.Spec)
	if err != nil {
		t.Fatal(err)
	}
	groups, errs := rulefmt.Parse(spec, false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("rule file: %v", err)
	}
	if groups == nil {
		t.Fatal("no rule groups")
	}
	known := documentedMetrics(t)
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts = append(alerts, r.Alert)
			checkMetrics(t, "alert "+r.Alert, r.Expr, known)
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s needs a severity label, a summary and a description", r.Alert)
			}
		}
	}
	sort.Strings(alerts)
	want := []string{"HeraldDeliveriesOverdue", "HeraldDeliveryFailureRateHigh", "HeraldNotificationStuckDispatching",
		"HeraldProviderFailureRateHigh", "HeraldProviderNotReady", "HeraldProviderTripped"}
	if strings.Join(alerts, ",") != strings.Join(want, ",") {
		t.Errorf("alerts %v, want %v", alerts, want)
	}
}

func TestDashboard(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "config", "prometheus", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	known := documentedMetrics(t)
	queries := 0
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries++
			checkMetrics(t, "panel "+p.Title, tg.Expr, known)
		}
	}
	if queries < 10 {
		t.Errorf("only %d queries in the dashboard", queries)
	}
}

// TestCheckerCatches shows that the metric check fails on a metric that
// does not exist and on a query that does not parse.
func TestCheckerCatches(t *testing.T) {
	known := map[string]bool{"herald_deliveries_total": true}
	if got := metricsOf(t, `rate(herald_delivery_latency_seconds_bucket[5m]) + herald_deliveries_total`); strings.Join(got, ",") != "herald_delivery_latency_seconds,herald_deliveries_total" {
		t.Errorf("metricsOf = %v", got)
	}
	if got := metricsOf(t, `herald_no_such_metric`); known[got[0]] {
		t.Errorf("an unknown metric passed the check: %v", got)
	}
	if _, err := promql.ParseExpr(`sum(`); err == nil {
		t.Error("a broken query parsed")
	}
}
