package manifests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	heraldcontrollers "github.com/herald-dev/herald/controllers"
	heraldenvtest "github.com/herald-dev/herald/internal/dev/testutil/envtest"
)

// chartValueSets are the --set values that change what the chart renders,
// as the Makefile's test-chart lints them.
var chartValueSets = []string{
	"",
	"certManager.enabled=true,metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true,receiver.ingress.enabled=true,receiver.ingress.host=hooks.example.com,receiver.ingress.tlsSecretName=hooks-tls",
	"inbox.enabled=false,crd.enable=false,receiver.enabled=false",
	"controller.shards[0].name=a,controller.shards[1].name=b,controller.shards[1].replicas=1,controller.shards[1].extraArgs={--workers=20},metrics.serviceMonitor.enabled=true",
}

// helm returns the helm binary: $HERALD_HELM (the Makefile sets it), else
// bin/helm, which `make helm` builds from the Go module proxy.
func helm(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("HERALD_HELM")
	if bin == "" {
		root, err := heraldenvtest.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		bin = filepath.Join(root, "bin", "helm")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s not found: run 'make helm' first", bin)
	}
	return bin
}

// renderChart runs `helm template` on dist/chart into namespace
// herald-system with the comma-separated values set (may be empty).
func renderChart(t *testing.T, set string, more ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := helmTemplate(t, set, more...)
	if err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("helm template output: %v", err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	return objs
}

// helmTemplate runs `helm template` as renderChart does and returns its
// output, or an error with helm's message.
func helmTemplate(t *testing.T, set string, more ...string) ([]byte, error) {
	t.Helper()
	root, err := heraldenvtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"template", "herald", filepath.Join(root, "dist", "chart"), "--namespace", namespace}
	if set != "" {
		args = append(args, "--set", set)
	}
	args = append(args, more...)
	var stderr bytes.Buffer
	cmd := exec.Command(helm(t), args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

type objectKey struct{ kind, namespace, name string }

func keys(objs []*unstructured.Unstructured) []objectKey {
	var ks []objectKey
	for _, o := range objs {
		ks = append(ks, objectKey{o.GetKind(), o.GetNamespace(), o.GetName()})
	}
	slices.SortFunc(ks, func(a, b objectKey) int {
		return strings.Compare(a.kind+"/"+a.namespace+"/"+a.name, b.kind+"/"+b.namespace+"/"+b.name)
	})
	return ks
}

// TestChartMatchesDefault keeps the two install paths the same install:
// the chart with its defaults renders the objects config/default renders
// (but the Namespace, which `helm install --create-namespace` makes), with
// the same RBAC rules and the same controller arguments.
func TestChartMatchesDefault(t *testing.T) {
	root, err := heraldenvtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var def []*unstructured.Unstructured
	for _, o := range render(t, filepath.Join(root, "config", "default")) {
		if o.GetKind() != "Namespace" {
			def = append(def, o)
		}
	}
	chart := renderChart(t, "", "--set", "image.tag=latest")
	if got, want := keys(chart), keys(def); !slices.Equal(got, want) {
		t.Errorf("the chart renders\n%v\nconfig/default renders\n%v", got, want)
	}

	for _, kind := range []string{"ClusterRole", "Role"} {
		for _, d := range def {
			if d.GetKind() != kind {
				continue
			}
			c := find(chart, kind, d.GetName())
			if c == nil {
				continue // reported above
			}
			var dr, cr rbacv1.ClusterRole
			mustConvert(t, d, &dr)
			mustConvert(t, c, &cr)
			if !reflect.DeepEqual(dr.Rules, cr.Rules) {
				t.Errorf("%s %s: the chart's rules differ from config/'s:\n%+v\n%+v", kind, d.GetName(), cr.Rules, dr.Rules)
			}
		}
	}
	for _, name := range []string{"herald-controller", "herald-inbox", "herald-receiver"} {
		var dd, cd appsv1.Deployment
		mustConvert(t, find(def, "Deployment", name), &dd)
		mustConvert(t, find(chart, "Deployment", name), &cd)
		dc, cc := dd.Spec.Template.Spec.Containers[0], cd.Spec.Template.Spec.Containers[0]
		if dc.Image != cc.Image {
			t.Errorf("%s image: chart %q, config/default %q", name, cc.Image, dc.Image)
		}
		for _, a := range dc.Args {
			if !slices.Contains(cc.Args, a) {
				t.Errorf("%s: the chart's args %q lack config/default's %s", name, cc.Args, a)
			}
		}
		if !reflect.DeepEqual(dc.Resources, cc.Resources) || !reflect.DeepEqual(dc.SecurityContext, cc.SecurityContext) {
			t.Errorf("%s: resources or securityContext differ between the chart and config/default", name)
		}
		if !reflect.DeepEqual(dd.Spec.Template.Spec.SecurityContext.RunAsNonRoot, cd.Spec.Template.Spec.SecurityContext.RunAsNonRoot) {
			t.Errorf("%s: runAsNonRoot differs", name)
		}
	}
}

// TestChartValues checks that each value reaches the objects.
func TestChartValues(t *testing.T) {
	deploymentArgs := func(objs []*unstructured.Unstructured, name string) string {
		var d appsv1.Deployment
		mustConvert(t, find(objs, "Deployment", name), &d)
		return strings.Join(d.Spec.Template.Spec.Containers[0].Args, " ")
	}

	objs := renderChart(t, "image.repository=registry.example/herald,image.tag=v9,controller.replicas=3,controller.egressAllow={10.1.0.0/16,smtp.internal},controller.egressServiceCIDRs={10.96.0.0/12},controller.extraArgs={--workers=7},controller.resources.limits.memory=1Gi,inbox.extraArgs={-v=4}")
	var d appsv1.Deployment
	mustConvert(t, find(objs, "Deployment", "herald-controller"), &d)
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "registry.example/herald:v9" || *d.Spec.Replicas != 3 || c.Resources.Limits.Memory().String() != "1Gi" {
		t.Errorf("controller image %q, replicas %d, memory limit %s", c.Image, *d.Spec.Replicas, c.Resources.Limits.Memory())
	}
	args := deploymentArgs(objs, "herald-controller")
	for _, want := range []string{"--egress-allow=10.1.0.0/16,smtp.internal", "--egress-service-cidr=10.96.0.0/12", "--workers=7", "--leader-elect"} {
		if !strings.Contains(args, want) {
			t.Errorf("controller args %q lack %s", args, want)
		}
	}
	if args := deploymentArgs(objs, "herald-inbox"); !strings.Contains(args, "-v=4") || !strings.Contains(args, "--cert-rotation-secret=herald-system/herald-inbox-serving-cert") {
		t.Errorf("inbox args %q", args)
	}
	for _, kind := range []string{"ServiceMonitor", "PodMonitor", "PrometheusRule", "Certificate", "Issuer", "Ingress"} {
		for _, o := range objs {
			if o.GetKind() == kind {
				t.Errorf("%s rendered although not asked for", kind)
			}
		}
	}

	recv := renderChart(t, "receiver.replicas=4,receiver.publicURL=https://hooks.corp.example/herald,receiver.maxBodyBytes=1048576,receiver.maxInFlight=16,receiver.namespaceRate=0.5,receiver.namespaceBurst=10,receiver.maxAge=24h,receiver.extraArgs={--kube-api-qps=80},receiver.service.type=LoadBalancer,receiver.service.loadBalancerSourceRanges={192.0.2.0/24}")
	mustConvert(t, find(recv, "Deployment", "herald-receiver"), &d)
	if *d.Spec.Replicas != 4 {
		t.Errorf("receiver replicas %d", *d.Spec.Replicas)
	}
	args = deploymentArgs(recv, "herald-receiver")
	for _, want := range []string{"--public-url=https://hooks.corp.example/herald", "--max-body-bytes=1048576", "--max-in-flight=16", "--namespace-rate=0.5", "--namespace-burst=10", "--max-age=24h", "--kube-api-qps=80"} {
		if !strings.Contains(args, want) {
			t.Errorf("receiver args %q lack %s", args, want)
		}
	}
	var svc corev1.Service
	mustConvert(t, find(recv, "Service", "herald-receiver"), &svc)
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || !slices.Equal(svc.Spec.LoadBalancerSourceRanges, []string{"192.0.2.0/24"}) {
		t.Errorf("receiver Service %+v", svc.Spec)
	}

	cm := renderChart(t, chartValueSets[1])
	if args := deploymentArgs(cm, "herald-inbox"); strings.Contains(args, "--cert-rotation") {
		t.Errorf("with cert-manager the inbox still rotates: %q", args)
	}
	for _, want := range []objectKey{{"Certificate", namespace, "herald-inbox-serving"}, {"Issuer", namespace, "herald-inbox-selfsigned"}, {"ServiceMonitor", namespace, "herald-controller"}, {"PodMonitor", namespace, "herald-receiver"}, {"PrometheusRule", namespace, "herald"}} {
		if !slices.Contains(keys(cm), want) {
			t.Errorf("%s not rendered", want)
		}
	}
	for _, gone := range []string{"herald-inbox-serving-cert", "herald-inbox-cert-rotation"} {
		for _, o := range cm {
			if o.GetName() == gone {
				t.Errorf("with cert-manager the chart still renders %s %s", o.GetKind(), gone)
			}
		}
	}
	if find(cm, "APIService", "v1alpha1.inbox.herald.dev").GetAnnotations()["cert-manager.io/inject-ca-from"] != namespace+"/herald-inbox-serving" {
		t.Error("with cert-manager the APIService has no inject-ca-from")
	}
	if issuer := renderChart(t, "certManager.enabled=true,certManager.issuerRef.kind=ClusterIssuer,certManager.issuerRef.name=corp-ca"); find(issuer, "Issuer", "herald-inbox-selfsigned") != nil {
		t.Error("with an issuerRef the chart still makes its own Issuer")
	}

	if ing := find(cm, "Ingress", "herald-receiver"); ing == nil {
		t.Error("receiver.ingress.enabled renders no Ingress")
	} else if tls, _, _ := unstructured.NestedSlice(ing.Object, "spec", "tls"); len(tls) != 1 {
		t.Errorf("the receiver's Ingress has no TLS: %v", ing.Object["spec"])
	}
	if args := deploymentArgs(cm, "herald-receiver"); !strings.Contains(args, "--public-url=https://hooks.example.com") {
		t.Errorf("with the Ingress the receiver's public URL is not its host: %q", args)
	}

	bare := renderChart(t, chartValueSets[2])
	for _, o := range bare {
		switch o.GetLabels()["app.kubernetes.io/component"] {
		case "inbox", "receiver":
			t.Errorf("%s still renders %s %s", chartValueSets[2], o.GetKind(), o.GetName())
		}
		if o.GetKind() == "CustomResourceDefinition" {
			t.Errorf("%s still renders %s %s", chartValueSets[2], o.GetKind(), o.GetName())
		}
	}
	if find(bare, "Deployment", "herald-controller") == nil {
		t.Error("the controller is missing")
	}
}

// TestChartCopiesAreCurrent checks that the CRDs, the admission policies
// shipped with them, the controller's ClusterRole and the alert rules in the
// chart are config/'s, byte for byte (`make manifests` copies them).
func TestChartCopiesAreCurrent(t *testing.T) {
	root, err := heraldenvtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	pairs := map[string]string{
		filepath.Join(root, "config", "rbac", "role.yaml"):         filepath.Join(root, "dist", "chart", "files", "rbac", "controller-role.yaml"),
		filepath.Join(root, "config", "prometheus", "alerts.yaml"): filepath.Join(root, "dist", "chart", "files", "prometheus", "alerts.yaml"),
	}
	bases, _ := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	policies, _ := filepath.Glob(filepath.Join(root, "config", "crd", "policies", "*.yaml"))
	bases = append(bases, policies...)
	for _, b := range bases {
		pairs[b] = filepath.Join(root, "dist", "chart", "files", "crds", filepath.Base(b))
	}
	copies, _ := filepath.Glob(filepath.Join(root, "dist", "chart", "files", "crds", "*.yaml"))
	if len(copies) != len(bases) {
		t.Errorf("the chart has %d CRDs and policies, config/crd/bases and policies %d: run 'make manifests'", len(copies), len(bases))
	}
	for src, dst := range pairs {
		a, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(dst)
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s is not a copy of %s: run 'make manifests'", dst, src)
		}
	}
}

// TestChartAlertsAreConfigs checks that the chart's PrometheusRule renders
// the rules of config/prometheus, so both install paths alert alike.
func TestChartAlertsAreConfigs(t *testing.T) {
	root, err := heraldenvtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	want := find(render(t, filepath.Join(root, "config", "prometheus")), "PrometheusRule", "herald")
	got := find(renderChart(t, "metrics.prometheusRule.enabled=true"), "PrometheusRule", "herald")
	if want == nil || got == nil {
		t.Fatalf("PrometheusRule herald: config/prometheus has it %v, the chart %v", want != nil, got != nil)
	}
	if !reflect.DeepEqual(want.Object["spec"], got.Object["spec"]) {
		t.Errorf("the chart's alert rules differ from config/prometheus/alerts.yaml: run 'make manifests'")
	}
}

func mustConvert(t *testing.T, u *unstructured.Unstructured, into any) {
	t.Helper()
	if u == nil {
		t.Fatalf("object missing (want %T)", into)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		t.Fatal(err)
	}
}

// shardValueSet is the value set with shards a and b (b with overrides).
var shardValueSet = chartValueSets[3]

// TestChartShards renders the chart with two shards (docs/scaling.md,
// "Sharding") and checks that the three controllers split the objects
// between them, that each one's arguments pass the controller's own flag
// parsing and checks, and that the Deployments, PodDisruptionBudgets and
// metrics Services each select the pods of one controller only.
func TestChartShards(t *testing.T) {
	objs := renderChart(t, shardValueSet)

	deployments := map[string]appsv1.Deployment{}
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		var d appsv1.Deployment
		mustConvert(t, o, &d)
		deployments[d.Name] = d
	}
	controllers := []string{"herald-controller", "herald-controller-a", "herald-controller-b"}
	var rendered []string
	for name, d := range deployments {
		if len(d.Spec.Template.Spec.Containers[0].Args) > 0 && d.Spec.Template.Spec.Containers[0].Args[0] == "controller" {
			rendered = append(rendered, name)
		}
	}
	slices.Sort(rendered)
	if !slices.Equal(rendered, controllers) {
		t.Fatalf("controller Deployments %v, want %v", rendered, controllers)
	}

	// Each controller's flags, parsed and checked as `herald controller`
	// does; the objects each one's selector takes.
	selectors := map[string]labels.Selector{}
	leases := map[string]string{}
	for _, name := range controllers {
		d := deployments[name]
		args := d.Spec.Template.Spec.Containers[0].Args
		opts := heraldcontrollers.DefaultOptions()
		fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
		opts.AddFlags(fs)
		// The logging flags are controller-runtime's, bound by the command.
		controllerArgs := slices.DeleteFunc(slices.Clone(args[1:]), func(a string) bool { return strings.HasPrefix(a, "--zap-") })
		if err := fs.Parse(controllerArgs); err != nil {
			t.Fatalf("%s args %q: %v", name, args, err)
		}
		if err := opts.Complete(); err != nil {
			t.Errorf("%s args %q: the controller would refuse to start: %v", name, args, err)
		}
		if !opts.Manager.LeaderElection {
			t.Errorf("%s runs without leader election: %q", name, args)
		}
		if other, dup := leases[opts.Manager.LeaderElectionID]; dup {
			t.Errorf("%s and %s share the lease %s", name, other, opts.Manager.LeaderElectionID)
		}
		leases[opts.Manager.LeaderElectionID] = name
		sel, err := opts.Manager.ShardSelector()
		if err != nil || sel == nil {
			t.Fatalf("%s: --watch-label-selector %q: %v", name, opts.Manager.WatchLabelSelector, err)
		}
		selectors[name] = sel

		want := map[string]struct {
			selector, lease string
			sharedStatus    bool
		}{
			"herald-controller":   {"!sharding.herald.dev/key", heraldcontrollers.DefaultLeaderElectionID, true},
			"herald-controller-a": {"sharding.herald.dev/key in (a)", "herald-controller-a.notify.herald.dev", false},
			"herald-controller-b": {"sharding.herald.dev/key in (b)", "herald-controller-b.notify.herald.dev", false},
		}[name]
		if m := opts.Manager; m.WatchLabelSelector != want.selector || m.LeaderElectionID != want.lease || m.SharedStatus != want.sharedStatus {
			t.Errorf("%s: --watch-label-selector=%q --leader-election-id=%s --shared-status=%v, want %q %s %v",
				name, m.WatchLabelSelector, m.LeaderElectionID, m.SharedStatus, want.selector, want.lease, want.sharedStatus)
		}
	}
	for objectLabels, owner := range map[string]string{
		"":                          "herald-controller",
		"team=x":                    "herald-controller",
		"sharding.herald.dev/key=a": "herald-controller-a",
		"sharding.herald.dev/key=b": "herald-controller-b",
		"sharding.herald.dev/key=c": "",
		"sharding.herald.dev/key=":  "",
	} {
		set, err := labels.ConvertSelectorToLabelsMap(objectLabels)
		if err != nil {
			t.Fatal(err)
		}
		var takers []string
		for _, name := range controllers {
			if selectors[name].Matches(set) {
				takers = append(takers, name)
			}
		}
		if want := []string{owner}; owner == "" && len(takers) != 0 || owner != "" && !slices.Equal(takers, want) {
			t.Errorf("an object labelled {%s} is taken by %v, want %q", objectLabels, takers, owner)
		}
	}

	// The overrides of shard b, and a's inheritance.
	if a, b := deployments["herald-controller-a"], deployments["herald-controller-b"]; *a.Spec.Replicas != 2 || *b.Spec.Replicas != 1 {
		t.Errorf("replicas: a %d (want controller.replicas, 2), b %d (want 1)", *a.Spec.Replicas, *b.Spec.Replicas)
	} else if args := b.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--workers=20") || slices.Contains(a.Spec.Template.Spec.Containers[0].Args, "--workers=20") {
		t.Errorf("shard b's extraArgs: a %q, b %q", a.Spec.Template.Spec.Containers[0].Args, args)
	}
	for _, name := range controllers {
		if sa := deployments[name].Spec.Template.Spec.ServiceAccountName; sa != "herald-controller" {
			t.Errorf("%s runs as %q, want herald-controller (its RBAC)", name, sa)
		}
	}

	// No Deployment's selector takes another's pods.
	for name, d := range deployments {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		for other, o := range deployments {
			if matches := sel.Matches(labels.Set(o.Spec.Template.Labels)); matches != (name == other) {
				t.Errorf("Deployment %s's selector %s matches the pods of %s: %v", name, sel, other, matches)
			}
		}
	}
	// Each controller has a PodDisruptionBudget and a metrics Service of
	// its own, selecting only its pods.
	podsSelected := func(sel labels.Selector) []string {
		var names []string
		for name, d := range deployments {
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				names = append(names, name)
			}
		}
		return names
	}
	for _, name := range controllers {
		var pdb policyv1.PodDisruptionBudget
		mustConvert(t, find(objs, "PodDisruptionBudget", name), &pdb)
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		if got := podsSelected(sel); !slices.Equal(got, []string{name}) {
			t.Errorf("PodDisruptionBudget %s selects the pods of %v", name, got)
		}
		var svc corev1.Service
		mustConvert(t, find(objs, "Service", name+"-metrics"), &svc)
		if got := podsSelected(labels.SelectorFromSet(svc.Spec.Selector)); !slices.Equal(got, []string{name}) {
			t.Errorf("Service %s-metrics selects the pods of %v", name, got)
		}
	}
	// The ServiceMonitor scrapes every controller's metrics Service (docs:
	// each shard exports its own metrics).
	mon := find(objs, "ServiceMonitor", "herald-controller")
	if mon == nil {
		t.Fatal("no ServiceMonitor")
	}
	monLabels, _, _ := unstructured.NestedStringMap(mon.Object, "spec", "selector", "matchLabels")
	var scraped []string
	for _, o := range objs {
		if o.GetKind() == "Service" && labels.SelectorFromSet(monLabels).Matches(labels.Set(o.GetLabels())) {
			scraped = append(scraped, o.GetName())
		}
	}
	slices.Sort(scraped)
	if want := []string{"herald-controller-a-metrics", "herald-controller-b-metrics", "herald-controller-metrics"}; !slices.Equal(scraped, want) {
		t.Errorf("the ServiceMonitor scrapes the Services %v, want %v", scraped, want)
	}
}

// TestChartRefusesBadShards checks that the chart fails with a message
// naming the entry for shard names it cannot use.
func TestChartRefusesBadShards(t *testing.T) {
	for set, want := range map[string]string{
		"controller.shards[0].name=Shard_1":                        `controller.shards[0].name "Shard_1": a shard name must be lower-case`,
		"controller.shards[0].name=a,controller.shards[1].name=-b": `controller.shards[1].name "-b": a shard name must be lower-case`,
		"controller.shards[0].replicas=1":                          `controller.shards[0].name "": a shard name must be lower-case`,
		"controller.shards[0].name=a,controller.shards[1].name=a":  `controller.shards[1].name "a": named twice`,
		"controller.shards={a}":                                    `controller.shards[0]: want an object such as {name: shard1}`,
		"controller.shards[0].name=" + strings.Repeat("s", 38):     `at most 37 characters`,
	} {
		_, err := helmTemplate(t, set)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--set %s: got %v, want an error with %q", set, err, want)
		}
	}
	// The longest accepted name.
	if _, err := helmTemplate(t, "controller.shards[0].name="+strings.Repeat("s", 37)); err != nil {
		t.Errorf("a 37-character shard name: %v", err)
	}
}

// TestChartValueSetsAreMakefiles keeps chartValueSets and the Makefile's
// CHART_VALUE_SETS (which `make test-chart` lints) the same list.
func TestChartValueSetsAreMakefiles(t *testing.T) {
	root, err := heraldenvtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^CHART_VALUE_SETS = (.*)$`).FindSubmatch(makefile)
	if line == nil {
		t.Fatal("the Makefile has no CHART_VALUE_SETS line")
	}
	var sets []string
	for _, m := range regexp.MustCompile(`"([^"]*)"`).FindAllSubmatch(line[1], -1) {
		sets = append(sets, string(m[1]))
	}
	if !slices.Equal(sets, chartValueSets) {
		t.Errorf("the Makefile's CHART_VALUE_SETS\n%q\ndiffer from chartValueSets\n%q", sets, chartValueSets)
	}
}

// TestScalingDocShowsChartShards renders the values example of
// docs/scaling.md ("Shards with the Helm chart") and checks that it does
// what the page says.
func TestScalingDocShowsChartShards(t *testing.T) {
	root, err := heraldenvtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "scaling.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "### Shards with the Helm chart")
	if !ok {
		t.Fatal("docs/scaling.md has no section \"Shards with the Helm chart\"")
	}
	_, example, ok := strings.Cut(section, "```yaml\n")
	example, _, ok2 := strings.Cut(example, "```")
	if !ok || !ok2 {
		t.Fatal("the section has no yaml example")
	}
	values := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(values, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	objs := renderChart(t, "", "--values", values)
	var d appsv1.Deployment
	mustConvert(t, find(objs, "Deployment", "herald-controller-shard1"), &d)
	mustConvert(t, find(objs, "Deployment", "herald-controller-shard2"), &d)
	c := d.Spec.Template.Spec.Containers[0]
	if *d.Spec.Replicas != 3 || !slices.Contains(c.Args, "--workers=20") || c.Resources.Limits.Memory().String() != "1Gi" || c.Resources.Requests != nil {
		t.Errorf("shard2: replicas %d, args %q, resources %+v", *d.Spec.Replicas, c.Args, c.Resources)
	}
}
