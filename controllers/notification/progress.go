package notification

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// bigFanOut is the number of deliveries from which a notification in flight
// is not even counted again within StatusInterval: counting lists all its
// deliveries, and every one of their updates wakes the notification.
const bigFanOut = 100

// progressMemos is what this process remembers about notifications in
// flight between their status writes. It is only an optimisation: after a
// restart it is empty, the fan-out runs again and, its names being
// deterministic, creates nothing.
type progressMemos struct {
	m sync.Map // types.NamespacedName -> *progressMemo
}

// progressMemo is the memory of one notification.
type progressMemo struct {
	uid types.UID
	// dispatch holds the outcome of a fan-out whose status write was
	// deferred.
	dispatch *dispatchSnapshot
	// since is when status was last written (or the fan-out ran).
	since time.Time
	// cancelled holds the UIDs of the deliveries this process cancelled;
	// redriven, those it re-drove, with the resourceVersion each had
	// before (operator.go).
	cancelled, redriven sync.Map
}

func (p *progressMemos) memo(key types.NamespacedName, uid types.UID) *progressMemo {
	v, _ := p.m.LoadOrStore(key, &progressMemo{uid: uid})
	m := v.(*progressMemo)
	if m.uid != uid {
		// A new notification with the name of a deleted one.
		m = &progressMemo{uid: uid}
		p.m.Store(key, m)
	}
	return m
}

func (p *progressMemos) forget(key types.NamespacedName) { p.m.Delete(key) }

// dispatched remembers a fan-out that has just run.
func (m *progressMemo) dispatched(s *notifyv1.NotificationStatus, now time.Time) {
	m.dispatch = snapshotDispatch(s)
	m.since = now
}

// written records a status write: a dispatch it carried is on the server.
func (m *progressMemo) written(s *notifyv1.NotificationStatus, now time.Time) {
	m.since = now
	if meta.IsStatusConditionTrue(s.Conditions, notifyv1.ConditionDispatched) {
		m.dispatch = nil
	}
}

// countLater returns how long a big fan-out in flight waits before its
// deliveries are counted again (zero: count now).
func (r *Reconciler) countLater(n *notifyv1.Notification, m *progressMemo, dispatched bool, now time.Time) time.Duration {
	if !dispatched || m.dispatch != nil || n.Status.Phase.Finished() || n.Status.Deliveries.Total < bigFanOut {
		return 0
	}
	return max(m.since.Add(r.StatusInterval).Sub(now), 0)
}

// writeLater returns how long a changed status of a notification in flight
// waits before it is written (zero: write now). While deliveries are in
// flight, status is written at most once per StatusInterval: a fan-out to
// thousands would otherwise write the notification once per delivery, and
// a quick single delivery is recorded by one write instead of two.
func (r *Reconciler) writeLater(n *notifyv1.Notification, m *progressMemo, dispatched bool, now time.Time) time.Duration {
	if !dispatched || n.Status.Phase.Finished() {
		return 0
	}
	return max(m.since.Add(r.StatusInterval).Sub(now), 0)
}

// dispatchSnapshot is the part of status a fan-out sets.
type dispatchSnapshot struct {
	recipients   int32
	unresolved   []string
	dispatchTime *metav1.Time
	rejected     []notifyv1.RejectedDelivery
	rejectedN    []notifyv1.ChannelCount
	condition    metav1.Condition
}

func snapshotDispatch(s *notifyv1.NotificationStatus) *dispatchSnapshot {
	return &dispatchSnapshot{
		recipients:   s.Recipients,
		unresolved:   s.Unresolved,
		dispatchTime: s.DispatchTime,
		rejected:     s.Rejected,
		rejectedN:    s.RejectedCounts,
		condition:    *meta.FindStatusCondition(s.Conditions, notifyv1.ConditionDispatched),
	}
}

func (d *dispatchSnapshot) applyTo(s *notifyv1.NotificationStatus) {
	s.Recipients, s.Unresolved, s.DispatchTime = d.recipients, d.unresolved, d.dispatchTime
	s.Rejected, s.RejectedCounts = d.rejected, d.rejectedN
	meta.SetStatusCondition(&s.Conditions, d.condition)
}
