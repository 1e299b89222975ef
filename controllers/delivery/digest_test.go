package delivery_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	testingclock "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/controllers/delivery"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/retry"
)

// counting is a handler that accepts every message and counts them.
type counting struct{ sends int }

func (h *counting) NeedsClaim() bool { return true }
func (h *counting) Admit(*notifyv1.ChannelDelivery, time.Time) (time.Duration, error) {
	return 0, nil
}
func (h *counting) Send(context.Context, *notifyv1.ChannelDelivery, *channel.Message) (string, channel.Result, error) {
	h.sends++
	return "smtp", channel.Result{}, nil
}

// A held delivery waits for its window; at the end the digest is made
// once and carries every held delivery of the window; one that the digest
// does not list (it came too late) is sent on its own, so nothing is lost.
func TestDigestHoldsThenCarriesOrSendsOnItsOwn(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 3, 1, 12, 5, 0, 0, time.UTC)
	end := start.Add(55 * time.Minute)
	scheme := runtime.NewScheme()
	if err := notifyv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	const digestName = "digest-alice-email-1"
	held := func(name string, created time.Time) *notifyv1.ChannelDelivery {
		return &notifyv1.ChannelDelivery{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), CreationTimestamp: metav1.NewTime(created),
				Labels: map[string]string{notifyv1.LabelChannel: "email", notifyv1.LabelRecipient: "alice", notifyv1.LabelDigest: digestName}},
			Spec: notifyv1.ChannelDeliverySpec{
				Notification: name, Channel: notifyv1.ChannelEmail,
				Recipient: notifyv1.RecipientSnapshot{Name: "alice", Email: "alice@example.com"},
				Content:   notifyv1.RenderedContent{Title: "Deployed " + name, Message: "ok", Category: "deployments"},
				Digest:    &notifyv1.DigestHold{Name: digestName, Until: metav1.NewTime(end)},
			},
		}
	}
	a, b := held("a", start), held("b", start.Add(time.Minute))
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(a, b).WithStatusSubresource(&notifyv1.ChannelDelivery{}).Build()
	clock := testingclock.NewFakeClock(start)
	h := &counting{}
	policy := retry.Policy{Strategy: retry.Exponential, MaxAttempts: 3, InitialDelay: time.Second, MaxDelay: time.Minute}
	r := &delivery.Reconciler{Client: c, Channel: notifyv1.ChannelEmail, Handler: h, Recorder: events.NewFakeRecorder(100),
		Clock: clock, DefaultRetry: policy, DefaultTimeout: 10 * time.Second}
	reconcile := func(name string) ctrl.Result {
		t.Helper()
		res, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "ns", Name: name}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	get := func(name string) *notifyv1.ChannelDelivery {
		t.Helper()
		var d notifyv1.ChannelDelivery
		if err := c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: name}, &d); err != nil {
			t.Fatal(err)
		}
		return &d
	}

	if res := reconcile("a"); res.RequeueAfter != end.Sub(start) {
		t.Fatalf("requeue after %s, want the window's end", res.RequeueAfter)
	}
	if d := get("a"); d.Status.Phase != notifyv1.DeliveryPending || d.Status.Reason != notifyv1.ReasonHeldForDigest || h.sends != 0 {
		t.Fatalf("before the window's end: %+v, %d sends", d.Status, h.sends)
	}

	clock.SetTime(end)
	reconcile("b")
	dg := get(digestName)
	if len(dg.Spec.DigestOf) != 2 || dg.Spec.DigestOf[0] != "a" || dg.Spec.DigestOf[1] != "b" || dg.Spec.Content.Title != "Digest: 2 notifications (deployments)" {
		t.Fatalf("digest spec %+v", dg.Spec)
	}
	for _, name := range []string{"a", "b"} {
		if d := get(name); d.Status.Phase != notifyv1.DeliverySucceeded || d.Status.Reason != notifyv1.ReasonDigested || d.Status.DigestedBy != digestName {
			t.Fatalf("%s after the window: %+v", name, d.Status)
		}
	}
	if h.sends != 0 {
		t.Fatalf("held deliveries were sent on their own: %d sends", h.sends)
	}

	// A delivery of the same window that reached the controller after the
	// digest was made.
	late := held("late", end.Add(-time.Second))
	if err := c.Create(ctx, late); err != nil {
		t.Fatal(err)
	}
	reconcile("late")
	if d := get("late"); d.Status.Reason != notifyv1.ReasonDigestMissed {
		t.Fatalf("late: %+v", d.Status)
	}
	reconcile("late")
	if d := get("late"); d.Status.Phase != notifyv1.DeliverySucceeded || d.Status.Reason != notifyv1.ReasonDelivered || h.sends != 1 {
		t.Fatalf("late after it left the digest: %+v, %d sends", d.Status, h.sends)
	}
}

// A digest that names a template is rendered from it, with the params it
// declares; a missing template falls back to the default.
func TestDigestTemplate(t *testing.T) {
	ctx := context.Background()
	end := time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC)
	scheme := runtime.NewScheme()
	if err := notifyv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	tmpl := &notifyv1.NotificationTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "digest", Namespace: "ns"},
		Spec: notifyv1.NotificationTemplateContent{
			Params:  []notifyv1.TemplateParam{{Name: "count", Required: true}, {Name: "items"}, {Name: "recipient"}},
			Title:   "{{ .count }} updates for {{ .recipient }}",
			Message: "Since the last digest:\n{{ .items }}",
			Email:   &notifyv1.EmailContent{Subject: "[herald] {{ .count }} updates"},
		},
	}
	heldFor := func(name, template string) *notifyv1.ChannelDelivery {
		return &notifyv1.ChannelDelivery{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), CreationTimestamp: metav1.NewTime(end.Add(-time.Minute)),
				Labels: map[string]string{notifyv1.LabelChannel: "email", notifyv1.LabelDigest: "digest-" + name}},
			Spec: notifyv1.ChannelDeliverySpec{
				Notification: name, Channel: notifyv1.ChannelEmail,
				Recipient: notifyv1.RecipientSnapshot{Name: "alice", DisplayName: "Alice"},
				Content:   notifyv1.RenderedContent{Title: "Deployed " + name},
				Digest:    &notifyv1.DigestHold{Name: "digest-" + name, Until: metav1.NewTime(end), Template: template},
			},
		}
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(tmpl, heldFor("a", "digest"), heldFor("b", "missing")).
		WithStatusSubresource(&notifyv1.ChannelDelivery{}).Build()
	rec := events.NewFakeRecorder(100)
	r := &delivery.Reconciler{Client: c, Channel: notifyv1.ChannelEmail, Handler: &counting{}, Recorder: rec,
		Clock: testingclock.NewFakeClock(end), DefaultTimeout: 10 * time.Second}
	for _, name := range []string{"a", "b"} {
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "ns", Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	var a, b notifyv1.ChannelDelivery
	if err := c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "digest-a"}, &a); err != nil {
		t.Fatal(err)
	}
	if a.Spec.Content.Title != "1 updates for Alice" || a.Spec.Content.Email == nil || a.Spec.Content.Email.Subject != "[herald] 1 updates" ||
		a.Spec.Content.Message != "Since the last digest:\n1. [2026-03-01 12:59 UTC] Deployed a" {
		t.Fatalf("templated digest content %+v (email %+v)", a.Spec.Content, a.Spec.Content.Email)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "digest-b"}, &b); err != nil {
		t.Fatal(err)
	}
	if b.Spec.Content.Title != "Digest: 1 notification" {
		t.Fatalf("fallback digest content %+v", b.Spec.Content)
	}
	select {
	case ev := <-rec.Events:
		if !strings.Contains(ev, "TemplateNotFound") || !strings.Contains(ev, `"missing"`) {
			t.Fatalf("event %q", ev)
		}
	default:
		t.Fatal("no Warning Event for the missing template")
	}
}
