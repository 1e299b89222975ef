//go:build bench

package bench

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	heraldenvtest "github.com/herald-dev/herald/internal/dev/testutil/envtest"
)

// TestRuleCost measures what the spec immutability rule costs the writes
// Herald makes, on one control plane, alternating: the rule as a CEL rule
// of the CRDs (`self == oldSelf` on spec, evaluated on every write of the
// object, status writes included), and as the ValidatingAdmissionPolicy of
// config/crd/policies alone (evaluated on main-resource updates only).
//
//	KUBEBUILDER_ASSETS=$PWD/bin/k8s go test -tags bench -run TestRuleCost -v ./bench/
func TestRuleCost(t *testing.T) {
	h := writeCostHarness(t)
	if err := apiextensionsv1.AddToScheme(h.env.Scheme); err != nil {
		t.Fatal(err)
	}
	n := envInt("HERALD_BENCH_BOUND_N", 1000)
	rounds := envInt("HERALD_BENCH_ROUNDS", 3)
	keys := []string{"notifications POST", "notifications/status PATCH", "channeldeliveries POST", "channeldeliveries/status PATCH"}
	rates := map[string]map[string][]float64{}
	seq := 0
	for round := 0; round < rounds; round++ {
		for _, withRule := range []bool{false, true} {
			h.setSpecRule(withRule)
			variant := "policy only"
			if withRule {
				variant = "CRD rule"
			}
			seq++
			costs := h.writeCostsIn(h.namespace(fmt.Sprintf("rules-%d", seq)), n)
			if rates[variant] == nil {
				rates[variant] = map[string][]float64{}
			}
			for _, k := range keys {
				rates[variant][k] = append(rates[variant][k], float64(time.Second)/float64(costs[k]))
			}
		}
	}
	for _, k := range keys {
		for _, variant := range []string{"policy only", "CRD rule"} {
			var s []string
			for _, r := range rates[variant][k] {
				s = append(s, fmt.Sprintf("%.0f", r))
			}
			t.Logf("%-32s %-12s %s /s", k, variant, strings.Join(s, ", "))
		}
	}
}

// setSpecRule adds or removes the `self == oldSelf` rule on the spec of the
// Notification and ChannelDelivery CRDs and waits until kube-apiserver
// applies the change.
func (h *harness) setSpecRule(on bool) {
	ctx := context.Background()
	for _, name := range []string{"notifications.notify.herald.dev", "channeldeliveries.notify.herald.dev"} {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := h.c.Get(ctx, client.ObjectKey{Name: name}, &crd); err != nil {
			h.t.Fatal(err)
		}
		v := &crd.Spec.Versions[0]
		spec := v.Schema.OpenAPIV3Schema.Properties["spec"]
		spec.XValidations = nil
		if on {
			spec.XValidations = apiextensionsv1.ValidationRules{{Rule: "self == oldSelf", Message: "spec is immutable"}}
		}
		v.Schema.OpenAPIV3Schema.Properties["spec"] = spec
		if err := h.c.Update(ctx, &crd); err != nil {
			h.t.Fatal(err)
		}
	}
	// A probe: with the CRD rule, schema validation refuses a spec change
	// before admission; without it, only the policy does.
	ns := h.namespace(fmt.Sprintf("probe-%d", time.Now().UnixNano()))
	probe := h.notification(ns, "probe", notifyv1.ChannelInApp, notifyv1.Audience{Users: []string{"r0"}})
	if err := h.c.Create(ctx, probe); err != nil {
		h.t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		var n notifyv1.Notification
		if err := h.c.Get(ctx, client.ObjectKeyFromObject(probe), &n); err != nil {
			return false, err
		}
		n.Spec.Message = "changed"
		err := h.c.Update(ctx, &n, client.DryRunAll)
		if err == nil {
			return false, nil
		}
		byPolicy := strings.Contains(err.Error(), "ValidatingAdmissionPolicy")
		return byPolicy != on, nil
	}); err != nil {
		h.t.Fatalf("the CRD rule was not %v in time", map[bool]string{true: "applied", false: "removed"}[on])
	}
}

// writeCostHarness starts a control plane of its own for a write-cost
// measurement, with no controller and no client-side rate limit, and stops
// it when the test ends.
func writeCostHarness(t *testing.T) *harness {
	ctrllog.SetLogger(logr.Discard())
	h := &harness{t: t, report: newReport()}
	env, err := heraldenvtest.New()
	if err != nil {
		t.Fatal(err)
	}
	h.env = env
	cfg, err := heraldenvtest.Start(env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	cfg.QPS, cfg.Burst = -1, 0
	h.cfg = cfg
	if h.c, err = client.New(cfg, client.Options{Scheme: env.Scheme}); err != nil {
		t.Fatal(err)
	}
	return h
}
