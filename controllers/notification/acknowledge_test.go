package notification

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

func inAppDelivery(recipient string, phase notifyv1.DeliveryPhase, ackedAt *time.Time) *notifyv1.ChannelDelivery {
	d := &notifyv1.ChannelDelivery{
		Spec:   notifyv1.ChannelDeliverySpec{Channel: notifyv1.ChannelInApp, Recipient: notifyv1.RecipientSnapshot{Name: recipient}},
		Status: notifyv1.ChannelDeliveryStatus{Phase: phase},
	}
	if ackedAt != nil {
		t := metav1.NewTime(*ackedAt)
		d.Status.AcknowledgedTime = &t
	}
	return d
}

func TestAcknowledgement(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	type want struct {
		status    metav1.ConditionStatus
		reason    string
		message   string
		acked, of int32
		by        string
	}
	tests := []struct {
		name       string
		policy     notifyv1.AcknowledgePolicy
		channels   []notifyv1.Channel
		deliveries []*notifyv1.ChannelDelivery
		want       *want // nil: no condition
	}{
		{"nobody yet", "", []notifyv1.Channel{notifyv1.ChannelInApp}, []*notifyv1.ChannelDelivery{
			inAppDelivery("alice", notifyv1.DeliverySucceeded, nil), inAppDelivery("bob", notifyv1.DeliverySucceeded, nil)},
			&want{metav1.ConditionFalse, notifyv1.ReasonAwaitingAcknowledgement, "0 of 1 recipients acknowledged (acknowledge: Any)", 0, 1, ""}},
		{"any: the first is enough", notifyv1.AcknowledgeAny, []notifyv1.Channel{notifyv1.ChannelInApp}, []*notifyv1.ChannelDelivery{
			inAppDelivery("alice", notifyv1.DeliverySucceeded, nil), inAppDelivery("bob", notifyv1.DeliverySucceeded, &t1)},
			&want{metav1.ConditionTrue, notifyv1.ReasonAcknowledgedBy, "acknowledged by bob at 2026-12-01T14:01:00Z", 1, 1, "bob"}},
		{"all: one of two", notifyv1.AcknowledgeAll, []notifyv1.Channel{notifyv1.ChannelInApp}, []*notifyv1.ChannelDelivery{
			inAppDelivery("alice", notifyv1.DeliverySucceeded, nil), inAppDelivery("bob", notifyv1.DeliverySucceeded, &t1)},
			&want{metav1.ConditionFalse, notifyv1.ReasonAwaitingAcknowledgement, "1 of 2 recipients acknowledged (acknowledge: All)", 1, 2, "bob"}},
		{"all: a skipped recipient is not waited for", notifyv1.AcknowledgeAll, []notifyv1.Channel{notifyv1.ChannelInApp}, []*notifyv1.ChannelDelivery{
			inAppDelivery("alice", notifyv1.DeliverySkipped, nil), inAppDelivery("bob", notifyv1.DeliverySucceeded, &t1), inAppDelivery("carol", notifyv1.DeliveryPending, &t0)},
			&want{metav1.ConditionTrue, notifyv1.ReasonAcknowledgedBy, "all 2 recipients acknowledged; the last was bob at 2026-12-01T14:01:00Z", 2, 2, "carol"}},
		{"all: nobody reached", notifyv1.AcknowledgeAll, []notifyv1.Channel{notifyv1.ChannelInApp}, []*notifyv1.ChannelDelivery{
			inAppDelivery("alice", notifyv1.DeliveryFailed, nil)},
			&want{metav1.ConditionFalse, notifyv1.ReasonNothingToAcknowledge, "no in-app delivery reached a recipient", 0, 0, ""}},
		{"no in-app channel: no condition", "", []notifyv1.Channel{notifyv1.ChannelEmail}, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := &notifyv1.Notification{Spec: notifyv1.NotificationSpec{Acknowledge: tc.policy, Channels: tc.channels}}
			a := newAckState()
			for _, d := range tc.deliveries {
				a.add(d)
			}
			a.decide(n)
			c := meta.FindStatusCondition(n.Status.Conditions, notifyv1.ConditionAcknowledged)
			if tc.want == nil {
				if c != nil {
					t.Fatalf("condition %+v, want none", c)
				}
				return
			}
			if c == nil || c.Status != tc.want.status || c.Reason != tc.want.reason || !strings.HasPrefix(c.Message, tc.want.message) {
				t.Fatalf("condition %+v, want %s/%s %q", c, tc.want.status, tc.want.reason, tc.want.message)
			}
			st := n.Status.Acknowledgement
			if st == nil || st.Acknowledged != tc.want.acked || st.Required != tc.want.of || st.By != tc.want.by {
				t.Fatalf("status.acknowledgement %+v, want %d of %d by %q", st, tc.want.acked, tc.want.of, tc.want.by)
			}
		})
	}
}

// Once acknowledged, a notification stays acknowledged: recipients that an
// escalation step adds later do not undo it.
func TestAcknowledgedStaysTrue(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC)
	n := &notifyv1.Notification{Spec: notifyv1.NotificationSpec{Acknowledge: notifyv1.AcknowledgeAll, Channels: []notifyv1.Channel{notifyv1.ChannelInApp}}}
	a := newAckState()
	a.add(inAppDelivery("alice", notifyv1.DeliverySucceeded, &t0))
	a.decide(n)
	a.add(inAppDelivery("sre-lead", notifyv1.DeliveryPending, nil))
	a.decide(n)
	if !meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionAcknowledged) {
		t.Fatalf("conditions %+v", n.Status.Conditions)
	}
}

// An approval answered by a recipient needs no reminder to that recipient;
// an informational notification needs an acknowledgement.
func TestSettled(t *testing.T) {
	answered := inAppDelivery("alice", notifyv1.DeliverySucceeded, nil)
	answered.Status.Response = &notifyv1.InboxResponse{Action: "approve"}
	a := newAckState()
	a.add(answered)
	a.add(inAppDelivery("bob", notifyv1.DeliverySucceeded, nil))
	approval := &notifyv1.Notification{Spec: notifyv1.NotificationSpec{Type: notifyv1.TypeApproval}}
	info := &notifyv1.Notification{Spec: notifyv1.NotificationSpec{Type: notifyv1.TypeInformational}}
	if !a.settled(approval, "alice") || a.settled(approval, "bob") || a.settled(info, "alice") {
		t.Fatal("settled: an answer settles an approval only")
	}
}
