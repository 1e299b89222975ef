package notification

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// decideApproval sets Approved or Rejected once enough answers agree: the
// first outcome to reach the quorum (default 1) wins, and answers are fixed
// once given, so the decision never flips.
func (r *Reconciler) decideApproval(n *notifyv1.Notification) {
	// A decision, once recorded, stands: a pipeline may already have acted
	// on it, and recounting answers that arrive later must not flip it.
	if meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionApproved) ||
		meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionRejected) {
		return
	}
	quorum := int32(1)
	if n.Spec.Quorum != nil {
		quorum = *n.Spec.Quorum
	}
	outcome := map[string]notifyv1.ActionOutcome{}
	for _, a := range n.Spec.Actions {
		outcome[a.ID] = a.Outcome
	}
	votes := map[notifyv1.ActionOutcome]int32{}
	for _, resp := range n.Status.Responses {
		o := outcome[resp.Action]
		if o != notifyv1.OutcomeApprove && o != notifyv1.OutcomeReject {
			continue
		}
		votes[o]++
		if votes[o] < quorum {
			continue
		}
		who := resp.Username
		if who == "" {
			who = resp.Recipient
		}
		if o == notifyv1.OutcomeApprove {
			notifyv1.SetCondition(n, notifyv1.ConditionApproved, metav1.ConditionTrue, notifyv1.ReasonQuorumReached, fmt.Sprintf("approved by %s (%d of %d needed)", who, votes[o], quorum))
			notifyv1.SetCondition(n, notifyv1.ConditionRejected, metav1.ConditionFalse, notifyv1.ReasonQuorumReached, "the notification was approved")
		} else {
			notifyv1.SetCondition(n, notifyv1.ConditionRejected, metav1.ConditionTrue, notifyv1.ReasonQuorumReached, fmt.Sprintf("rejected by %s (%d of %d needed)", who, votes[o], quorum))
			notifyv1.SetCondition(n, notifyv1.ConditionApproved, metav1.ConditionFalse, notifyv1.ReasonQuorumReached, "the notification was rejected")
		}
		return
	}
	msg := fmt.Sprintf("%d answers so far; %d needed", len(n.Status.Responses), quorum)
	notifyv1.SetCondition(n, notifyv1.ConditionApproved, metav1.ConditionUnknown, notifyv1.ReasonAwaitingResponse, msg)
	notifyv1.SetCondition(n, notifyv1.ConditionRejected, metav1.ConditionUnknown, notifyv1.ReasonAwaitingResponse, msg)
}
