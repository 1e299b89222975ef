package envtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	notifyv1alpha1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// PolicyDir holds the admission policies shipped with the CRDs
// (config/crd/policies): rules the CRDs do not carry themselves.
func PolicyDir(root string) string { return filepath.Join(root, "config", "crd", "policies") }

// Start starts env, whose CRDs envtest installs, and installs the
// admission policies shipped with them, as `kubectl apply -k config/crd`
// would: a test sees the API as a cluster has it.
func Start(env *envtest.Environment) (*rest.Config, error) {
	cfg, err := env.Start()
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	if err := InstallPolicies(context.Background(), cfg, PolicyDir(root)); err != nil {
		_ = env.Stop()
		return nil, err
	}
	return cfg, nil
}

// InstallPolicies creates the objects of dir's YAML files (those already
// there are kept) and waits until kube-apiserver enforces them: a policy
// is loaded asynchronously, a moment after it is created.
func InstallPolicies(ctx context.Context, cfg *rest.Config, dir string) error {
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var obj unstructured.Unstructured
			if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			if len(obj.Object) == 0 {
				continue
			}
			if err := c.Create(ctx, &obj); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("%s: creating %s %s: %w", f, obj.GetKind(), obj.GetName(), err)
			}
		}
	}
	return waitImmutableSpec(ctx, c)
}

// waitImmutableSpec waits until changing a Notification's spec is refused,
// with a probe Notification that it deletes again.
func waitImmutableSpec(ctx context.Context, c client.Client) error {
	probe := &notifyv1alpha1.Notification{
		ObjectMeta: metav1.ObjectMeta{Name: "herald-policy-probe", Namespace: metav1.NamespaceDefault},
		Spec: notifyv1alpha1.NotificationSpec{
			Title: "probe", Message: "probe",
			Audience: notifyv1alpha1.Audience{Users: []string{"probe"}},
			Channels: []notifyv1alpha1.Channel{notifyv1alpha1.ChannelInApp},
		},
	}
	if err := c.Create(ctx, probe); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the policy probe: %w", err)
	}
	defer func() { _ = c.Delete(ctx, probe) }()
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var n notifyv1alpha1.Notification
		if err := c.Get(ctx, client.ObjectKeyFromObject(probe), &n); err != nil {
			return false, err
		}
		n.Spec.Message = "changed"
		err := c.Update(ctx, &n, client.DryRunAll)
		return apierrors.IsInvalid(err) || apierrors.IsForbidden(err), nil
	})
}
