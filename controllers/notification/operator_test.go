package notification

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

func TestResetForRetry(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	later := &metav1.Time{Time: now.Add(time.Hour)}
	past := &metav1.Time{Time: now.Add(-time.Minute)}
	for _, tc := range []struct {
		name         string
		phase        notifyv1.DeliveryPhase
		specExpires  *metav1.Time
		wantDeadline *metav1.Time
	}{
		{"failed, no deadline", notifyv1.DeliveryFailed, nil, nil},
		{"failed, deadline ahead keeps it", notifyv1.DeliveryFailed, later, nil},
		{"failed, deadline passed gets a new one", notifyv1.DeliveryFailed, past, later},
		{"expired gets a new deadline", notifyv1.DeliveryExpired, past, later},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &notifyv1.ChannelDelivery{}
			d.Spec.ExpiresAt = tc.specExpires
			d.Status = notifyv1.ChannelDeliveryStatus{
				Phase: tc.phase, Reason: "AttemptsExhausted", Attempts: 4,
				History:           []notifyv1.Attempt{{Number: 1}, {Number: 2}, {Number: 3}, {Number: 4}},
				CompletionTime:    &metav1.MicroTime{Time: now.Add(-time.Hour)},
				ProviderMessageID: "wamid.1",
				Receipt:           &notifyv1.DeliveryReceipt{State: notifyv1.ReceiptFailed},
			}
			resetForRetry(d, "v1", later, now)
			s := d.Status
			if s.Phase != notifyv1.DeliveryPending || s.Reason != notifyv1.ReasonRetried {
				t.Errorf("phase %s reason %s, want Pending Retried", s.Phase, s.Reason)
			}
			if s.Attempts != 4 || s.AttemptsBeforeRetry != 4 || len(s.History) != 4 {
				t.Errorf("attempts %d, before retry %d, history %d: want 4, 4, 4", s.Attempts, s.AttemptsBeforeRetry, len(s.History))
			}
			if s.Receipt != nil || s.ProviderMessageID != "" {
				t.Errorf("receipt %v, message id %q: want both cleared, a late receipt must not judge the new attempts", s.Receipt, s.ProviderMessageID)
			}
			if s.CompletionTime != nil || s.NextAttemptTime != nil {
				t.Errorf("completion %v next %v, want both cleared", s.CompletionTime, s.NextAttemptTime)
			}
			if (s.ExpiresAt == nil) != (tc.wantDeadline == nil) || (s.ExpiresAt != nil && !s.ExpiresAt.Equal(tc.wantDeadline)) {
				t.Errorf("status.expiresAt %v, want %v", s.ExpiresAt, tc.wantDeadline)
			}
		})
	}
}

func TestRedriveDeadline(t *testing.T) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := created.Add(5 * time.Hour)
	n := &notifyv1.Notification{}
	n.CreationTimestamp = metav1.Time{Time: created}
	if got := redriveDeadline(n, now); got != nil {
		t.Errorf("no expiresAt: got %v, want none", got)
	}
	n.Spec.ExpiresAt = &metav1.Time{Time: created.Add(30 * time.Minute)}
	if got := redriveDeadline(n, now); !got.Equal(&metav1.Time{Time: now.Add(30 * time.Minute)}) {
		t.Errorf("got %v, want the original 30m window after the re-drive", got)
	}
}

func TestRetryMatches(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rec := &notifyv1.RetryRecord{Value: "x", Time: metav1.MicroTime{Time: at}, Channel: notifyv1.ChannelWebhook, Deliveries: 1}
	mk := func(ch notifyv1.Channel, phase notifyv1.DeliveryPhase, reason string) *notifyv1.ChannelDelivery {
		d := &notifyv1.ChannelDelivery{}
		d.Spec.Channel = ch
		d.Status.Phase, d.Status.Reason = phase, reason
		return d
	}
	for _, tc := range []struct {
		name  string
		d     *notifyv1.ChannelDelivery
		match bool
	}{
		{"failed webhook", mk(notifyv1.ChannelWebhook, notifyv1.DeliveryFailed, "x"), true},
		{"expired webhook", mk(notifyv1.ChannelWebhook, notifyv1.DeliveryExpired, "Expired"), true},
		{"other channel", mk(notifyv1.ChannelEmail, notifyv1.DeliveryFailed, "x"), false},
		{"succeeded", mk(notifyv1.ChannelWebhook, notifyv1.DeliverySucceeded, ""), false},
		{"cancelled", mk(notifyv1.ChannelWebhook, notifyv1.DeliveryCancelled, "Cancelled"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rec.Matches(tc.d); got != tc.match {
				t.Errorf("Matches = %v, want %v", got, tc.match)
			}
		})
	}
	withReason := &notifyv1.RetryRecord{Reason: "RecipientRejected"}
	if withReason.Matches(mk(notifyv1.ChannelEmail, notifyv1.DeliveryFailed, "AttemptsExhausted")) {
		t.Error("a reason filter matched another reason")
	}
}

func TestAwaitingRedrive(t *testing.T) {
	m := &progressMemo{}
	d := &notifyv1.ChannelDelivery{}
	d.UID, d.ResourceVersion = "u1", "10"
	if awaitingRedrive(m, d) {
		t.Error("a delivery not re-driven counts as awaiting")
	}
	m.redriven.Store(d.UID, "10")
	if !awaitingRedrive(m, d) {
		t.Error("the cache's copy from before the re-drive does not count as awaiting")
	}
	d.ResourceVersion = "11"
	if awaitingRedrive(m, d) {
		t.Error("a later version (re-driven, or failed again by a receipt) counts as awaiting")
	}
}
