package notification

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// decideApproval sets Approved or Rejected once enough people agree: the
// first outcome that quorum (default 1) distinct Kubernetes users chose
// wins, and answers are fixed once given, so the decision never flips.
//
// all is every answer, oldest first, not only the ones status.responses
// keeps: the decision is the same however many answers there are.
//
// A vote is a user's, not a Recipient's: the inbox records the user who
// answered with every answer, and one user holding several Recipients (or
// answering through each of them) counts once, with their first answer.
func (r *Reconciler) decideApproval(n *notifyv1.Notification, all []notifyv1.Response) {
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
	voted := map[string]bool{}
	votes := map[notifyv1.ActionOutcome]int32{}
	for _, resp := range all {
		who := voter(resp)
		if voted[who] {
			continue
		}
		voted[who] = true
		o := outcome[resp.Action]
		if o != notifyv1.OutcomeApprove && o != notifyv1.OutcomeReject {
			continue
		}
		votes[o]++
		if votes[o] < quorum {
			continue
		}
		name := resp.Username
		if name == "" {
			name = resp.Recipient
		}
		tally := fmt.Sprintf("%d of %d users needed; %d answers from %d users", votes[o], quorum, len(all), countVoters(all))
		if o == notifyv1.OutcomeApprove {
			notifyv1.SetCondition(n, notifyv1.ConditionApproved, metav1.ConditionTrue, notifyv1.ReasonQuorumReached, fmt.Sprintf("approved by %s (%s)", name, tally))
			notifyv1.SetCondition(n, notifyv1.ConditionRejected, metav1.ConditionFalse, notifyv1.ReasonQuorumReached, "the notification was approved")
		} else {
			notifyv1.SetCondition(n, notifyv1.ConditionRejected, metav1.ConditionTrue, notifyv1.ReasonQuorumReached, fmt.Sprintf("rejected by %s (%s)", name, tally))
			notifyv1.SetCondition(n, notifyv1.ConditionApproved, metav1.ConditionFalse, notifyv1.ReasonQuorumReached, "the notification was rejected")
		}
		return
	}
	msg := fmt.Sprintf("%d answers from %d users so far; approve %d of %d users needed, reject %d of %d",
		len(all), len(voted), votes[notifyv1.OutcomeApprove], quorum, votes[notifyv1.OutcomeReject], quorum)
	if len(all) > len(n.Status.Responses) {
		msg += fmt.Sprintf("; status.responses shows the first %d", len(n.Status.Responses))
	}
	notifyv1.SetCondition(n, notifyv1.ConditionApproved, metav1.ConditionUnknown, notifyv1.ReasonAwaitingResponse, msg)
	notifyv1.SetCondition(n, notifyv1.ConditionRejected, metav1.ConditionUnknown, notifyv1.ReasonAwaitingResponse, msg)
}

// voter names who gave an answer: the Kubernetes user the inbox recorded.
// An answer without one (written before usernames were recorded) counts as
// its Recipient's, which can never be mistaken for a user's name.
func voter(resp notifyv1.Response) string {
	if resp.Username != "" {
		return "user:" + resp.Username
	}
	return "recipient:" + resp.Recipient
}

func countVoters(all []notifyv1.Response) int {
	seen := map[string]bool{}
	for _, resp := range all {
		seen[voter(resp)] = true
	}
	return len(seen)
}

// capResponses keeps the oldest notifyv1.MaxResponses answers for
// status.responses; the decision is taken over all of them.
func capResponses(all []notifyv1.Response) []notifyv1.Response {
	if len(all) > notifyv1.MaxResponses {
		return all[:notifyv1.MaxResponses:notifyv1.MaxResponses]
	}
	return all
}
