package metrics

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
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
	for _, c := range []prometheus.Collector{DeliveriesTotal, AttemptDuration, DeliveryLatency, Retries, RateLimitWaits,
		NotificationsFinished, ProviderAttempts, deliveryPhases, health} {
		ch := make(chan *prometheus.Desc, 16)
		c.Describe(ch)
		close(ch)
		for d := range ch {
			served[fqName.FindStringSubmatch(d.String())[1]] = true
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
