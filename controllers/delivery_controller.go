package controllers

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/retry"
)

// abandonGrace is added to an attempt's timeout before a delivery found in
// Sending counts as abandoned by a crashed controller: the cache may simply
// not have caught up with our own result write yet.
const abandonGrace = 5 * time.Second

// Delivery reasons set in status.reason.
const (
	ReasonDelivered         = "Delivered"
	ReasonRetryScheduled    = "RetryScheduled"
	ReasonAttemptsExhausted = "AttemptsExhausted"
	ReasonPermanentFailure  = "PermanentFailure"
	ReasonInvalidAddress    = "InvalidAddress"
	ReasonExpired           = "Expired"
	ReasonAbandoned         = "AttemptAbandoned"
)

// Attempt outcomes recorded in status.history.
const (
	OutcomeSucceeded = "Succeeded"
	OutcomeFailed    = "Failed"
	OutcomeAbandoned = "Abandoned"
)

// DeliveryReconciler delivers the ChannelDeliveries of one channel. One
// instance runs per channel, with its own workers, watching only deliveries
// labelled with that channel.
type DeliveryReconciler struct {
	client.Client
	Channel  notifyv1.Channel
	Handler  Handler
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
	// DefaultRetry fills fields a delivery's policy leaves unset.
	DefaultRetry   retry.Policy
	DefaultTimeout time.Duration
	Workers        int
	// Rand is the jitter source; nil means math/rand.
	Rand func() float64

	// unrecorded holds outcomes of attempts that were made but whose status
	// write failed (API server unreachable), keyed by delivery UID. The
	// next reconcile writes them instead of counting the attempt as
	// abandoned and sending again. Lost on restart, where the attempt then
	// counts as abandoned: at-least-once either way.
	unrecorded sync.Map
}

// unrecordedOutcome is a finished attempt waiting to be written.
type unrecordedOutcome struct {
	attempt int32
	status  notifyv1.ChannelDeliveryStatus
}

// +kubebuilder:rbac:groups=notify.herald.dev,resources=channeldeliveries,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=notify.herald.dev,resources=channeldeliveries/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

func (r *DeliveryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var d notifyv1.ChannelDelivery
	if err := r.Get(ctx, req.NamespacedName, &d); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if d.Status.Phase.Finished() || d.DeletionTimestamp != nil {
		r.unrecorded.Delete(d.UID)
		return ctrl.Result{}, nil
	}
	if v, ok := r.unrecorded.Load(d.UID); ok {
		return r.recordUnrecorded(ctx, &d, v.(*unrecordedOutcome))
	}
	if s := d.Spec.Skip; s != nil {
		return ctrl.Result{}, r.finish(ctx, &d, notifyv1.DeliverySkipped, s.Reason, s.Message)
	}
	now := r.Clock.Now()
	policy := r.policy(&d)
	timeout := r.timeout(&d)

	if d.Spec.ExpiresAt != nil && !now.Before(d.Spec.ExpiresAt.Time) {
		return ctrl.Result{}, r.finish(ctx, &d, notifyv1.DeliveryExpired, ReasonExpired,
			fmt.Sprintf("not delivered before it expired at %s", d.Spec.ExpiresAt.UTC().Format(time.RFC3339)))
	}

	if d.Status.Phase == notifyv1.DeliverySending {
		return r.recoverAbandoned(ctx, &d, policy, timeout, now)
	}
	if d.Spec.NotBefore != nil && now.Before(d.Spec.NotBefore.Time) {
		return ctrl.Result{RequeueAfter: d.Spec.NotBefore.Sub(now)}, nil
	}
	if d.Status.NextAttemptTime != nil && now.Before(d.Status.NextAttemptTime.Time) {
		return ctrl.Result{RequeueAfter: d.Status.NextAttemptTime.Sub(now)}, nil
	}

	attempt := d.Status.Attempts + 1
	wait, err := r.Handler.Admit(&d, now)
	if err != nil {
		// Nothing was sent, but the attempt counts: a delivery whose
		// provider never appears must end, not wait forever.
		return r.recordFailure(ctx, &d, policy, attempt, now, 0, "", err)
	}
	if wait > 0 {
		rateLimitWaits.WithLabelValues(string(r.Channel)).Inc()
		return ctrl.Result{RequeueAfter: wait}, nil
	}

	if r.Handler.NeedsClaim() {
		// The claim is guarded by resourceVersion: if anyone changed the
		// delivery since we read it, the update fails and nothing is sent.
		d.Status.Phase = notifyv1.DeliverySending
		d.Status.Attempts = attempt
		d.Status.AttemptStartTime = &metav1.MicroTime{Time: now}
		d.Status.NextAttemptTime = nil
		if err := r.Status().Update(ctx, &d); err != nil {
			if apierrors.IsConflict(err) {
				return ctrl.Result{Requeue: true}, nil
			}
			return ctrl.Result{}, fmt.Errorf("claiming attempt %d: %w", attempt, err)
		}
	}

	// From here the attempt runs to its end even when the manager shuts
	// down (it waits for running reconciles before it lets the lease go):
	// a send cut off half-way, or a result that is never written, would be
	// sent again by the next leader. The attempt's timeout and the time
	// allowed for recording it still bound it.
	ctx, cancelAttempt := context.WithTimeout(context.WithoutCancel(ctx), timeout+recordTimeout)
	defer cancelAttempt()

	msg := message(&d, int(attempt))
	sendCtx, cancel := context.WithTimeout(ctx, timeout)
	start := time.Now()
	providerName, res, sendErr := r.Handler.Send(sendCtx, &d, msg)
	elapsed := time.Since(start)
	cancel()
	attemptDuration.WithLabelValues(string(r.Channel)).Observe(elapsed.Seconds())

	if sendErr != nil {
		if errors.Is(sendCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			sendErr = &channel.Error{Reason: notifyv1.ReasonTimeout, Err: fmt.Errorf("attempt timed out after %s: %w", timeout, sendErr)}
		}
		return r.recordFailure(ctx, &d, policy, attempt, now, elapsed, providerName, sendErr)
	}
	return ctrl.Result{}, r.recordSuccess(ctx, &d, attempt, now, elapsed, providerName, res)
}

// recordTimeout bounds writing an attempt's outcome after the attempt.
const recordTimeout = 30 * time.Second

func (r *DeliveryReconciler) policy(d *notifyv1.ChannelDelivery) retry.Policy {
	var p retry.Policy
	if rp := d.Spec.Retry; rp != nil {
		p.Strategy = retry.Strategy(rp.Strategy)
		if rp.MaxAttempts != nil {
			p.MaxAttempts = int(*rp.MaxAttempts)
		}
		if rp.InitialDelay != nil {
			p.InitialDelay = rp.InitialDelay.Duration
		}
		if rp.MaxDelay != nil {
			p.MaxDelay = rp.MaxDelay.Duration
		}
	}
	p = p.WithDefaults(r.DefaultRetry)
	// A default maxDelay below a given initialDelay must not invert the
	// policy.
	if p.MaxDelay < p.InitialDelay {
		p.MaxDelay = p.InitialDelay
	}
	return p
}

func (r *DeliveryReconciler) timeout(d *notifyv1.ChannelDelivery) time.Duration {
	if d.Spec.Timeout != nil && d.Spec.Timeout.Duration > 0 {
		return d.Spec.Timeout.Duration
	}
	return r.DefaultTimeout
}

func (r *DeliveryReconciler) rand() float64 {
	if r.Rand != nil {
		return r.Rand()
	}
	return rand.Float64()
}

// recoverAbandoned handles a delivery found in Sending. Only a controller
// that died mid-attempt leaves one behind (or our cache lags our own result
// write), so once the attempt's time is up it counts as a failed attempt and
// the delivery is retried: at-least-once, never lost.
func (r *DeliveryReconciler) recoverAbandoned(ctx context.Context, d *notifyv1.ChannelDelivery, policy retry.Policy, timeout time.Duration, now time.Time) (ctrl.Result, error) {
	started := now
	if d.Status.AttemptStartTime != nil {
		started = d.Status.AttemptStartTime.Time
	}
	deadline := started.Add(timeout + abandonGrace)
	if now.Before(deadline) {
		return ctrl.Result{RequeueAfter: deadline.Sub(now)}, nil
	}
	log.FromContext(ctx).Info("attempt abandoned by a previous controller; retrying", "attempt", d.Status.Attempts)
	entry := notifyv1.Attempt{
		Number:    d.Status.Attempts,
		StartTime: metav1.MicroTime{Time: started},
		Outcome:   OutcomeAbandoned,
		Reason:    notifyv1.ReasonTimeout,
		Error:     "the controller stopped during this attempt; the message may or may not have been sent",
		Provider:  d.Status.Provider,
	}
	appendHistory(&d.Status, entry)
	d.Status.LastError = entry.Error
	d.Status.LastErrorReason = notifyv1.ReasonTimeout
	d.Status.AttemptStartTime = nil
	if int(d.Status.Attempts) >= policy.MaxAttempts {
		return ctrl.Result{}, r.finish(ctx, d, notifyv1.DeliveryFailed, ReasonAttemptsExhausted,
			fmt.Sprintf("%d attempts made; the last was abandoned", d.Status.Attempts))
	}
	d.Status.Phase = notifyv1.DeliveryPending
	d.Status.Reason = ReasonAbandoned
	d.Status.Message = entry.Error
	d.Status.NextAttemptTime = &metav1.MicroTime{Time: now}
	retries.WithLabelValues(string(r.Channel), string(notifyv1.ReasonTimeout)).Inc()
	if err := r.Status().Update(ctx, d); err != nil {
		if apierrors.IsConflict(err) {
			return ctrl.Result{Requeue: true}, nil
		}
		return ctrl.Result{}, fmt.Errorf("recording abandoned attempt: %w", err)
	}
	return ctrl.Result{}, nil
}

func (r *DeliveryReconciler) recordSuccess(ctx context.Context, d *notifyv1.ChannelDelivery, attempt int32, start time.Time, elapsed time.Duration, providerName string, res channel.Result) error {
	now := r.Clock.Now()
	appendHistory(&d.Status, notifyv1.Attempt{
		Number:    attempt,
		StartTime: metav1.MicroTime{Time: start},
		Duration:  &metav1.Duration{Duration: elapsed},
		Outcome:   OutcomeSucceeded,
		Provider:  providerName,
	})
	d.Status.Attempts = attempt
	d.Status.Provider = providerName
	d.Status.ProviderMessageID = res.ProviderMessageID
	d.Status.AttemptStartTime = nil
	d.Status.NextAttemptTime = nil
	if err := r.finish(ctx, d, notifyv1.DeliverySucceeded, ReasonDelivered, ""); err != nil {
		return err
	}
	deliveryLatency.WithLabelValues(string(r.Channel)).Observe(now.Sub(d.CreationTimestamp.Time).Seconds())
	return nil
}

func (r *DeliveryReconciler) recordFailure(ctx context.Context, d *notifyv1.ChannelDelivery, policy retry.Policy, attempt int32, start time.Time, elapsed time.Duration, providerName string, sendErr error) (ctrl.Result, error) {
	ce := channel.Classify(sendErr)
	reason := ce.Reason
	errText := truncate(ce.Error(), 1024)
	appendHistory(&d.Status, notifyv1.Attempt{
		Number:    attempt,
		StartTime: metav1.MicroTime{Time: start},
		Duration:  &metav1.Duration{Duration: elapsed},
		Outcome:   OutcomeFailed,
		Reason:    reason,
		Error:     errText,
		Provider:  providerName,
	})
	d.Status.Attempts = attempt
	d.Status.AttemptStartTime = nil
	d.Status.LastError = errText
	d.Status.LastErrorReason = reason
	if providerName != "" {
		d.Status.Provider = providerName
	}

	switch {
	case ce.Reason == notifyv1.ReasonInvalidAddress:
		return ctrl.Result{}, r.finish(ctx, d, notifyv1.DeliverySkipped, ReasonInvalidAddress, errText)
	case !ce.Retryable():
		return ctrl.Result{}, r.finish(ctx, d, notifyv1.DeliveryFailed, permanentReason(ce), errText)
	}
	delay, again := policy.Next(int(attempt), ce.RetryAfter, r.rand)
	if !again {
		reason := ReasonAttemptsExhausted
		if ce.Code == ReasonProviderNotReady {
			reason = ReasonProviderNotReady
		}
		return ctrl.Result{}, r.finish(ctx, d, notifyv1.DeliveryFailed, reason,
			fmt.Sprintf("%d of %d attempts failed; last error: %s", attempt, policy.MaxAttempts, errText))
	}
	next := r.Clock.Now().Add(delay)
	d.Status.Phase = notifyv1.DeliveryPending
	d.Status.Reason = ReasonRetryScheduled
	if ce.Code == ReasonProviderNotReady {
		d.Status.Reason = ReasonProviderNotReady
	}
	d.Status.Message = fmt.Sprintf("attempt %d failed (%s); retrying in %s", attempt, ce.Reason, delay.Round(time.Millisecond))
	d.Status.NextAttemptTime = &metav1.MicroTime{Time: next}
	retries.WithLabelValues(string(r.Channel), string(reason)).Inc()
	if err := r.writeStatus(ctx, d); err != nil {
		r.remember(d, attempt)
		return ctrl.Result{}, err
	}
	r.Recorder.Eventf(d, nil, "Warning", d.Status.Reason, "Deliver", "%s", d.Status.Message+": "+errText)
	return ctrl.Result{RequeueAfter: delay}, nil
}

func permanentReason(ce *channel.Error) string {
	if ce.Code == ReasonProviderNotReady {
		return ReasonProviderNotReady
	}
	return ReasonPermanentFailure
}

// recordUnrecorded writes an attempt's outcome that could not be written
// when the attempt ended.
func (r *DeliveryReconciler) recordUnrecorded(ctx context.Context, d *notifyv1.ChannelDelivery, o *unrecordedOutcome) (ctrl.Result, error) {
	if d.Status.Phase != notifyv1.DeliverySending || d.Status.Attempts != o.attempt {
		// Someone else moved the delivery on; what we remember is stale.
		r.unrecorded.Delete(d.UID)
		return ctrl.Result{Requeue: true}, nil
	}
	d.Status = *o.status.DeepCopy()
	if err := r.writeStatus(ctx, d); err != nil {
		return ctrl.Result{}, err
	}
	r.unrecorded.Delete(d.UID)
	log.FromContext(ctx).Info("recorded an attempt whose result could not be written earlier", "attempt", o.attempt, "phase", d.Status.Phase)
	if next := d.Status.NextAttemptTime; next != nil {
		return ctrl.Result{RequeueAfter: max(next.Sub(r.Clock.Now()), 0)}, nil
	}
	return ctrl.Result{}, nil
}

// remember keeps an attempt's outcome whose status write failed, so that
// it is written later rather than the message sent again.
func (r *DeliveryReconciler) remember(d *notifyv1.ChannelDelivery, attempt int32) {
	if !r.Handler.NeedsClaim() {
		return // nothing left the cluster; simply try again
	}
	r.unrecorded.Store(d.UID, &unrecordedOutcome{attempt: attempt, status: *d.Status.DeepCopy()})
}

// finish moves the delivery to a terminal phase.
func (r *DeliveryReconciler) finish(ctx context.Context, d *notifyv1.ChannelDelivery, phase notifyv1.DeliveryPhase, reason, message string) error {
	d.Status.Phase = phase
	d.Status.Reason = reason
	d.Status.Message = message
	d.Status.NextAttemptTime = nil
	d.Status.CompletionTime = &metav1.MicroTime{Time: r.Clock.Now()}
	if err := r.writeStatus(ctx, d); err != nil {
		r.remember(d, d.Status.Attempts)
		return err
	}
	deliveriesTotal.WithLabelValues(string(r.Channel), string(phase)).Inc()
	if phase != notifyv1.DeliverySucceeded && !(phase == notifyv1.DeliverySkipped && intendedSkip(reason)) {
		r.Recorder.Eventf(d, nil, "Warning", reason, "Deliver", "delivery %s: %s", phase, message)
	}
	return nil
}

// writeStatus records the outcome of an attempt. After a send, the result
// must not be lost to a conflict, so it retries on conflict against a fresh
// read, as long as nobody else finished the delivery meanwhile. Only the
// inbox writes these objects besides us (read state), and it does not touch
// the fields an attempt sets.
func (r *DeliveryReconciler) writeStatus(ctx context.Context, d *notifyv1.ChannelDelivery) error {
	want := d.Status
	for i := 0; ; i++ {
		err := r.Status().Update(ctx, d)
		if err == nil || !apierrors.IsConflict(err) || i == 4 {
			if err != nil {
				return fmt.Errorf("writing delivery status: %w", err)
			}
			return nil
		}
		if err := r.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
			return fmt.Errorf("re-reading delivery after conflict: %w", err)
		}
		if d.Status.Phase.Finished() {
			return nil
		}
		read, archived, response := d.Status.ReadTime, d.Status.ArchivedTime, d.Status.Response
		d.Status = want
		d.Status.ReadTime, d.Status.ArchivedTime, d.Status.Response = read, archived, response
	}
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

// message translates a delivery into what a channel sends.
func message(d *notifyv1.ChannelDelivery, attempt int) *channel.Message {
	c := d.Spec.Content
	m := &channel.Message{
		ID:           string(d.UID),
		Namespace:    d.Namespace,
		Delivery:     d.Name,
		Notification: d.Spec.Notification,
		Attempt:      attempt,
		Type:         string(c.Type),
		Category:     c.Category,
		Title:        c.Title,
		Body:         c.Message,
		Recipient: channel.Recipient{
			Name:        d.Spec.Recipient.Name,
			Username:    d.Spec.Recipient.Username,
			DisplayName: d.Spec.Recipient.DisplayName,
			Email:       d.Spec.Recipient.Email,
			Phone:       d.Spec.Recipient.Phone,
			WebhookURL:  d.Spec.Recipient.WebhookURL,
		},
		CreatedAt: d.CreationTimestamp.Time,
	}
	for _, a := range c.Actions {
		m.Actions = append(m.Actions, channel.Action{ID: a.ID, Label: a.Label})
	}
	if e := c.Email; e != nil {
		m.Email = &channel.EmailContent{Subject: e.Subject, Text: e.Text, HTML: e.HTML}
	}
	if w := c.WhatsApp; w != nil {
		m.WhatsApp = &channel.WhatsAppContent{Text: w.Text}
		if t := w.Template; t != nil {
			m.WhatsApp.TemplateName = t.Name
			m.WhatsApp.TemplateLanguage = t.Language
			m.WhatsApp.TemplateParams = t.Params
			m.WhatsApp.ContentSID = t.ContentSID
		}
	}
	if c.WebhookPayload != "" {
		m.WebhookPayload = []byte(c.WebhookPayload)
	}
	return m
}

// SetupWithManager registers the reconciler for its channel only: the
// predicate filters on the channel label, so each channel's workqueue holds
// only its own deliveries and one slow channel cannot starve another.
func (r *DeliveryReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	onlyChannel := predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetLabels()[notifyv1.LabelChannel] == string(r.Channel)
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("delivery-"+string(r.Channel)).
		For(&notifyv1.ChannelDelivery{}, builder.WithPredicates(onlyChannel, unfinishedDelivery)).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, r.Workers)}).
		Complete(r)
}

// unfinishedDelivery drops events of deliveries that are already finished:
// nothing more happens to them here, and at scale the inbox's read-state
// writes would otherwise fill the channel's queue.
var unfinishedDelivery = predicate.NewPredicateFuncs(func(o client.Object) bool {
	d, ok := o.(*notifyv1.ChannelDelivery)
	return !ok || !d.Status.Phase.Finished()
})
