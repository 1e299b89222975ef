package metrics

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// TestDocumentedMetricsExist checks docs/metrics.md against the metrics
// registered here, both ways: the alerts and the dashboard
// (config/prometheus, checked by hack/tools/promrules) may use only
// documented metrics, so documented must mean served.
func TestDocumentedMetricsExist(t *testing.T) {
	data, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("`(herald_[a-z_]+)`").FindAllStringSubmatch(string(data), -1) {
		documented[m[1]] = true
	}
	served := map[string]bool{}
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	// Everything registered in controller-runtime's registry, which the
	// controller serves; this package registers there at init.
	registry, ok := crmetrics.Registry.(prometheus.Collector)
	if !ok {
		t.Fatal("controller-runtime's registry cannot be described")
	}
	ch := make(chan *prometheus.Desc)
	go func() {
		registry.Describe(ch)
		close(ch)
	}()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil && strings.HasPrefix(m[1], "herald_") {
			served[m[1]] = true
		}
	}
	var missing, undocumented []string
	for m := range documented {
		if !served[m] {
			missing = append(missing, m)
		}
	}
	for m := range served {
		if !documented[m] {
			undocumented = append(undocumented, m)
		}
	}
	sort.Strings(missing)
	sort.Strings(undocumented)
	if len(missing) > 0 {
		t.Errorf("docs/metrics.md lists metrics that are not served: %s", strings.Join(missing, ", "))
	}
	if len(undocumented) > 0 {
		t.Errorf("metrics served but not in docs/metrics.md: %s", strings.Join(undocumented, ", "))
	}
}
