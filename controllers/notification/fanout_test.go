package notification

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/retry"
)

func TestRecipientSnapshotHoldsWhatTheChannelUses(t *testing.T) {
	rc := &notifyv1.Recipient{
		ObjectMeta: metav1.ObjectMeta{Name: "alice"},
		Spec: notifyv1.RecipientSpec{Username: "alice", DisplayName: "Alice", Email: "alice@example.com",
			Phone: "+4915112345671", WebhookURL: "https://hooks.example.com/a", Timezone: "Europe/Berlin"},
	}
	base := notifyv1.RecipientSnapshot{Name: "alice", Username: "alice", DisplayName: "Alice"}
	want := map[notifyv1.Channel]notifyv1.RecipientSnapshot{
		notifyv1.ChannelInApp:    base,
		notifyv1.ChannelEmail:    with(base, func(s *notifyv1.RecipientSnapshot) { s.Email, s.Timezone = "alice@example.com", "Europe/Berlin" }),
		notifyv1.ChannelWhatsApp: with(base, func(s *notifyv1.RecipientSnapshot) { s.Phone, s.Timezone = "+4915112345671", "Europe/Berlin" }),
		notifyv1.ChannelWebhook: with(base, func(s *notifyv1.RecipientSnapshot) {
			s.Email, s.Phone, s.WebhookURL, s.Timezone = "alice@example.com", "+4915112345671", "https://hooks.example.com/a", "Europe/Berlin"
		}),
	}
	for _, ch := range notifyv1.Channels {
		if got := recipientSnapshot(rc, ch); got != want[ch] {
			t.Errorf("%s: snapshot %+v, want %+v", ch, got, want[ch])
		}
	}
}

func with(s notifyv1.RecipientSnapshot, f func(*notifyv1.RecipientSnapshot)) notifyv1.RecipientSnapshot {
	f(&s)
	return s
}

// unitReconciler is a Reconciler over fake clients: cached is
// what the cache holds, live what the API server holds.
func unitReconciler(t *testing.T, live ...client.Object) (r *Reconciler, cached client.Client) {
	scheme := runtime.NewScheme()
	if err := notifyv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cached = fake.NewClientBuilder().WithScheme(scheme).
		WithIndex(&notifyv1.ChannelDelivery{}, DeliveryIndex, func(o client.Object) []string {
			return []string{o.(*notifyv1.ChannelDelivery).Spec.Notification}
		}).Build()
	return &Reconciler{
		Client:            cached,
		APIReader:         fake.NewClientBuilder().WithScheme(scheme).WithObjects(live...).Build(),
		FanOutParallelism: 1,
		DefaultRetry:      retry.Policy{Strategy: retry.Exponential, MaxAttempts: 4, InitialDelay: time.Second, MaxDelay: time.Minute},
		DefaultTimeout:    30 * time.Second,
	}, cached
}

func TestInAppDeliveriesCarryNoRetryPolicy(t *testing.T) {
	r, _ := unitReconciler(t)
	n := &notifyv1.Notification{ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "ns", UID: "u"}}
	rp := retry.Resolve(nil, r.DefaultRetry).Spec()
	timeout := &metav1.Duration{Duration: r.DefaultTimeout}
	if d := r.newDelivery(n, notifyv1.ChannelInApp, "alice", notifyv1.RenderedContent{}, rp, timeout); d.Spec.Retry != nil || d.Spec.Timeout != nil {
		t.Errorf("in-app delivery has retry %v and timeout %v, want neither", d.Spec.Retry, d.Spec.Timeout)
	}
	if d := r.newDelivery(n, notifyv1.ChannelEmail, "alice", notifyv1.RenderedContent{}, rp, timeout); d.Spec.Retry == nil || d.Spec.Timeout == nil {
		t.Errorf("email delivery lost its retry policy or timeout: %v, %v", d.Spec.Retry, d.Spec.Timeout)
	}
}

// A Recipient created a moment before its Notification may not be in the
// cache yet; it must not be skipped as unknown for that.
func TestDispatchChecksUnknownUsersPastTheCache(t *testing.T) {
	// alice exists on the API server but has not reached the cache.
	alice := &notifyv1.Recipient{ObjectMeta: metav1.ObjectMeta{Name: "alice", Namespace: "ns"}, Spec: notifyv1.RecipientSpec{Username: "alice"}}
	r, cached := unitReconciler(t, alice)
	n := &notifyv1.Notification{
		ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "ns", UID: "u"},
		Spec: notifyv1.NotificationSpec{Type: notifyv1.TypeInformational, Message: "hi",
			Audience: notifyv1.Audience{Users: []string{"alice", "mallory"}}, Channels: []notifyv1.Channel{notifyv1.ChannelInApp}},
	}
	if _, err := r.dispatch(context.Background(), n, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := n.Status.Unresolved; len(got) != 1 || got[0] != "mallory" {
		t.Errorf("unresolved %v, want [mallory]", got)
	}
	var d notifyv1.ChannelDelivery
	if err := cached.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: DeliveryName("n", notifyv1.ChannelInApp, "alice")}, &d); err != nil {
		t.Fatal(err)
	}
	if d.Spec.Skip != nil {
		t.Errorf("alice's delivery is skipped: %+v", d.Spec.Skip)
	}
}
