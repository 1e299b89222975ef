package notification

import (
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// ackState is who, among a notification's recipients, has acknowledged
// or answered it, as its deliveries say.
type ackState struct {
	// expected are the recipients that can acknowledge: those with an
	// in-app delivery that was or may still be delivered.
	expected map[string]bool
	// acked maps a recipient to when it first acknowledged.
	acked map[string]metav1.Time
	// answered are the recipients that answered an approval.
	answered map[string]bool
	// inApp is whether any delivery is in-app: without one there is
	// nothing to acknowledge.
	inApp bool
}

func newAckState() *ackState {
	return &ackState{expected: map[string]bool{}, acked: map[string]metav1.Time{}, answered: map[string]bool{}}
}

// add counts one delivery of the notification.
func (a *ackState) add(d *notifyv1.ChannelDelivery) {
	who := d.Spec.Recipient.Name
	if d.Status.Response != nil {
		a.answered[who] = true
	}
	if d.Spec.Channel != notifyv1.ChannelInApp {
		return
	}
	a.inApp = true
	switch d.Phase() {
	case notifyv1.DeliverySkipped, notifyv1.DeliveryFailed, notifyv1.DeliveryExpired, notifyv1.DeliveryCancelled:
	default:
		a.expected[who] = true
	}
	if t := d.Status.AcknowledgedTime; t != nil {
		if first, ok := a.acked[who]; !ok || t.Before(&first) {
			a.acked[who] = *t
		}
	}
}

// settled reports whether recipient needs no more reminding: it
// acknowledged, or answered an approval.
func (a *ackState) settled(n *notifyv1.Notification, recipient string) bool {
	if _, ok := a.acked[recipient]; ok {
		return true
	}
	return n.Spec.Type == notifyv1.TypeApproval && a.answered[recipient]
}

// decide sets status.acknowledgement and the Acknowledged condition. Once
// True the condition stays True: an escalation it stopped may have been
// called off by a person relying on it, and recipients added later by an
// escalation step do not undo that.
func (a *ackState) decide(n *notifyv1.Notification) {
	if !a.inApp && len(a.acked) == 0 {
		// Nothing can be acknowledged: no condition that a kubectl wait
		// would wait on forever without saying why.
		if hasInApp(n) {
			notifyv1.SetCondition(n, notifyv1.ConditionAcknowledged, metav1.ConditionFalse, notifyv1.ReasonNothingToAcknowledge,
				"no in-app delivery yet: acknowledgements are given in the inbox")
		}
		return
	}
	required := int32(1)
	if n.Spec.Acknowledge == notifyv1.AcknowledgeAll {
		required = int32(len(a.expected))
		for who := range a.acked {
			if !a.expected[who] {
				required++ // acknowledged, then its delivery expired
			}
		}
	}
	st := &notifyv1.AcknowledgementStatus{Acknowledged: int32(len(a.acked)), Required: required}
	who := make([]string, 0, len(a.acked))
	for name := range a.acked {
		who = append(who, name)
	}
	// First acknowledgement first; names order ties, so that every count
	// gives the same status.
	sort.Slice(who, func(i, j int) bool {
		ti, tj := a.acked[who[i]], a.acked[who[j]]
		if !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return who[i] < who[j]
	})
	if len(who) > 0 {
		t := a.acked[who[0]]
		st.By, st.Time = who[0], &t
	}
	n.Status.Acknowledgement = st
	if meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionAcknowledged) {
		return
	}
	switch {
	case required == 0:
		notifyv1.SetCondition(n, notifyv1.ConditionAcknowledged, metav1.ConditionFalse, notifyv1.ReasonNothingToAcknowledge,
			"no in-app delivery reached a recipient, so nobody can acknowledge it")
	case st.Acknowledged >= required:
		last := who[len(who)-1]
		at := a.acked[last]
		msg := fmt.Sprintf("acknowledged by %s at %s", last, at.UTC().Format("2006-01-02T15:04:05Z"))
		if required > 1 {
			msg = fmt.Sprintf("all %d recipients acknowledged; the last was %s at %s", required, last, at.UTC().Format("2006-01-02T15:04:05Z"))
		}
		notifyv1.SetCondition(n, notifyv1.ConditionAcknowledged, metav1.ConditionTrue, notifyv1.ReasonAcknowledgedBy, msg)
	default:
		notifyv1.SetCondition(n, notifyv1.ConditionAcknowledged, metav1.ConditionFalse, notifyv1.ReasonAwaitingAcknowledgement,
			fmt.Sprintf("%d of %d recipients acknowledged (acknowledge: %s)", st.Acknowledged, required, policyOf(n)))
	}
}

func policyOf(n *notifyv1.Notification) notifyv1.AcknowledgePolicy {
	if n.Spec.Acknowledge == "" {
		return notifyv1.AcknowledgeAny
	}
	return n.Spec.Acknowledge
}

// hasInApp reports whether the notification or one of its escalation
// steps delivers in-app.
func hasInApp(n *notifyv1.Notification) bool {
	for _, ch := range n.Spec.Channels {
		if ch == notifyv1.ChannelInApp {
			return true
		}
	}
	for _, s := range n.Spec.Escalation {
		for _, ch := range s.Channels {
			if ch == notifyv1.ChannelInApp {
				return true
			}
		}
	}
	return false
}
