package delivery_test

import (
	"context"
	"errors"
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
)

// throttled is a handler whose provider always answers 429 with a
// Retry-After.
type throttled struct {
	retryAfter time.Duration
	sends      int
}

func (h *throttled) NeedsClaim() bool { return true }
func (h *throttled) Admit(*notifyv1.ChannelDelivery, time.Time) (time.Duration, error) {
	return 0, nil
}
func (h *throttled) Send(context.Context, *notifyv1.ChannelDelivery, *channel.Message) (string, channel.Result, error) {
	h.sends++
	return "hook", channel.Result{}, channel.NewRateLimited("429", h.retryAfter, errors.New("429 Too Many Requests"))
}

// TestRetryNeverAfterExpiresAt drives the reconciler with a fake clock: a
// provider's Retry-After is capped at the policy's maxDelay, and a retry
// that would still come after the delivery's expiresAt is scheduled at
// expiresAt, where the delivery ends Expired.
func TestRetryNeverAfterExpiresAt(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	year := 365 * 24 * time.Hour
	policy := retry.Policy{Strategy: retry.Exponential, MaxAttempts: 5, InitialDelay: time.Second, MaxDelay: time.Hour}
	cases := []struct {
		name      string
		expiresIn time.Duration // 0: no expiresAt
		wantNext  time.Duration // after start
		wantSends int
	}{
		{name: "no expiresAt: Retry-After capped at maxDelay", wantNext: time.Hour, wantSends: 1},
		{name: "expiresAt before the capped Retry-After", expiresIn: 10 * time.Minute, wantNext: 10 * time.Minute, wantSends: 1},
		{name: "expiresAt after the capped Retry-After", expiresIn: 2 * time.Hour, wantNext: time.Hour, wantSends: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			scheme := runtime.NewScheme()
			if err := notifyv1.AddToScheme(scheme); err != nil {
				t.Fatal(err)
			}
			d := &notifyv1.ChannelDelivery{
				ObjectMeta: metav1.ObjectMeta{Name: "n-webhook-alice", Namespace: "ns", UID: "uid-1", CreationTimestamp: metav1.NewTime(start)},
				Spec: notifyv1.ChannelDeliverySpec{
					Notification: "n",
					Channel:      notifyv1.ChannelWebhook,
					Recipient:    notifyv1.RecipientSnapshot{Name: "alice"},
					Retry:        policy.Spec(),
				},
			}
			if tc.expiresIn > 0 {
				d.Spec.ExpiresAt = &metav1.Time{Time: start.Add(tc.expiresIn)}
			}
			c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(d).WithStatusSubresource(d).Build()
			clock := testingclock.NewFakeClock(start)
			h := &throttled{retryAfter: year}
			r := &delivery.Reconciler{
				Client: c, Channel: notifyv1.ChannelWebhook, Handler: h, Recorder: events.NewFakeRecorder(100),
				Clock: clock, DefaultRetry: policy, DefaultTimeout: 10 * time.Second,
			}
			req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(d)}
			get := func() *notifyv1.ChannelDelivery {
				var got notifyv1.ChannelDelivery
				if err := c.Get(ctx, req.NamespacedName, &got); err != nil {
					t.Fatal(err)
				}
				return &got
			}

			res, err := r.Reconcile(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			got := get()
			if got.Status.Phase != notifyv1.DeliveryPending || got.Status.NextAttemptTime == nil {
				t.Fatalf("after a 429: phase %s, next attempt %v, want Pending with a next attempt", got.Status.Phase, got.Status.NextAttemptTime)
			}
			if next := got.Status.NextAttemptTime.Sub(start); next != tc.wantNext || res.RequeueAfter != tc.wantNext {
				t.Fatalf("next attempt in %s, requeue after %s; want %s", next, res.RequeueAfter, tc.wantNext)
			}
			t.Log(got.Status.Message)

			// At the scheduled time the delivery is either retried or,
			// when that time is expiresAt, expired without a send.
			clock.SetTime(start.Add(tc.wantNext))
			if _, err := r.Reconcile(ctx, req); err != nil {
				t.Fatal(err)
			}
			got = get()
			if tc.expiresIn > 0 && tc.expiresIn == tc.wantNext {
				if got.Status.Phase != notifyv1.DeliveryExpired || got.Status.Reason != notifyv1.ReasonExpired {
					t.Fatalf("at expiresAt: phase %s, reason %s; want Expired", got.Status.Phase, got.Status.Reason)
				}
				if h.sends != tc.wantSends {
					t.Fatalf("%d sends, want %d", h.sends, tc.wantSends)
				}
				return
			}
			if h.sends != tc.wantSends+1 || got.Status.Attempts != 2 {
				t.Fatalf("at the capped Retry-After: %d sends, %d attempts; want a second attempt", h.sends, got.Status.Attempts)
			}
		})
	}
}

// TestRetryAfterExpiresAtPassed checks a failure recorded after expiresAt
// (the attempt outlived it) expires the delivery at the next reconcile.
func TestRetryAfterExpiresAtPassed(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	scheme := runtime.NewScheme()
	if err := notifyv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	d := &notifyv1.ChannelDelivery{
		ObjectMeta: metav1.ObjectMeta{Name: "n-webhook-bob", Namespace: "ns", UID: "uid-2"},
		Spec: notifyv1.ChannelDeliverySpec{
			Notification: "n", Channel: notifyv1.ChannelWebhook, Recipient: notifyv1.RecipientSnapshot{Name: "bob"},
			ExpiresAt: &metav1.Time{Time: start.Add(time.Second)},
		},
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(d).WithStatusSubresource(d).Build()
	clock := testingclock.NewFakeClock(start)
	// The send takes two seconds on the fake clock, past expiresAt.
	h := &slowThrottled{clock: clock, took: 2 * time.Second}
	r := &delivery.Reconciler{
		Client: c, Channel: notifyv1.ChannelWebhook, Handler: h, Recorder: events.NewFakeRecorder(100),
		Clock: clock, DefaultRetry: retry.Default(), DefaultTimeout: 10 * time.Second,
	}
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(d)}
	res, err := r.Reconcile(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.RequeueAfter <= 0 || res.RequeueAfter > time.Second {
		t.Fatalf("requeue after %s, want a prompt requeue", res.RequeueAfter)
	}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	var got notifyv1.ChannelDelivery
	if err := c.Get(ctx, req.NamespacedName, &got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != notifyv1.DeliveryExpired {
		t.Fatalf("phase %s, want Expired", got.Status.Phase)
	}
}

type slowThrottled struct {
	clock *testingclock.FakeClock
	took  time.Duration
}

func (h *slowThrottled) NeedsClaim() bool { return true }
func (h *slowThrottled) Admit(*notifyv1.ChannelDelivery, time.Time) (time.Duration, error) {
	return 0, nil
}
func (h *slowThrottled) Send(context.Context, *notifyv1.ChannelDelivery, *channel.Message) (string, channel.Result, error) {
	h.clock.Step(h.took)
	return "hook", channel.Result{}, channel.NewRateLimited("429", time.Minute, errors.New("429 Too Many Requests"))
}
