package view

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

func TestLive(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	past := metav1.NewTime(now.Add(-time.Minute))
	inApp := func(f func(*notifyv1.ChannelDelivery)) *notifyv1.ChannelDelivery {
		d := &notifyv1.ChannelDelivery{Spec: notifyv1.ChannelDeliverySpec{Channel: notifyv1.ChannelInApp,
			Recipient: notifyv1.RecipientSnapshot{Name: "alice", Username: "alice"}}}
		f(d)
		return d
	}
	for _, tc := range []struct {
		name string
		d    *notifyv1.ChannelDelivery
		want bool
	}{
		{"recorded Succeeded", inApp(func(d *notifyv1.ChannelDelivery) { d.Status.Phase = notifyv1.DeliverySucceeded }), true},
		{"delivered on create, no status", inApp(func(d *notifyv1.ChannelDelivery) { d.Spec.DeliveredOnCreate = true }), true},
		{"delivered on create, read since", inApp(func(d *notifyv1.ChannelDelivery) {
			d.Spec.DeliveredOnCreate = true
			d.Status.ReadTime = &past
		}), true},
		{"pending (deferred by quiet hours)", inApp(func(*notifyv1.ChannelDelivery) {}), false},
		{"failed", inApp(func(d *notifyv1.ChannelDelivery) { d.Status.Phase = notifyv1.DeliveryFailed }), false},
		{"delivered on create, expired", inApp(func(d *notifyv1.ChannelDelivery) {
			d.Spec.DeliveredOnCreate = true
			d.Spec.ExpiresAt = &past
		}), false},
		{"delivered on create, being deleted", inApp(func(d *notifyv1.ChannelDelivery) {
			d.Spec.DeliveredOnCreate = true
			d.DeletionTimestamp = &past
		}), false},
		{"email", inApp(func(d *notifyv1.ChannelDelivery) {
			d.Spec.Channel = notifyv1.ChannelEmail
			d.Status.Phase = notifyv1.DeliverySucceeded
		}), false},
	} {
		if got := Live(tc.d, now); got != tc.want {
			t.Errorf("%s: Live = %v, want %v", tc.name, got, tc.want)
		}
	}
}
