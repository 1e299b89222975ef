// Package notification holds the Notification reconciler: it fans a
// Notification out into one ChannelDelivery per (channel, recipient)
// (fanout.go), counts their outcomes back into the Notification's status
// (aggregate.go), decides approvals (approval.go) and deletes finished
// Notifications after their TTL.
package notification

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/patch"
	"github.com/herald-dev/herald/internal/retry"
)

// DeliveryIndex indexes ChannelDeliveries by spec.notification.
const DeliveryIndex = "spec.notification"

// templateRetryInterval is how often a notification waiting for a missing
// or broken template looks again.
const templateRetryInterval = 30 * time.Second

// oldDeliveriesWait bounds how long after its creation a Notification waits
// for deliveries of a deleted Notification of the same name, still holding
// its delivery names, to be garbage collected; oldDeliveriesRecheck is how
// often it looks again. Past the wait such deliveries count as failed with
// reason DeliveryNameTaken.
const (
	oldDeliveriesWait    = 2 * time.Minute
	oldDeliveriesRecheck = 5 * time.Second
)

// maxRejectedListed bounds status.rejected.
const maxRejectedListed = 100

// Reconciler fans Notifications out into ChannelDeliveries and aggregates
// their outcomes back into the Notification's status.
type Reconciler struct {
	client.Client
	// APIReader reads past the cache. A user the cached Recipients do not
	// know may have been created a moment ago (a manifest applying both
	// at once): that is checked against the API server before the
	// delivery is skipped for good.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	// DefaultRetry is the complete retry policy (Options.Retry) whose
	// values fill what a Notification's spec.retry leaves unset.
	DefaultRetry   retry.Policy
	DefaultTimeout time.Duration
	// FanOutParallelism bounds concurrent creates for one notification.
	FanOutParallelism int
	Workers           int
	// StatusInterval is the least time between two status writes of a
	// notification whose deliveries are still in flight.
	StatusInterval time.Duration
	// SuccessEvents emits a Normal Event when a notification is delivered.
	// Off by default: for single-recipient notifications it would add one
	// write per delivery; failures always get a Warning Event.
	SuccessEvents bool
	// DefaultTTLAfterFinished deletes finished notifications that set no
	// spec.ttlSecondsAfterFinished this long after they finished; 0 keeps
	// them.
	DefaultTTLAfterFinished time.Duration

	progress progressMemos
}

// +kubebuilder:rbac:groups=notify.herald.dev,resources=notifications,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=notify.herald.dev,resources=notifications/status,verbs=patch
// +kubebuilder:rbac:groups=notify.herald.dev,resources=notifications/finalizers,verbs=update
// +kubebuilder:rbac:groups=notify.herald.dev,resources=channeldeliveries,verbs=create
// +kubebuilder:rbac:groups=notify.herald.dev,resources=channeldeliveries/status,verbs=patch
// +kubebuilder:rbac:groups=notify.herald.dev,resources=recipients,verbs=get;list;watch
// +kubebuilder:rbac:groups=notify.herald.dev,resources=notificationtemplates,verbs=get;list;watch

// Reconcile dispatches a Notification once, then keeps its status in step
// with its deliveries: at most one status write per StatusInterval while
// deliveries are in flight, and one when it finishes.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var n notifyv1.Notification
	if err := r.Get(ctx, req.NamespacedName, &n); err != nil {
		if apierrors.IsNotFound(err) {
			r.progress.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if n.DeletionTimestamp != nil {
		r.progress.forget(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	patcher := patch.NewHelper(&n, r.Client, patch.ControllerFieldOwner)
	before := n.Status.DeepCopy()
	now := r.Clock.Now()
	memo := r.progress.memo(req.NamespacedName, n.UID)

	// An operator's cancel (operator.go) stops the fan-out, even one in
	// progress, and every delivery not yet sent.
	cancelling := cancelAnnotated(&n) || n.Status.Cancel != nil
	var (
		result     ctrl.Result
		dispatched bool
		err        error
	)
	if !cancelling {
		result, dispatched, err = r.ensureDispatched(ctx, &n, memo, now)
		if err != nil {
			return ctrl.Result{}, err
		}
		cancelling = n.Status.Cancel != nil
	}
	// writeNow is set by operator requests, whose record must reach the
	// API server before anything else happens.
	writeNow := false
	if cancelling {
		if memo.dispatch != nil {
			// A fan-out whose status write was deferred.
			memo.dispatch.applyTo(&n.Status)
		}
		finishedBefore := n.Status.Phase.Finished()
		recorded, err := r.recordCancel(ctx, &n, patcher, before)
		if err != nil {
			return patch.RequeueOnConflict(err, "notification cancel")
		}
		if recorded {
			// The helper now holds what was written.
			memo.written(&n.Status, now)
			before = n.Status.DeepCopy()
		}
		if finishedBefore {
			// Nothing left to cancel; the record says it was asked.
			return r.deleteAfterTTL(ctx, &n, now)
		}
		if _, err := r.cancelDeliveries(ctx, &n, memo, now); err != nil {
			return ctrl.Result{}, err
		}
		dispatched = true
	} else if dispatched {
		redriven, err := r.redrive(ctx, &n, memo, now)
		if err != nil {
			return ctrl.Result{}, err
		}
		writeNow = redriven
	}
	if wait := r.countLater(&n, memo, dispatched, now); wait > 0 && !writeNow {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	// nextFollowUp is when the next escalation step or reminder is due.
	var nextFollowUp time.Duration
	if dispatched {
		acks, err := r.aggregate(ctx, &n, now)
		if err != nil {
			return ctrl.Result{}, err
		}
		if nextFollowUp, err = r.followUp(ctx, &n, acks, now); err != nil {
			return ctrl.Result{}, err
		}
		if nextFollowUp > 0 && (result.RequeueAfter == 0 || nextFollowUp < result.RequeueAfter) {
			result.RequeueAfter = nextFollowUp
		}
	}
	n.Status.ObservedGeneration = n.Generation

	if !equality.Semantic.DeepEqual(before, &n.Status) {
		// A step or reminder that just ran is written at once, like an
		// operator's request: its record is what keeps it from running
		// again.
		writeNow = writeNow || len(n.Status.Escalation) != len(before.Escalation) || len(n.Status.Reminders) != len(before.Reminders)
		if wait := r.writeLater(&n, memo, dispatched, now); wait > 0 && !writeNow {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
		// The status is derived from the cache: it must not overwrite a
		// newer one, so the write is conditional on what was read.
		if _, err := patcher.Patch(ctx, &n, patch.WithOptimisticLock()); err != nil {
			return patch.RequeueOnConflict(err, "notification status")
		}
		memo.written(&n.Status, now)
		r.announce(&n, before)
	}
	if n.Status.Phase.Finished() && nextFollowUp == 0 {
		r.progress.forget(req.NamespacedName)
		return r.deleteAfterTTL(ctx, &n, now)
	}
	return result, nil
}

// ensureDispatched fans the notification out unless that happened already,
// and reports whether it has been dispatched. A fan-out whose status write
// was deferred is taken from memo instead of being run again.
func (r *Reconciler) ensureDispatched(ctx context.Context, n *notifyv1.Notification, memo *progressMemo, now time.Time) (ctrl.Result, bool, error) {
	switch {
	case meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionDispatched) || n.Status.Phase.Finished():
		return ctrl.Result{}, meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionDispatched), nil
	case memo.dispatch != nil:
		memo.dispatch.applyTo(&n.Status)
		return ctrl.Result{}, true, nil
	}
	result, err := r.dispatch(ctx, n, now)
	if err != nil {
		return ctrl.Result{}, false, err
	}
	if !meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionDispatched) {
		return result, false, nil
	}
	memo.dispatched(&n.Status, now)
	return result, true, nil
}

// deleteAfterTTL deletes a finished notification once its TTL has passed,
// or requeues for then. The TTL is spec.ttlSecondsAfterFinished when set
// (0: at once), else DefaultTTLAfterFinished (0: never), so that finished
// Notifications and their deliveries do not pile up in etcd. Its
// deliveries go with it (owner references, background propagation).
func (r *Reconciler) deleteAfterTTL(ctx context.Context, n *notifyv1.Notification, now time.Time) (ctrl.Result, error) {
	if n.Status.CompletionTime == nil {
		return ctrl.Result{}, nil
	}
	ttl := r.DefaultTTLAfterFinished
	if n.Spec.TTLSecondsAfterFinished != nil {
		ttl = time.Duration(*n.Spec.TTLSecondsAfterFinished) * time.Second
	} else if ttl <= 0 {
		return ctrl.Result{}, nil
	}
	expiry := n.Status.CompletionTime.Add(ttl)
	if now.Before(expiry) {
		return ctrl.Result{RequeueAfter: expiry.Sub(now)}, nil
	}
	log.FromContext(ctx).V(1).Info("deleting finished notification after its TTL", "ttl", ttl)
	err := r.Delete(ctx, n, client.PropagationPolicy(metav1.DeletePropagationBackground))
	return ctrl.Result{}, client.IgnoreNotFound(err)
}

// SetupWithManager watches Notifications (spec changes only: its own status
// writes must not wake it), the deliveries it owns, and the templates that
// undispatched Notifications wait for (templates.go).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	// Deliveries are found by an index on their notification: a label
	// selector on the cache would scan every delivery of the namespace on
	// each reconcile.
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &notifyv1.ChannelDelivery{}, DeliveryIndex,
		func(o client.Object) []string { return []string{o.(*notifyv1.ChannelDelivery).Spec.Notification} }); err != nil {
		return fmt.Errorf("indexing deliveries by notification: %w", err)
	}
	if err := indexByTemplate(context.Background(), mgr); err != nil {
		return fmt.Errorf("indexing notifications by template: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&notifyv1.Notification{}, builder.WithPredicates(predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, operatorAnnotations))).
		Owns(&notifyv1.ChannelDelivery{}).
		Watches(&notifyv1.NotificationTemplate{}, handler.EnqueueRequestsFromMapFunc(waitingFor(mgr.GetClient())),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, r.Workers)}).
		Complete(r)
}
