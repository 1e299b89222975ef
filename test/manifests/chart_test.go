package manifests

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	heraldenvtest "github.com/herald-dev/herald/internal/dev/testutil/envtest"
)

// chartValueSets are the --set values that change what the chart renders,
// as the Makefile's test-chart lints them.
var chartValueSets = []string{
	"",
	"certManager.enabled=true,metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true,receiver.ingress.enabled=true,receiver.ingress.host=hooks.example.com,receiver.ingress.tlsSecretName=hooks-tls",
	"inbox.enabled=false,crd.enable=false,receiver.enabled=false",
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
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
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
