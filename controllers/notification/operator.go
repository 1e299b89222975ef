package notification

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/metrics"
	"github.com/herald-dev/herald/internal/patch"
)

// Operator requests on a Notification: re-drive (AnnotationRetry) and
// cancel (AnnotationCancel). docs/operations.md, "Day 2", describes them
// for users.

// maxAnnotationValue is how much of an annotation's value status records.
const maxAnnotationValue = 256

// operatorAnnotations wakes the reconciler when an operator request
// appears or changes; Notifications are otherwise watched for spec
// changes only.
var operatorAnnotations = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		if e.ObjectOld == nil || e.ObjectNew == nil {
			return false
		}
		o, n := e.ObjectOld.GetAnnotations(), e.ObjectNew.GetAnnotations()
		for _, k := range []string{notifyv1.AnnotationRetry, notifyv1.AnnotationRetryChannel, notifyv1.AnnotationRetryReason, notifyv1.AnnotationCancel} {
			if o[k] != n[k] {
				return true
			}
		}
		return false
	},
}

// cancelAnnotated reports whether an operator asked to cancel n.
func cancelAnnotated(n *notifyv1.Notification) bool {
	return n.Annotations[notifyv1.AnnotationCancel] != ""
}

// cancelSeen reports whether the cached copy of n carries the cancel
// annotation: a fan-out in progress looks before each create, so that it
// stops as soon as the cancel reaches the cache, mid-way.
func (r *Reconciler) cancelSeen(ctx context.Context, n *notifyv1.Notification) string {
	var cached notifyv1.Notification
	if err := r.Get(ctx, client.ObjectKeyFromObject(n), &cached, client.UnsafeDisableDeepCopy); err != nil || cached.UID != n.UID {
		return ""
	}
	return cached.Annotations[notifyv1.AnnotationCancel]
}

// recordCancel records the cancel in status, once, before any delivery is
// cancelled: status.cancel.time is the point after which no attempt
// starts and the fan-out creates nothing (both stop when the annotation
// reaches the cache, which is before this reconcile runs). It reports
// whether the record was written by this call.
func (r *Reconciler) recordCancel(ctx context.Context, n *notifyv1.Notification, patcher *patch.Helper, read *notifyv1.NotificationStatus) (bool, error) {
	c := n.Status.Cancel
	if c != nil && !c.Time.IsZero() {
		return false, nil
	}
	if c == nil {
		c = &notifyv1.CancelRecord{Value: notifyv1.FitText(n.Annotations[notifyv1.AnnotationCancel], maxAnnotationValue)}
		n.Status.Cancel = c
	}
	// Now, not when the reconcile started: a fan-out may have run since.
	c.Time = metav1.MicroTime{Time: r.Clock.Now()}
	if !n.Status.Phase.Finished() {
		n.Status.Phase = notifyv1.NotificationDispatching
		notifyv1.SetCondition(n, notifyv1.ConditionDelivered, metav1.ConditionUnknown, notifyv1.ReasonCancelled,
			"cancelling: deliveries not yet sent are being cancelled")
	}
	_, err := patcher.Patch(ctx, n, patch.WithOptimisticLock())
	if apierrors.IsConflict(err) && r.APIReader != nil {
		// The cancel annotation itself changed the object while a
		// fan-out ran: if its status is still what this reconcile read,
		// the fan-out's outcome is written on the new version rather
		// than lost.
		var live notifyv1.Notification
		if gerr := r.APIReader.Get(ctx, client.ObjectKeyFromObject(n), &live); gerr == nil && equality.Semantic.DeepEqual(&live.Status, read) {
			patcher.Reset(&live)
			_, err = patcher.Patch(ctx, n, patch.WithOptimisticLock())
		}
	}
	if err != nil {
		return false, err
	}
	r.Recorder.Eventf(n, nil, "Normal", notifyv1.ReasonCancelled, "Cancel",
		"cancel recorded (%s=%q): no delivery not yet sent will be sent", notifyv1.AnnotationCancel, c.Value)
	return true, nil
}

// cancelDeliveries moves every unfinished delivery that has no attempt in
// flight to Cancelled. Each write carries the version read, so it cannot
// overtake a claim: whichever of the claim and the cancel comes first
// wins, and an attempt that won finishes and is recorded; if it fails and
// is scheduled for another try, the next pass cancels it. It returns the
// number of deliveries still unfinished after the pass (in flight, or
// changed meanwhile), whose updates wake the notification again.
func (r *Reconciler) cancelDeliveries(ctx context.Context, n *notifyv1.Notification, memo *progressMemo, now time.Time) (int, error) {
	// The cache's own objects: only those written are copied.
	var list notifyv1.ChannelDeliveryList
	if err := r.List(ctx, &list, client.InNamespace(n.Namespace), client.MatchingFields{DeliveryIndex: n.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return 0, fmt.Errorf("listing deliveries: %w", err)
	}
	var open atomic.Int32
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, r.FanOutParallelism))
	for i := range list.Items {
		cached := &list.Items[i]
		if !metav1.IsControlledBy(cached, n) || cached.Phase().Finished() {
			continue
		}
		if cached.Status.Phase == notifyv1.DeliverySending || memo.cancelledByUs(cached) {
			open.Add(1)
			continue
		}
		d := cached.DeepCopy()
		g.Go(func() error {
			p := patch.NewHelper(d, r.Client, patch.ControllerFieldOwner)
			s := &d.Status
			s.Phase = notifyv1.DeliveryCancelled
			s.Reason = notifyv1.ReasonCancelled
			s.Message = fmt.Sprintf("the notification was cancelled (%s) before this delivery was sent", notifyv1.AnnotationCancel)
			s.NextAttemptTime = nil
			s.CompletionTime = &metav1.MicroTime{Time: now}
			_, err := p.Patch(gctx, d, patch.WithOptimisticLock())
			switch {
			case err == nil:
				memo.rememberCancelled(d)
				metrics.DeliveriesTotal.WithLabelValues(string(d.Spec.Channel), string(notifyv1.DeliveryCancelled)).Inc()
				open.Add(1) // until the cache shows it
				return nil
			case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
				// Claimed or changed meanwhile: the change wakes us.
				open.Add(1)
				return nil
			default:
				return fmt.Errorf("cancelling delivery %s: %w", d.Name, err)
			}
		})
	}
	err := g.Wait()
	return int(open.Load()), err
}

// redrive gives the notification's Failed and Expired deliveries a fresh
// set of attempts when AnnotationRetry carries a value not handled yet,
// optionally only those of one channel (AnnotationRetryChannel) or reason
// (AnnotationRetryReason). It reports whether it did; status.retry then
// records it, and the caller writes status at once.
func (r *Reconciler) redrive(ctx context.Context, n *notifyv1.Notification, memo *progressMemo, now time.Time) (bool, error) {
	value := notifyv1.FitText(n.Annotations[notifyv1.AnnotationRetry], maxAnnotationValue)
	if value == "" || (n.Status.Retry != nil && n.Status.Retry.Value == value) {
		return false, nil
	}
	rec := &notifyv1.RetryRecord{
		Value:   value,
		Time:    metav1.MicroTime{Time: now},
		Channel: notifyv1.Channel(n.Annotations[notifyv1.AnnotationRetryChannel]),
		Reason:  notifyv1.FitText(n.Annotations[notifyv1.AnnotationRetryReason], 64),
	}
	var list notifyv1.ChannelDeliveryList
	if err := r.List(ctx, &list, client.InNamespace(n.Namespace), client.MatchingFields{DeliveryIndex: n.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return false, fmt.Errorf("listing deliveries: %w", err)
	}
	newDeadline := redriveDeadline(n, now)
	var count atomic.Int32
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, r.FanOutParallelism))
	for i := range list.Items {
		if !metav1.IsControlledBy(&list.Items[i], n) || !rec.Matches(&list.Items[i]) {
			continue
		}
		d := list.Items[i].DeepCopy()
		g.Go(func() error {
			before := d.ResourceVersion
			p := patch.NewHelper(d, r.Client, patch.ControllerFieldOwner)
			resetForRetry(d, value, newDeadline, now)
			if _, err := p.Patch(gctx, d, patch.WithOptimisticLock()); err != nil {
				if apierrors.IsNotFound(err) {
					return nil
				}
				// A conflict means the cache is behind: the whole
				// re-drive runs again, and deliveries already re-driven
				// no longer match.
				return fmt.Errorf("re-driving delivery %s: %w", d.Name, err)
			}
			memo.redriven.Store(d.UID, before)
			count.Add(1)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return false, err
	}
	rec.Deliveries = count.Load()
	n.Status.Retry = rec
	if rec.Deliveries > 0 {
		n.Status.Phase = notifyv1.NotificationDispatching
		n.Status.CompletionTime = nil
	}
	r.Recorder.Eventf(n, nil, "Normal", notifyv1.ReasonRetried, "Retry",
		"%d deliveries re-driven (%s=%q)", rec.Deliveries, notifyv1.AnnotationRetry, value)
	return true, nil
}

// resetForRetry makes a finished delivery Pending again with a fresh set
// of attempts. attempts and history keep counting (the old attempts stay
// in the history); attemptsBeforeRetry tells the retry policy where the
// new set starts. An expired delivery whose deadline has passed gets
// newDeadline.
func resetForRetry(d *notifyv1.ChannelDelivery, value string, newDeadline *metav1.Time, now time.Time) {
	s := &d.Status
	current := d.Spec.ExpiresAt
	if s.ExpiresAt != nil {
		current = s.ExpiresAt
	}
	if s.Phase == notifyv1.DeliveryExpired || (current != nil && !now.Before(current.Time)) {
		s.ExpiresAt = newDeadline
	}
	s.Message = fmt.Sprintf("re-driven (%s=%q) after %s with reason %s and %d attempts", notifyv1.AnnotationRetry, value, s.Phase, s.Reason, s.Attempts)
	s.Phase = notifyv1.DeliveryPending
	s.Reason = notifyv1.ReasonRetried
	s.AttemptsBeforeRetry = s.Attempts
	s.NextAttemptTime = nil
	s.AttemptStartTime = nil
	s.CompletionTime = nil
	// The old message's receipt and id: a late receipt for it must not
	// judge the new attempts (a failed receipt would hide every later one).
	s.Receipt = nil
	s.ProviderMessageID = ""
}

// redriveDeadline is the deadline a re-driven delivery gets when its own
// has passed: as long after the re-drive as the notification originally
// had between its creation and its expiresAt. Without it an expired
// delivery would expire again at once.
func redriveDeadline(n *notifyv1.Notification, now time.Time) *metav1.Time {
	if n.Spec.ExpiresAt == nil {
		return nil
	}
	window := n.Spec.ExpiresAt.Sub(n.CreationTimestamp.Time)
	if window <= 0 {
		window = time.Minute
	}
	return &metav1.Time{Time: now.Add(window).Truncate(time.Second)}
}

// awaitingRedrive reports whether the cache still shows d as it was
// before this process re-drove it (the resourceVersion it had then):
// counting it as finished would end the notification again before the
// re-driven deliveries have run. A delivery that fails later by other
// means (a receipt) has moved on from that version and counts as it is.
func awaitingRedrive(m *progressMemo, d *notifyv1.ChannelDelivery) bool {
	v, ok := m.redriven.Load(d.UID)
	return ok && v == d.ResourceVersion
}

// cancelledByUs reports whether this process cancelled d already: the
// cache may not show it yet, and writing again would only conflict.
func (m *progressMemo) cancelledByUs(d *notifyv1.ChannelDelivery) bool {
	_, ok := m.cancelled.Load(d.UID)
	return ok
}

func (m *progressMemo) rememberCancelled(d *notifyv1.ChannelDelivery) { m.cancelled.Store(d.UID, true) }
