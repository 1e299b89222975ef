package notification

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

func approvalNotification(responses ...notifyv1.Response) *notifyv1.Notification {
	return &notifyv1.Notification{
		Spec: notifyv1.NotificationSpec{
			Type: notifyv1.TypeApproval,
			Actions: []notifyv1.Action{
				{ID: "approve", Label: "Approve", Outcome: notifyv1.OutcomeApprove},
				{ID: "reject", Label: "Reject", Outcome: notifyv1.OutcomeReject},
			},
		},
		Status: notifyv1.NotificationStatus{Responses: responses},
	}
}

func TestApprovalDecisionNeverFlips(t *testing.T) {
	r := &Reconciler{}
	at := metav1.NewTime(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	n := approvalNotification(notifyv1.Response{Recipient: "alice", Action: "approve", Time: at})
	r.decideApproval(n)
	if !meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionApproved) {
		t.Fatalf("want Approved after alice's answer: %+v", n.Status.Conditions)
	}
	// A rejection in the same second that sorts before alice's answer must
	// not turn the recorded decision around.
	n.Status.Responses = append([]notifyv1.Response{{Recipient: "aaron", Action: "reject", Time: at}}, n.Status.Responses...)
	r.decideApproval(n)
	if !meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionApproved) ||
		meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionRejected) {
		t.Fatalf("decision flipped: %+v", n.Status.Conditions)
	}
}
