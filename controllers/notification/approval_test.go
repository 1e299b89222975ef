package notification

import (
	"fmt"
	"strings"
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
	r.decideApproval(n, n.Status.Responses)
	if !meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionApproved) {
		t.Fatalf("want Approved after alice's answer: %+v", n.Status.Conditions)
	}
	// A rejection in the same second that sorts before alice's answer must
	// not turn the recorded decision around.
	n.Status.Responses = append([]notifyv1.Response{{Recipient: "aaron", Action: "reject", Time: at}}, n.Status.Responses...)
	r.decideApproval(n, n.Status.Responses)
	if !meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionApproved) ||
		meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionRejected) {
		t.Fatalf("decision flipped: %+v", n.Status.Conditions)
	}
}

func quorum(q int32) *int32 { return &q }

// One person answering through two of their Recipients is one voice: a
// quorum of two needs two Kubernetes users.
func TestApprovalQuorumCountsUsersNotResponses(t *testing.T) {
	r := &Reconciler{}
	at := metav1.NewTime(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	all := []notifyv1.Response{
		{Recipient: "mallory-work", Username: "mallory", Action: "approve", Time: at},
		{Recipient: "mallory-home", Username: "mallory", Action: "approve", Time: at},
	}
	n := approvalNotification()
	n.Spec.Quorum = quorum(2)
	r.decideApproval(n, all)
	if meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionApproved) {
		t.Fatalf("one user with two Recipients met quorum 2 alone: %+v", n.Status.Conditions)
	}
	c := meta.FindStatusCondition(n.Status.Conditions, notifyv1.ConditionApproved)
	if c == nil || c.Reason != notifyv1.ReasonAwaitingResponse || !strings.Contains(c.Message, "1 of 2") {
		t.Fatalf("want AwaitingResponse naming 1 of 2 users: %+v", c)
	}
	// A second user decides.
	all = append(all, notifyv1.Response{Recipient: "bob", Username: "bob", Action: "approve", Time: metav1.NewTime(at.Add(time.Second))})
	r.decideApproval(n, all)
	if !meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionApproved) {
		t.Fatalf("want Approved once two users agree: %+v", n.Status.Conditions)
	}
}

// A user's first answer is their vote: answering the other way through a
// second Recipient neither adds to the other side nor withdraws the first.
func TestApprovalUserVotesOnce(t *testing.T) {
	r := &Reconciler{}
	at := metav1.NewTime(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	n := approvalNotification()
	n.Spec.Quorum = quorum(2)
	r.decideApproval(n, []notifyv1.Response{
		{Recipient: "mallory-work", Username: "mallory", Action: "approve", Time: at},
		{Recipient: "mallory-home", Username: "mallory", Action: "reject", Time: metav1.NewTime(at.Add(time.Second))},
		{Recipient: "bob", Username: "bob", Action: "reject", Time: metav1.NewTime(at.Add(2 * time.Second))},
	})
	if meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionRejected) ||
		meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionApproved) {
		t.Fatalf("mallory voted twice: %+v", n.Status.Conditions)
	}
}

// status.responses is bounded; the decision still counts every answer, and
// the condition says how many there were.
func TestApprovalResponsesCappedDecisionCountsAll(t *testing.T) {
	r := &Reconciler{}
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	const users = notifyv1.MaxResponses + 50
	var all []notifyv1.Response
	for i := 0; i < users; i++ {
		all = append(all, notifyv1.Response{
			Recipient: fmt.Sprintf("r%04d", i), Username: fmt.Sprintf("u%04d", i),
			Action: "approve", Time: metav1.NewTime(at.Add(time.Duration(i) * time.Second)),
		})
	}
	n := approvalNotification()
	n.Spec.Quorum = quorum(users)
	n.Status.Responses = capResponses(all)
	r.decideApproval(n, all)
	if len(n.Status.Responses) != notifyv1.MaxResponses {
		t.Fatalf("status.responses holds %d, want the cap %d", len(n.Status.Responses), notifyv1.MaxResponses)
	}
	if n.Status.Responses[0].Recipient != "r0000" {
		t.Fatalf("want the oldest answers kept, got %s first", n.Status.Responses[0].Recipient)
	}
	c := meta.FindStatusCondition(n.Status.Conditions, notifyv1.ConditionApproved)
	if c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("want Approved by %d users beyond the cap: %+v", users, c)
	}
	if !strings.Contains(c.Message, fmt.Sprintf("%d answers", users)) {
		t.Fatalf("condition message does not say how many answers there were: %q", c.Message)
	}
	// A decision recorded beyond the cap still never flips.
	all = append(all, notifyv1.Response{Recipient: "late", Username: "late", Action: "reject", Time: metav1.NewTime(at.Add(time.Hour))})
	r.decideApproval(n, all)
	if meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionRejected) {
		t.Fatalf("decision flipped: %+v", n.Status.Conditions)
	}
}
