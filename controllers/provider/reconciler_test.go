package provider

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/egress"
	"github.com/herald-dev/herald/internal/channel/factory"
	"github.com/herald-dev/herald/internal/sendercache"
)

// A shard that does not write shared status (--shared-status=false) still
// loads a provider to send through, and leaves its status alone; the one
// that writes it reports Ready.
func TestReadOnlyLoadsProvidersWithoutWritingStatus(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := notifyv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	policy, err := egress.New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, readOnly := range []bool{true, false} {
		p := &notifyv1.NotificationProvider{
			ObjectMeta: metav1.ObjectMeta{Name: "hook", Namespace: "ns", Generation: 1},
			Spec: notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelWebhook,
				Webhook: &notifyv1.WebhookProvider{URL: "https://hooks.example.com/in"}},
		}
		c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(p).WithStatusSubresource(p).Build()
		registry := sendercache.NewCache()
		r := &Reconciler{Client: c, SecretReader: c, Registry: registry, Recorder: events.NewFakeRecorder(10),
			Clock: clock.RealClock{}, ReadOnly: readOnly,
			Settings: factory.Settings{Egress: policy, HTTPClient: channel.NewHTTPClient(policy)}}
		key := types.NamespacedName{Namespace: "ns", Name: "hook"}
		if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: key}); err != nil {
			t.Fatalf("readOnly=%v: %v", readOnly, err)
		}
		if e, ok := registry.Get(key); !ok || !e.Ready || e.Sender == nil {
			t.Errorf("readOnly=%v: the provider was not loaded ready to send: %+v", readOnly, e)
		}
		var got notifyv1.NotificationProvider
		if err := c.Get(context.Background(), key, &got); err != nil {
			t.Fatal(err)
		}
		if wrote := len(got.Status.Conditions) > 0; wrote == readOnly {
			t.Errorf("readOnly=%v: status written = %v", readOnly, wrote)
		}
	}
}
