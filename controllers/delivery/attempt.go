package delivery

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/audience"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/metrics"
	"github.com/herald-dev/herald/internal/patch"
	"github.com/herald-dev/herald/internal/retry"
)

// Attempt outcomes recorded in status.history.
const (
	OutcomeSucceeded = "Succeeded"
	OutcomeFailed    = "Failed"
	OutcomeAbandoned = "Abandoned"
)

// statusWrite records what one reconcile does to one delivery. Its status
// is written with the patch helper, so only the fields the controller
// changes are sent and the inbox's (readTime, archivedTime, response) are
// never touched.
//
// Until this reconcile has claimed the delivery, every write is
// conditional on the version read (a stale cache must not finish a
// delivery twice; a conflict requeues). Once claimed, the delivery is
// this controller's until the attempt is recorded, and the outcome of a
// send is written unconditionally: it must not be lost to a conflict with
// an inbox write, and a merge patch without a precondition has none.
type statusWrite struct {
	r       *Reconciler
	d       *notifyv1.ChannelDelivery
	patcher *patch.Helper
	claimed bool
}

func (r *Reconciler) newStatusWrite(d *notifyv1.ChannelDelivery) *statusWrite {
	return &statusWrite{r: r, d: d, patcher: patch.NewHelper(d, r.Client, patch.ControllerFieldOwner)}
}

func (w *statusWrite) write(ctx context.Context) error {
	var opts []patch.Option
	if !w.claimed {
		opts = append(opts, patch.WithOptimisticLock())
	}
	_, err := w.patcher.Patch(ctx, w.d, opts...)
	return err
}

// claim records that attempt starts now (phase Sending) before anything
// leaves the cluster. It is guarded by resourceVersion: if anyone changed
// the delivery since it was read, the write fails with a Conflict and
// nothing is sent.
func (w *statusWrite) claim(ctx context.Context, attempt int32, now time.Time) error {
	s := &w.d.Status
	s.Phase = notifyv1.DeliverySending
	s.Attempts = attempt
	s.AttemptStartTime = &metav1.MicroTime{Time: now}
	s.NextAttemptTime = nil
	if err := w.write(ctx); err != nil {
		return err
	}
	w.claimed = true
	return nil
}

// recoverAbandoned handles a delivery found in Sending. Only a controller
// that died mid-attempt leaves one behind (or our cache lags our own result
// write), so once the attempt's time is up it counts as a failed attempt and
// the delivery is retried: at-least-once, never lost.
func (w *statusWrite) recoverAbandoned(ctx context.Context, policy retry.Policy, timeout time.Duration, now time.Time) (ctrl.Result, error) {
	s := &w.d.Status
	started := now
	if s.AttemptStartTime != nil {
		started = s.AttemptStartTime.Time
	}
	deadline := started.Add(timeout + abandonGrace)
	if now.Before(deadline) {
		return ctrl.Result{RequeueAfter: deadline.Sub(now)}, nil
	}
	log.FromContext(ctx).Info("attempt abandoned by a previous controller; retrying", "attempt", s.Attempts)
	entry := notifyv1.Attempt{
		Number:    s.Attempts,
		StartTime: metav1.MicroTime{Time: started},
		Outcome:   OutcomeAbandoned,
		Reason:    notifyv1.ReasonTimeout,
		Error:     "the controller stopped during this attempt; the message may or may not have been sent",
		Provider:  s.Provider,
	}
	appendHistory(s, entry)
	s.LastError = entry.Error
	s.LastErrorReason = notifyv1.ReasonTimeout
	s.AttemptStartTime = nil
	if policyAttempts(s, s.Attempts) >= policy.MaxAttempts {
		return w.finish(ctx, notifyv1.DeliveryFailed, notifyv1.ReasonAttemptsExhausted,
			fmt.Sprintf("%d attempts made; the last was abandoned", s.Attempts))
	}
	s.Phase = notifyv1.DeliveryPending
	s.Reason = notifyv1.ReasonAbandoned
	s.Message = entry.Error
	s.NextAttemptTime = &metav1.MicroTime{Time: now}
	metrics.Retries.WithLabelValues(string(w.r.Channel), string(notifyv1.ReasonTimeout)).Inc()
	if err := w.write(ctx); err != nil {
		return patch.RequeueOnConflict(err, "abandoned attempt")
	}
	return ctrl.Result{}, nil
}

// waitForProvider holds a delivery whose providers are all suspended or
// tripped, using no attempt: its status says why (written once, when the
// reason or message changes, with the optimistic lock of every write before
// a claim), and it comes back when the wait is over, or at its expiresAt if
// that is sooner, when it ends Expired. A circuit closes after the trip
// duration whatever happens, so the wait is bounded.
func (w *statusWrite) waitForProvider(ctx context.Context, pw *Wait, now time.Time) (ctrl.Result, error) {
	wait := pw.For
	if exp := deadline(w.d); exp != nil && exp.Sub(now) < wait {
		wait = max(exp.Sub(now), time.Millisecond)
	}
	s := &w.d.Status
	if s.Phase == "" {
		s.Phase = notifyv1.DeliveryPending
	}
	if s.Reason != pw.Reason || s.Message != pw.Message {
		s.Reason, s.Message = pw.Reason, pw.Message
		if err := w.write(ctx); err != nil {
			return patch.RequeueOnConflict(err, "waiting for a provider")
		}
	}
	metrics.RateLimitWaits.WithLabelValues(string(w.r.Channel)).Inc()
	return ctrl.Result{RequeueAfter: wait}, nil
}

// attemptMade is one attempt that ran: its number, when it started, how
// long it took and which provider made it.
type attemptMade struct {
	number   int32
	start    time.Time
	elapsed  time.Duration
	provider string
}

// record adds the attempt to the delivery's history.
func (a attemptMade) record(s *notifyv1.ChannelDeliveryStatus, outcome string, reason notifyv1.FailureReason, errText string) {
	appendHistory(s, notifyv1.Attempt{
		Number:    a.number,
		StartTime: metav1.MicroTime{Time: a.start},
		Duration:  &metav1.Duration{Duration: a.elapsed},
		Outcome:   outcome,
		Reason:    reason,
		Error:     errText,
		Provider:  a.provider,
	})
	s.Attempts = a.number
	s.AttemptStartTime = nil
}

func (w *statusWrite) recordSuccess(ctx context.Context, a attemptMade, res channel.Result) error {
	s := &w.d.Status
	a.record(s, OutcomeSucceeded, "", "")
	observeAttempt(w.d, a, OutcomeSucceeded)
	s.Provider = a.provider
	s.ProviderMessageID = res.ProviderMessageID
	// A receipt is about the message providerMessageID names: one left
	// from an earlier message of this delivery (sent again after it was
	// reset) says nothing about this one. herald receiver writes the next.
	s.Receipt = nil
	s.NextAttemptTime = nil
	if _, err := w.finish(ctx, notifyv1.DeliverySucceeded, notifyv1.ReasonDelivered, ""); err != nil {
		return err
	}
	metrics.DeliveryLatency.WithLabelValues(string(w.r.Channel)).Observe(w.r.Clock.Since(w.d.CreationTimestamp.Time).Seconds())
	return nil
}

func (w *statusWrite) recordFailure(ctx context.Context, policy retry.Policy, a attemptMade, sendErr error) (ctrl.Result, error) {
	s := &w.d.Status
	ce := channel.Classify(sendErr)
	reason := ce.Reason
	errText := truncate(ce.Error(), 1024)
	a.record(s, OutcomeFailed, reason, errText)
	observeAttempt(w.d, a, OutcomeFailed)
	attempt := a.number
	s.LastError = errText
	s.LastErrorReason = reason
	if a.provider != "" {
		s.Provider = a.provider
	}

	switch {
	case ce.Reason == notifyv1.ReasonInvalidAddress:
		return w.finish(ctx, notifyv1.DeliverySkipped, string(notifyv1.ReasonInvalidAddress), errText)
	case !ce.Retryable():
		return w.finish(ctx, notifyv1.DeliveryFailed, permanentReason(ce), errText)
	}
	delay, again := policy.Next(policyAttempts(s, attempt), ce.RetryAfter, w.r.rand)
	if !again {
		reason := notifyv1.ReasonAttemptsExhausted
		if ce.Code == notifyv1.ReasonProviderNotReady {
			reason = notifyv1.ReasonProviderNotReady
		}
		return w.finish(ctx, notifyv1.DeliveryFailed, reason,
			fmt.Sprintf("%d of %d attempts failed; last error: %s", policyAttempts(s, attempt), policy.MaxAttempts, errText))
	}
	now := w.r.Clock.Now()
	next := now.Add(delay)
	s.Phase = notifyv1.DeliveryPending
	s.Reason = notifyv1.ReasonRetryScheduled
	if ce.Code == notifyv1.ReasonProviderNotReady {
		s.Reason = notifyv1.ReasonProviderNotReady
	}
	s.Message = fmt.Sprintf("attempt %d failed (%s); retrying in %s", attempt, ce.Reason, delay.Round(time.Millisecond))
	// A retry is never scheduled after the delivery's expiresAt: the
	// reconcile at expiresAt ends it Expired, on time, however long the
	// backoff or the provider's Retry-After (capped at maxDelay by
	// policy.Next, which may still be later than expiresAt).
	if exp := deadline(w.d); exp != nil && next.After(exp.Time) {
		next = exp.Time
		delay = max(next.Sub(now), 0)
		s.Message = fmt.Sprintf("attempt %d failed (%s); the next retry would come after expiresAt, so the delivery expires at %s",
			attempt, ce.Reason, exp.UTC().Format(time.RFC3339))
	}
	s.NextAttemptTime = &metav1.MicroTime{Time: next}
	metrics.Retries.WithLabelValues(string(w.r.Channel), string(reason)).Inc()
	if err := w.write(ctx); err != nil {
		return w.writeFailed(err)
	}
	w.r.Recorder.Eventf(w.d, nil, "Warning", s.Reason, "Deliver", "%s", s.Message+": "+errText)
	// When expiresAt has already passed, the next reconcile, at once,
	// expires the delivery.
	return ctrl.Result{RequeueAfter: max(delay, time.Millisecond)}, nil
}

func permanentReason(ce *channel.Error) string {
	if ce.Code == notifyv1.ReasonProviderNotReady {
		return notifyv1.ReasonProviderNotReady
	}
	if ce.Reason == notifyv1.ReasonDestinationNotAllowed {
		return string(notifyv1.ReasonDestinationNotAllowed)
	}
	if ce.RecipientFault() {
		return notifyv1.ReasonRecipientRejected
	}
	return notifyv1.ReasonPermanentFailure
}

// finish moves the delivery to a terminal phase.
func (w *statusWrite) finish(ctx context.Context, phase notifyv1.DeliveryPhase, reason, message string) (ctrl.Result, error) {
	s := &w.d.Status
	s.Phase = phase
	s.Reason = reason
	s.Message = message
	s.NextAttemptTime = nil
	s.CompletionTime = &metav1.MicroTime{Time: w.r.Clock.Now()}
	if err := w.write(ctx); err != nil {
		return w.writeFailed(err)
	}
	metrics.DeliveriesTotal.WithLabelValues(string(w.r.Channel), string(phase)).Inc()
	if phase != notifyv1.DeliverySucceeded && !(phase == notifyv1.DeliverySkipped && audience.IntendedSkip(reason)) {
		w.r.Recorder.Eventf(w.d, nil, "Warning", reason, "Deliver", "delivery %s: %s", phase, message)
	}
	return ctrl.Result{}, nil
}

// writeFailed handles a status write that did not go through. Before a
// claim nothing left the cluster: a conflict means the cache was behind,
// and the next reconcile decides again. After a claim the outcome of the
// send is kept and written by a later reconcile, rather than the message
// sent again.
func (w *statusWrite) writeFailed(err error) (ctrl.Result, error) {
	if !w.claimed {
		return patch.RequeueOnConflict(err, "delivery status")
	}
	w.r.unrecorded.Store(w.d.UID, &unrecordedOutcome{attempt: w.d.Status.Attempts, write: w})
	return ctrl.Result{}, fmt.Errorf("writing delivery status: %w", err)
}

// unrecordedOutcome is a finished attempt waiting to be written: the
// status write that failed, with the outcome it carries.
type unrecordedOutcome struct {
	attempt int32
	write   *statusWrite
}

// recordUnrecorded writes an attempt's outcome that could not be written
// when the attempt ended. The helper still holds the delivery as claimed,
// so the patch it sends again holds the same fields: the attempt's
// outcome, and nothing the inbox changed meanwhile.
func (r *Reconciler) recordUnrecorded(ctx context.Context, current *notifyv1.ChannelDelivery, o *unrecordedOutcome) (ctrl.Result, error) {
	if current.Status.Phase != notifyv1.DeliverySending || current.Status.Attempts != o.attempt {
		// Someone else moved the delivery on; what we remember is stale.
		r.unrecorded.Delete(current.UID)
		return ctrl.Result{Requeue: true}, nil
	}
	d := o.write.d
	if err := o.write.write(ctx); err != nil {
		return ctrl.Result{}, fmt.Errorf("writing delivery status: %w", err)
	}
	r.unrecorded.Delete(current.UID)
	log.FromContext(ctx).Info("recorded an attempt whose result could not be written earlier", "attempt", o.attempt, "phase", d.Status.Phase)
	if d.Status.Phase.Finished() {
		metrics.DeliveriesTotal.WithLabelValues(string(r.Channel), string(d.Status.Phase)).Inc()
	}
	if next := d.Status.NextAttemptTime; next != nil {
		return ctrl.Result{RequeueAfter: max(next.Sub(r.Clock.Now()), 0)}, nil
	}
	return ctrl.Result{}, nil
}

func appendHistory(s *notifyv1.ChannelDeliveryStatus, a notifyv1.Attempt) {
	s.History = append(s.History, a)
	if n := len(s.History); n > notifyv1.MaxAttemptHistory {
		s.History = append([]notifyv1.Attempt(nil), s.History[n-notifyv1.MaxAttemptHistory:]...)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
