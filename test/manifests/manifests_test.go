// Package manifests checks the production manifests: config/default
// renders with kustomize (the same library `kubectl apply -k` embeds), and
// every object it renders is accepted by a real kube-apiserver in a
// server-side dry run, schema validation and admission included.
package manifests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	heraldenvtest "github.com/herald-dev/herald/internal/dev/testutil/envtest"
	"github.com/herald-dev/herald/internal/dev/testutil/kustomize"
)

const namespace = "herald-system"

// render builds a kustomization directory as `kubectl kustomize` does.
func render(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := kustomize.Render(dir)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// TestDefaultRenders checks what config/default contains, without a
// cluster.
func TestDefaultRenders(t *testing.T) {
	root, err := heraldenvtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	objs := render(t, filepath.Join(root, "config", "default"))

	for _, want := range []struct{ kind, name string }{
		{"Namespace", namespace},
		{"CustomResourceDefinition", "notifications.notify.herald.dev"},
		{"CustomResourceDefinition", "channeldeliveries.notify.herald.dev"},
		{"ClusterRole", "herald-controller"},
		{"ClusterRoleBinding", "herald-controller"},
		{"Role", "herald-controller-leader-election"},
		{"RoleBinding", "herald-controller-leader-election"},
		{"ServiceAccount", "herald-controller"},
		{"Deployment", "herald-controller"},
		{"Service", "herald-controller-metrics"},
		{"APIService", "v1alpha1.inbox.herald.dev"},
		{"Deployment", "herald-inbox"},
		{"Deployment", "herald-receiver"},
		{"Service", "herald-receiver"},
		{"ClusterRole", "herald-receiver"},
		{"ClusterRoleBinding", "herald-receiver"},
		{"ServiceAccount", "herald-receiver"},
	} {
		if find(objs, want.kind, want.name) == nil {
			t.Errorf("config/default has no %s %s", want.kind, want.name)
		}
	}

	// Namespaced objects land in herald-system, except the inbox's
	// RoleBinding for the front-proxy settings, which must stay in
	// kube-system.
	for _, o := range objs {
		ns := o.GetNamespace()
		switch {
		case o.GetKind() == "RoleBinding" && o.GetName() == "herald-inbox-auth-reader":
			if ns != "kube-system" {
				t.Errorf("RoleBinding herald-inbox-auth-reader is in %q, want kube-system", ns)
			}
		case clusterScoped[o.GetKind()]:
			if ns != "" {
				t.Errorf("cluster-scoped %s %s has namespace %q", o.GetKind(), o.GetName(), ns)
			}
		case ns != namespace:
			t.Errorf("%s %s is in namespace %q, want %s", o.GetKind(), o.GetName(), ns, namespace)
		}
		if o.GetLabels()["app.kubernetes.io/part-of"] != "herald" {
			t.Errorf("%s %s lacks app.kubernetes.io/part-of=herald", o.GetKind(), o.GetName())
		}
	}

	// The controller runs as the production checklist says.
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(find(objs, "Deployment", "herald-controller").Object, &d); err != nil {
		t.Fatal(err)
	}
	pod := d.Spec.Template.Spec
	if pod.ServiceAccountName != "herald-controller" {
		t.Errorf("serviceAccountName = %q", pod.ServiceAccountName)
	}
	if psc := pod.SecurityContext; psc == nil || !ptr.Deref(psc.RunAsNonRoot, false) || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v", pod.SecurityContext)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("containers: %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"controller", "--leader-elect", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081"} {
		if !strings.Contains(args, want) {
			t.Errorf("controller args %q lack %s", args, want)
		}
	}
	if c.Image != "herald:latest" {
		t.Errorf("image = %q", c.Image)
	}
	sc := c.SecurityContext
	if sc == nil || !ptr.Deref(sc.ReadOnlyRootFilesystem, false) || ptr.Deref(sc.AllowPrivilegeEscalation, true) || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("container securityContext = %+v", sc)
	}
	if c.LivenessProbe == nil || c.ReadinessProbe == nil {
		t.Error("the controller has no liveness or readiness probe")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources = %+v", c.Resources)
	}
}

// TestReceiverMayOnlyReadAndWriteStatus checks the receiver's RBAC: it is
// reachable from the internet, so it gets read access and the status
// subresource of deliveries, nothing that creates, deletes or changes a
// spec.
func TestReceiverMayOnlyReadAndWriteStatus(t *testing.T) {
	root, err := heraldenvtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(find(render(t, filepath.Join(root, "config", "default")), "ClusterRole", "herald-receiver").Object, &role); err != nil {
		t.Fatal(err)
	}
	read := map[string]bool{"get": true, "list": true, "watch": true}
	for _, r := range role.Rules {
		for _, res := range r.Resources {
			for _, v := range r.Verbs {
				switch {
				case read[v]:
				case res == "channeldeliveries/status" && v == "patch":
				case res == "events" && (v == "create" || v == "patch"):
				default:
					t.Errorf("herald-receiver may %s %s", v, res)
				}
			}
		}
	}
}

// TestDefaultNeedsNoCertManager checks that config/default brings its own
// serving certificate (Herald's rotation), and that the cert-manager
// overlay swaps it for cert-manager's without leaving the rotation behind.
func TestDefaultNeedsNoCertManager(t *testing.T) {
	root, err := heraldenvtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	inboxArgs := func(objs []*unstructured.Unstructured) string {
		var d appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(find(objs, "Deployment", "herald-inbox").Object, &d); err != nil {
			t.Fatal(err)
		}
		return strings.Join(d.Spec.Template.Spec.Containers[0].Args, " ")
	}
	rotation := []struct{ kind, name string }{
		{"Secret", "herald-inbox-serving-cert"},
		{"Role", "herald-inbox-cert-rotation"},
		{"RoleBinding", "herald-inbox-cert-rotation"},
		{"ClusterRole", "herald-inbox-cert-rotation"},
		{"ClusterRoleBinding", "herald-inbox-cert-rotation"},
	}

	def := render(t, filepath.Join(root, "config", "default"))
	for _, o := range def {
		if strings.HasSuffix(o.GetAPIVersion(), "cert-manager.io/v1") || o.GetAnnotations()["cert-manager.io/inject-ca-from"] != "" {
			t.Errorf("config/default uses cert-manager: %s %s", o.GetKind(), o.GetName())
		}
	}
	for _, want := range rotation {
		if find(def, want.kind, want.name) == nil {
			t.Errorf("config/default has no %s %s for the certificate rotation", want.kind, want.name)
		}
	}
	if args := inboxArgs(def); !strings.Contains(args, "--cert-rotation-secret=herald-system/herald-inbox-serving-cert") {
		t.Errorf("the inbox server does not rotate its certificate: args %q", args)
	}

	cm := render(t, filepath.Join(root, "config", "overlays", "cert-manager"))
	for _, want := range []struct{ kind, name string }{{"Issuer", "herald-inbox-selfsigned"}, {"Certificate", "herald-inbox-serving"}} {
		if o := find(cm, want.kind, want.name); o == nil || o.GetNamespace() != namespace || o.GetLabels()["app.kubernetes.io/part-of"] != "herald" {
			t.Errorf("the cert-manager overlay has no %s %s in %s labelled part-of herald", want.kind, want.name, namespace)
		}
	}
	if got := find(cm, "APIService", "v1alpha1.inbox.herald.dev").GetAnnotations()["cert-manager.io/inject-ca-from"]; got != namespace+"/herald-inbox-serving" {
		t.Errorf("the APIService's inject-ca-from is %q", got)
	}
	for _, gone := range rotation {
		if find(cm, gone.kind, gone.name) != nil {
			t.Errorf("the cert-manager overlay keeps %s %s of the rotation", gone.kind, gone.name)
		}
	}
	if args := inboxArgs(cm); strings.Contains(args, "--cert-rotation") || !strings.Contains(args, "--tls-cert-file=") {
		t.Errorf("with cert-manager the inbox server must not rotate, and must read the mounted certificate: args %q", args)
	}
}

var clusterScoped = map[string]bool{
	"Namespace": true, "CustomResourceDefinition": true, "ClusterRole": true,
	"ClusterRoleBinding": true, "APIService": true,
	"ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true,
}

// TestInstallDryRun applies every install path to a real kube-apiserver
// with a server-side dry run (what `kubectl apply -k config/default
// --server-side --dry-run=server` does): config/default, the cert-manager
// overlay, and the Helm chart with each of its value sets.
func TestInstallDryRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	root, err := heraldenvtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// Both install paths: Herald's own certificate and cert-manager's.
	var objs []*unstructured.Unstructured
	for _, dir := range []string{"default", "overlays/cert-manager"} {
		objs = append(objs, render(t, filepath.Join(root, "config", dir))...)
	}
	for _, set := range chartValueSets {
		objs = append(objs, renderChart(t, set)...)
	}
	dryRun(t, objs)
}

// dryRun applies objs to a fresh kube-apiserver with a server-side dry run
// and fails for every object it refuses. Namespaces are created for real.
func dryRun(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()

	bins, err := heraldenvtest.BinaryDir()
	if err != nil {
		t.Fatal(err)
	}
	// No CRDs installed up front: the dry run must accept Herald's own.
	// cert-manager's and the Prometheus Operator's are the optional
	// prerequisites of the cert-manager component and the chart's
	// monitoring; stand-ins for their kinds let those objects be checked
	// for kind and scope (not for the operators' schemas).
	env := &envtest.Environment{
		BinaryAssetsDirectory: bins,
		Scheme:                heraldenvtest.Scheme(),
		CRDs: []*apiextensionsv1.CustomResourceDefinition{
			stubCRD("cert-manager.io", "Issuer", "issuers"), stubCRD("cert-manager.io", "Certificate", "certificates"),
			stubCRD("monitoring.coreos.com", "ServiceMonitor", "servicemonitors"), stubCRD("monitoring.coreos.com", "PrometheusRule", "prometheusrules"),
			stubCRD("monitoring.coreos.com", "PodMonitor", "podmonitors"),
		},
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A dry run cannot create objects in a namespace that does not exist:
	// the namespaces are created for real (the chart's too, which Helm
	// creates with --create-namespace), everything else is dry run.
	for _, o := range objs {
		name := o.GetNamespace()
		if o.GetKind() == "Namespace" {
			name = o.GetName()
		}
		if name == "" {
			continue
		}
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating namespace %s: %v", name, err)
		}
	}
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			continue
		}
		obj := o.DeepCopy()
		err := c.Patch(ctx, obj, client.Apply, client.DryRunAll, client.FieldOwner("herald-manifests-test"), client.ForceOwnership)
		if err != nil {
			t.Errorf("server-side dry run of %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
	// Nothing but the namespaces was created.
	var crds apiextensionsv1.CustomResourceDefinitionList
	if err := c.List(ctx, &crds); err != nil {
		t.Fatal(err)
	}
	for _, crd := range crds.Items {
		if strings.HasSuffix(crd.Name, ".notify.herald.dev") {
			t.Errorf("the dry run created %s", crd.Name)
		}
	}
}

func stubCRD(group, kind, plural string) *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%s", plural, group)},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: kind, ListKind: kind + "List", Plural: plural, Singular: strings.ToLower(kind)},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr.To(true),
				}},
			}},
		},
	}
}

// TestReadmeShowsTheDevSamples keeps README.md's walkthrough and the
// manifests test/e2e applies the same: the README shows
// config/samples/dev/notification.yaml verbatim (without its comments) and
// names both files it applies.
func TestReadmeShowsTheDevSamples(t *testing.T) {
	root, err := heraldenvtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	sample, err := os.ReadFile(filepath.Join(root, "config", "samples", "dev", "notification.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var body []string
	for _, line := range strings.Split(string(sample), "\n") {
		if !strings.HasPrefix(line, "#") {
			body = append(body, line)
		}
	}
	if !strings.Contains(string(readme), "```yaml\n"+strings.TrimSpace(strings.Join(body, "\n"))+"\n```") {
		t.Error("README.md does not show config/samples/dev/notification.yaml as it is")
	}
	for _, cmd := range []string{
		"make dev",
		"kubectl apply -f config/samples/dev/notification.yaml",
		"kubectl apply -f config/samples/dev/approval.yaml",
		"kubectl get inboxitems --as alice",
		"kubectl wait --for=condition=Approved notification/release-approval",
		"kubectl apply -f config/samples/dev/escalation.yaml",
		"kubectl wait --for=condition=Acknowledged notification/payments-down",
	} {
		if !strings.Contains(string(readme), cmd) {
			t.Errorf("README.md lacks %q", cmd)
		}
	}
}
