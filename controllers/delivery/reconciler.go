// Package delivery holds the ChannelDelivery reconciler: one instance per
// channel, each with its own workers, claims a delivery, has the channel's
// Handler send it, and records the attempt (attempt.go). Handlers are
// registered per channel (handler.go); in-app delivery is one of them
// (inapp.go), the channels sent through NotificationProviders share
// ProviderHandler (provider_handler.go).
package delivery

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/controllers/notification"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/metrics"
	"github.com/herald-dev/herald/internal/patch"
	"github.com/herald-dev/herald/internal/retry"
)

// abandonGrace is added to an attempt's timeout before a delivery found in
// Sending counts as abandoned by a crashed controller: the cache may simply
// not have caught up with our own result write yet.
const abandonGrace = 5 * time.Second

// recordTimeout bounds writing an attempt's outcome after the attempt.
const recordTimeout = 30 * time.Second

// Reconciler delivers the ChannelDeliveries of one channel. One instance
// runs per channel, with its own workers, watching only deliveries labelled
// with that channel.
type Reconciler struct {
	client.Client
	Channel  notifyv1.Channel
	Handler  Handler
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
	// DefaultRetry fills fields a delivery's policy leaves unset (only
	// deliveries created before their Notification resolved it do).
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

// +kubebuilder:rbac:groups=notify.herald.dev,resources=channeldeliveries,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=notify.herald.dev,resources=channeldeliveries/status,verbs=patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var d notifyv1.ChannelDelivery
	if err := r.Get(ctx, req.NamespacedName, &d); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if d.Phase().Finished() || d.DeletionTimestamp != nil {
		r.unrecorded.Delete(d.UID)
		return ctrl.Result{}, nil
	}
	if v, ok := r.unrecorded.Load(d.UID); ok {
		return r.recordUnrecorded(ctx, &d, v.(*unrecordedOutcome))
	}
	w := r.newStatusWrite(&d)
	if s := d.Spec.Skip; s != nil {
		return w.finish(ctx, notifyv1.DeliverySkipped, s.Reason, s.Message)
	}
	now := r.Clock.Now()
	policy := retry.Resolve(d.Spec.Retry, r.DefaultRetry)
	timeout := r.timeout(&d)

	if exp := deadline(&d); exp != nil && !now.Before(exp.Time) {
		return w.finish(ctx, notifyv1.DeliveryExpired, notifyv1.ReasonExpired,
			fmt.Sprintf("not delivered before it expired at %s", exp.UTC().Format(time.RFC3339)))
	}
	if d.Status.Phase == notifyv1.DeliverySending {
		return w.recoverAbandoned(ctx, policy, timeout, now)
	}
	// A cancelled notification's deliveries start no attempt; its
	// controller marks them Cancelled.
	if cancelled, err := r.cancelRequested(ctx, &d); cancelled || err != nil {
		return ctrl.Result{}, err
	}
	// A held delivery that left its digest (DigestMissed) goes on as any
	// other; its attempts say so even after their reasons replaced that.
	if d.Spec.Digest != nil && d.Status.Reason != notifyv1.ReasonDigestMissed && d.Status.Attempts == 0 {
		return r.holdForDigest(ctx, &d, w, now)
	}
	if d.Spec.NotBefore != nil && now.Before(d.Spec.NotBefore.Time) {
		return ctrl.Result{RequeueAfter: d.Spec.NotBefore.Sub(now)}, nil
	}
	if d.Status.NextAttemptTime != nil && now.Before(d.Status.NextAttemptTime.Time) {
		return ctrl.Result{RequeueAfter: d.Status.NextAttemptTime.Sub(now)}, nil
	}

	attempt := d.Status.Attempts + 1
	wait, err := r.Handler.Admit(&d, now)
	var pw *Wait
	if errors.As(err, &pw) {
		return w.waitForProvider(ctx, pw, now)
	}
	if err != nil {
		// Nothing was sent, but the attempt counts: a delivery whose
		// provider never appears must end, not wait forever.
		return w.recordFailure(ctx, policy, attemptMade{number: attempt, start: now}, err)
	}
	if wait > 0 {
		metrics.RateLimitWaits.WithLabelValues(string(r.Channel)).Inc()
		return ctrl.Result{RequeueAfter: wait}, nil
	}

	if r.Handler.NeedsClaim() {
		if err := w.claim(ctx, attempt, now); err != nil {
			return patch.RequeueOnConflict(err, fmt.Sprintf("the claim of attempt %d", attempt))
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
	start := r.Clock.Now()
	providerName, res, sendErr := r.Handler.Send(sendCtx, &d, msg)
	elapsed := r.Clock.Since(start)
	cancel()
	metrics.AttemptDuration.WithLabelValues(string(r.Channel)).Observe(elapsed.Seconds())
	made := attemptMade{number: attempt, start: now, elapsed: elapsed, provider: providerName}

	if sendErr != nil {
		if errors.Is(sendCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			sendErr = &channel.Error{Reason: notifyv1.ReasonTimeout, Err: fmt.Errorf("attempt timed out after %s: %w", timeout, sendErr)}
		}
		return w.recordFailure(ctx, policy, made, sendErr)
	}
	return ctrl.Result{}, w.recordSuccess(ctx, made, res)
}

func (r *Reconciler) timeout(d *notifyv1.ChannelDelivery) time.Duration {
	if d.Spec.Timeout != nil && d.Spec.Timeout.Duration > 0 {
		return d.Spec.Timeout.Duration
	}
	return r.DefaultTimeout
}

func (r *Reconciler) rand() float64 {
	if r.Rand != nil {
		return r.Rand()
	}
	return rand.Float64()
}

// SetupWithManager registers the reconciler for its channel only: the
// predicate filters on the channel label, so each channel's workqueue holds
// only its own deliveries and one slow channel cannot starve another.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
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
	return !ok || !d.Phase().Finished()
})

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
	if wa := c.WhatsApp; wa != nil {
		m.WhatsApp = &channel.WhatsAppContent{Text: wa.Text}
		if t := wa.Template; t != nil {
			m.WhatsApp.TemplateName = t.Name
			m.WhatsApp.TemplateLanguage = t.Language
			m.WhatsApp.TemplateParams = t.Params
			m.WhatsApp.ContentSID = t.ContentSID
		}
	}
	if c.WebhookPayload != "" {
		m.WebhookPayload = []byte(c.WebhookPayload)
	}
	rs := d.Spec.Recipient
	if a := rs.Slack; a != nil {
		m.Recipient.SlackUserID, m.Recipient.SlackChannelID = a.UserID, a.ChannelID
	}
	if a := rs.Teams; a != nil {
		m.Recipient.TeamsWebhook = &channel.SecretKey{Name: a.WebhookURLSecretRef.Name, Key: a.WebhookURLSecretRef.Key}
	}
	if a := rs.Telegram; a != nil {
		m.Recipient.TelegramChatID = a.ChatID
	}
	if sc := c.Slack; sc != nil {
		m.Slack = &channel.SlackContent{Text: sc.Text, Blocks: sc.Blocks}
	}
	if tc := c.Teams; tc != nil {
		m.Teams = &channel.TeamsContent{Card: tc.Card}
	}
	if tc := c.Telegram; tc != nil {
		m.Telegram = &channel.TelegramContent{Text: tc.Text, ParseMode: string(tc.ParseMode)}
	}
	if c.Type == notifyv1.TypeApproval && rs.Username != "" {
		// Approvals are answered in the inbox (admission requires inApp
		// beside slack and teams): chat messages link to the recipient's
		// in-app item of the same notification. A recipient without a
		// username, such as a room, has none; its link names the
		// notification only.
		m.InboxItem = notification.DeliveryName(d.Spec.Notification, notifyv1.ChannelInApp, rs.Name)
	}
	return m
}
