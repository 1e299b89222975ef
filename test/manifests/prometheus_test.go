package manifests

import (
	"path/filepath"
	"testing"

	heraldenvtest "github.com/herald-dev/herald/internal/dev/testutil/envtest"
)

// TestPrometheusRenders checks that `kubectl apply -k config/prometheus`
// installs the scrape config and the alerts together. The rules
// themselves are checked by hack/tools/promrules (make test-alerts).
func TestPrometheusRenders(t *testing.T) {
	root, err := heraldenvtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	objs := render(t, filepath.Join(root, "config", "prometheus"))
	for _, want := range [][2]string{{"ServiceMonitor", "herald-controller"}, {"PodMonitor", "herald-receiver"}, {"PrometheusRule", "herald"}} {
		o := find(objs, want[0], want[1])
		if o == nil {
			t.Errorf("config/prometheus has no %s %s", want[0], want[1])
			continue
		}
		if o.GetNamespace() != "herald-system" {
			t.Errorf("%s %s in namespace %q, want herald-system", want[0], want[1], o.GetNamespace())
		}
	}
}
