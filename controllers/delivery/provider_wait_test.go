package delivery_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	testingclock "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/controllers/delivery"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/retry"
	"github.com/herald-dev/herald/internal/sendercache"
)

// scripted is a provider's sender that answers every send with err (nil:
// delivered) and counts the sends.
type scripted struct {
	err   error
	sends int
}

func (s *scripted) Send(context.Context, *channel.Message) (channel.Result, error) {
	s.sends++
	return channel.Result{}, s.err
}

type waitFixture struct {
	t      *testing.T
	start  time.Time
	clock  *testingclock.FakeClock
	sender *scripted
	entry  *sendercache.Entry
	r      *delivery.Reconciler
	c      client.Client
	req    ctrl.Request
}

func newWaitFixture(t *testing.T, mutate func(*notifyv1.ChannelDelivery)) *waitFixture {
	t.Helper()
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	scheme := runtime.NewScheme()
	if err := notifyv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	policy := retry.Policy{Strategy: retry.Fixed, MaxAttempts: 2, InitialDelay: time.Second, MaxDelay: time.Minute}
	d := &notifyv1.ChannelDelivery{
		ObjectMeta: metav1.ObjectMeta{Name: "n-webhook-alice", Namespace: "ns", UID: "uid-1", CreationTimestamp: metav1.NewTime(start)},
		Spec: notifyv1.ChannelDeliverySpec{
			Notification: "n",
			Channel:      notifyv1.ChannelWebhook,
			Recipient:    notifyv1.RecipientSnapshot{Name: "alice"},
			Retry:        policy.Spec(),
		},
	}
	if mutate != nil {
		mutate(d)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(d).WithStatusSubresource(d).Build()
	clock := testingclock.NewFakeClock(start)
	sender := &scripted{}
	entry := &sendercache.Entry{Name: "hook", Namespace: "ns", Channel: notifyv1.ChannelWebhook, Default: true, Ready: true, Sender: sender}
	cache := sendercache.NewCache()
	cache.Set(entry)
	h := &delivery.ProviderHandler{Channel: notifyv1.ChannelWebhook, Registry: cache, TripFor: 5 * time.Minute, Clock: clock}
	r := &delivery.Reconciler{
		Client: c, Channel: notifyv1.ChannelWebhook, Handler: h, Recorder: events.NewFakeRecorder(100),
		Clock: clock, DefaultRetry: policy, DefaultTimeout: 10 * time.Second,
	}
	return &waitFixture{t: t, start: start, clock: clock, sender: sender, entry: entry, r: r, c: c,
		req: ctrl.Request{NamespacedName: client.ObjectKeyFromObject(d)}}
}

func (f *waitFixture) reconcile() ctrl.Result {
	f.t.Helper()
	res, err := f.r.Reconcile(context.Background(), f.req)
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

func (f *waitFixture) get() *notifyv1.ChannelDelivery {
	f.t.Helper()
	var d notifyv1.ChannelDelivery
	if err := f.c.Get(context.Background(), f.req.NamespacedName, &d); err != nil {
		f.t.Fatal(err)
	}
	return &d
}

// TestTrippedProviderWaitUsesNoAttempt: a delivery whose only provider has
// an open circuit waits for it to close, however many times it is
// reconciled meanwhile, with a status that says why, and uses none of its
// attempts; when the circuit closes it is delivered on its first attempt.
// (It used to count a failed attempt per reconcile and end Failed,
// ProviderNotReady, while the provider itself was fine a minute later.)
func TestTrippedProviderWaitUsesNoAttempt(t *testing.T) {
	f := newWaitFixture(t, nil)
	until := f.start.Add(5 * time.Minute)
	f.entry.Trip(until, "the provider rejected a delivery: Permanent (http 401)")

	for i, at := range []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Minute} {
		f.clock.SetTime(f.start.Add(at))
		res := f.reconcile()
		if want := until.Sub(f.start.Add(at)); res.RequeueAfter != want {
			t.Fatalf("reconcile %d: requeue after %s, want %s (when the circuit closes)", i, res.RequeueAfter, want)
		}
		d := f.get()
		if d.Status.Attempts != 0 || len(d.Status.History) != 0 || f.sender.sends != 0 {
			t.Fatalf("reconcile %d: %d attempts, %d history entries, %d sends; want none", i, d.Status.Attempts, len(d.Status.History), f.sender.sends)
		}
		if d.Status.Phase != notifyv1.DeliveryPending || d.Status.Reason != notifyv1.ReasonWaitingForProvider ||
			!strings.Contains(d.Status.Message, "hook is skipped until 2026-03-01T12:05:00Z") || !strings.Contains(d.Status.Message, "http 401") {
			t.Fatalf("reconcile %d: status %s/%s %q; want Pending, WaitingForProvider, saying which provider, until when and why", i, d.Status.Phase, d.Status.Reason, d.Status.Message)
		}
	}

	f.clock.SetTime(until)
	f.reconcile()
	d := f.get()
	if d.Status.Phase != notifyv1.DeliverySucceeded || d.Status.Attempts != 1 || f.sender.sends != 1 {
		t.Fatalf("after the circuit closed: phase %s, %d attempts, %d sends; want Succeeded on attempt 1", d.Status.Phase, d.Status.Attempts, f.sender.sends)
	}
}

// TestTrippedProviderWaitEndsAtExpiresAt: waiting never outlasts the
// delivery's expiresAt; it ends Expired then, without a send.
func TestTrippedProviderWaitEndsAtExpiresAt(t *testing.T) {
	f := newWaitFixture(t, func(d *notifyv1.ChannelDelivery) {
		d.Spec.ExpiresAt = &metav1.Time{Time: time.Date(2026, 3, 1, 12, 1, 0, 0, time.UTC)}
	})
	f.entry.Trip(f.start.Add(5*time.Minute), "rejected")
	if res := f.reconcile(); res.RequeueAfter != time.Minute {
		t.Fatalf("requeue after %s, want 1m (expiresAt)", res.RequeueAfter)
	}
	f.clock.SetTime(f.start.Add(time.Minute))
	f.reconcile()
	if d := f.get(); d.Status.Phase != notifyv1.DeliveryExpired || d.Status.Attempts != 0 || f.sender.sends != 0 {
		t.Fatalf("phase %s, %d attempts, %d sends; want Expired with none", d.Status.Phase, d.Status.Attempts, f.sender.sends)
	}
}

// TestNotReadyProviderUsesAttempts: a provider that is not Ready through its
// own configuration does not heal by waiting, so each try still counts and
// the delivery ends Failed, ProviderNotReady, after its attempts.
func TestNotReadyProviderUsesAttempts(t *testing.T) {
	f := newWaitFixture(t, nil)
	f.entry.Ready, f.entry.Reason, f.entry.Message = false, notifyv1.ReasonSecretNotFound, `Secret "absent" not found`
	f.reconcile()
	if d := f.get(); d.Status.Attempts != 1 || d.Status.Reason != notifyv1.ReasonProviderNotReady {
		t.Fatalf("after one try: %d attempts, reason %s; want 1, ProviderNotReady", d.Status.Attempts, d.Status.Reason)
	}
	f.clock.Step(time.Second)
	f.reconcile()
	if d := f.get(); d.Status.Phase != notifyv1.DeliveryFailed || d.Status.Attempts != 2 || d.Status.Reason != notifyv1.ReasonProviderNotReady {
		t.Fatalf("phase %s, %d attempts, reason %s; want Failed after 2, ProviderNotReady", d.Status.Phase, d.Status.Attempts, d.Status.Reason)
	}
}

// TestRecipientFaultLeavesProviderClosed: a recipient's own endpoint
// refusing ends that delivery with RecipientRejected and leaves the
// provider's circuit closed; a provider fault opens it.
func TestRecipientFaultLeavesProviderClosed(t *testing.T) {
	refused := channel.NewPermanent("http 403", errors.New("POST http://127.0.0.1: 403 Forbidden"))
	refused.Scope = channel.ScopeRecipient
	f := newWaitFixture(t, nil)
	f.sender.err = refused
	f.reconcile()
	d := f.get()
	if d.Status.Phase != notifyv1.DeliveryFailed || d.Status.Reason != notifyv1.ReasonRecipientRejected || d.Status.Attempts != 1 {
		t.Fatalf("phase %s, reason %s, %d attempts; want Failed, RecipientRejected, 1", d.Status.Phase, d.Status.Reason, d.Status.Attempts)
	}
	if tripped, why := f.entry.Tripped(f.clock.Now()); tripped {
		t.Fatalf("a recipient's refusal opened the provider's circuit: %s", why)
	}

	rejected := channel.NewPermanent("http 401", errors.New("401 Unauthorized"))
	rejected.Scope = channel.ScopeProvider
	f = newWaitFixture(t, nil)
	f.sender.err = rejected
	f.reconcile()
	if tripped, _ := f.entry.Tripped(f.clock.Now()); !tripped {
		t.Fatal("a provider fault left the circuit closed")
	}
}
