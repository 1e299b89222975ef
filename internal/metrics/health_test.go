package metrics

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

func TestOverdue(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(-d)} }
	micro := func(d time.Duration) *metav1.MicroTime { return &metav1.MicroTime{Time: now.Add(-d)} }
	for _, tc := range []struct {
		name string
		d    notifyv1.ChannelDelivery
		want bool
	}{
		{"new", notifyv1.ChannelDelivery{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: *ago(time.Second)}}, false},
		{"created long ago, never tried", notifyv1.ChannelDelivery{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: *ago(2 * time.Minute)}}, true},
		{"finished", notifyv1.ChannelDelivery{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: *ago(time.Hour)},
			Status: notifyv1.ChannelDeliveryStatus{Phase: notifyv1.DeliverySucceeded}}, false},
		{"retry due in the future", notifyv1.ChannelDelivery{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: *ago(time.Hour)},
			Status: notifyv1.ChannelDeliveryStatus{Phase: notifyv1.DeliveryPending, NextAttemptTime: micro(-time.Minute)}}, false},
		{"retry overdue", notifyv1.ChannelDelivery{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: *ago(time.Hour)},
			Status: notifyv1.ChannelDeliveryStatus{Phase: notifyv1.DeliveryPending, NextAttemptTime: micro(2 * time.Minute)}}, true},
		{"waiting for a provider", notifyv1.ChannelDelivery{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: *ago(time.Hour)},
			Status: notifyv1.ChannelDeliveryStatus{Phase: notifyv1.DeliveryPending, Reason: notifyv1.ReasonWaitingForProvider}}, false},
		{"quiet hours ahead", notifyv1.ChannelDelivery{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: *ago(time.Hour)},
			Spec: notifyv1.ChannelDeliverySpec{NotBefore: ago(-time.Hour)}}, false},
		{"past its deadline, even while waiting", notifyv1.ChannelDelivery{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: *ago(time.Hour)},
			Spec:   notifyv1.ChannelDeliverySpec{ExpiresAt: ago(2 * time.Minute)},
			Status: notifyv1.ChannelDeliveryStatus{Phase: notifyv1.DeliveryPending, Reason: notifyv1.ReasonWaitingForProvider}}, true},
		{"re-driven with a new deadline", notifyv1.ChannelDelivery{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: *ago(time.Second)},
			Spec:   notifyv1.ChannelDeliverySpec{ExpiresAt: ago(2 * time.Hour)},
			Status: notifyv1.ChannelDeliveryStatus{Phase: notifyv1.DeliveryPending, ExpiresAt: ago(-time.Hour)}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Overdue(&tc.d, now); got != tc.want {
				t.Errorf("Overdue = %v, want %v", got, tc.want)
			}
		})
	}
}
