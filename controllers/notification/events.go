package notification

import (
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/metrics"
)

// maxRejectedEvents bounds the Events for deliveries not created.
const maxRejectedEvents = 10

// announce emits Events for the transitions users care about: dispatch
// problems and completion. Successful deliveries get none; at scale that
// would double the API writes.
func (r *Reconciler) announce(n *notifyv1.Notification, before *notifyv1.NotificationStatus) {
	if len(n.Status.Unresolved) > 0 && len(before.Unresolved) == 0 {
		r.Recorder.Eventf(n, nil, "Warning", notifyv1.ReasonUnknownRecipients, "Dispatch",
			"no Recipient named %s in namespace %s", strings.Join(n.Status.Unresolved, ", "), n.Namespace)
	}
	if len(n.Status.Rejected) > 0 && len(before.Rejected) == 0 {
		// One Event per delivery not created, the first few of them: the
		// rest are in status.rejected and its counts.
		for i, rj := range n.Status.Rejected {
			if i == maxRejectedEvents {
				r.Recorder.Eventf(n, nil, "Warning", notifyv1.ReasonDeliveryRejected, "Dispatch",
					"%d more deliveries not created; see status.rejected", len(n.Status.Rejected)-i)
				break
			}
			r.Recorder.Eventf(n, nil, "Warning", rj.Reason, "Dispatch",
				"delivery to %q on %s not created, counted as failed: %s", rj.Recipient, rj.Channel, rj.Message)
		}
	}
	if c := meta.FindStatusCondition(n.Status.Conditions, notifyv1.ConditionDispatched); c != nil && c.Status == metav1.ConditionFalse {
		if old := meta.FindStatusCondition(before.Conditions, notifyv1.ConditionDispatched); old == nil || old.Reason != c.Reason || old.Message != c.Message {
			r.Recorder.Eventf(n, nil, "Warning", c.Reason, "Dispatch", "%s", c.Message)
		}
	}
	if n.Status.Phase.Finished() && !before.Phase.Finished() {
		metrics.NotificationsFinished.WithLabelValues(string(n.Status.Phase)).Inc()
		typ := "Warning"
		if n.Status.Phase == notifyv1.NotificationDelivered {
			if !r.SuccessEvents {
				return
			}
			typ = "Normal"
		}
		d := n.Status.Deliveries
		r.Recorder.Eventf(n, nil, typ, string(n.Status.Phase), "Complete",
			"%d deliveries: %d succeeded, %d failed, %d skipped, %d expired", d.Total, d.Succeeded, d.Failed, d.Skipped, d.Expired)
	}
	for _, t := range []string{notifyv1.ConditionApproved, notifyv1.ConditionRejected} {
		if meta.IsStatusConditionTrue(n.Status.Conditions, t) && !meta.IsStatusConditionTrue(before.Conditions, t) {
			c := meta.FindStatusCondition(n.Status.Conditions, t)
			r.Recorder.Eventf(n, nil, "Normal", t, "Respond", "%s", c.Message)
		}
	}
}
