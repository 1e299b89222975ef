package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/audience"
	"github.com/herald-dev/herald/internal/render"
	"github.com/herald-dev/herald/internal/retry"
)

// Notification condition reasons.
const (
	ReasonDispatched         = "Dispatched"
	ReasonTemplateNotFound   = "TemplateNotFound"
	ReasonTemplateInvalid    = "TemplateInvalid"
	ReasonInvalidAudience    = "InvalidAudience"
	ReasonNoRecipients       = "NoRecipients"
	ReasonInProgress         = "InProgress"
	ReasonAllDelivered       = "AllDelivered"
	ReasonSomeFailed         = "SomeFailed"
	ReasonAllFailed          = "AllFailed"
	ReasonNotificationExpire = "Expired"
	ReasonUnknownRecipients  = "UnknownRecipients"
	ReasonAwaitingResponse   = "AwaitingResponse"
	ReasonQuorumReached      = "QuorumReached"
)

// deliveryNotificationIndex indexes ChannelDeliveries by spec.notification.
const deliveryNotificationIndex = "spec.notification"

// bigFanOut is the number of deliveries from which a notification in flight
// is not even counted again within StatusInterval: counting lists all its
// deliveries, and every one of their updates wakes the notification.
const bigFanOut = 100

// templateRetryInterval is how often a notification waiting for a missing
// or broken template looks again.
const templateRetryInterval = 30 * time.Second

// NotificationReconciler fans Notifications out into ChannelDeliveries and
// aggregates their outcomes back into the Notification's status.
type NotificationReconciler struct {
	client.Client
	// APIReader reads past the cache. A user the cached Recipients do not
	// know may have been created a moment ago (a manifest applying both
	// at once): that is checked against the API server before the
	// delivery is skipped for good.
	APIReader      client.Reader
	Recorder       events.EventRecorder
	Clock          clock.PassiveClock
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

	progress sync.Map // types.NamespacedName -> *progressMemo
}

// +kubebuilder:rbac:groups=notify.herald.dev,resources=notifications,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=notify.herald.dev,resources=notifications/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=notify.herald.dev,resources=recipients,verbs=get;list;watch
// +kubebuilder:rbac:groups=notify.herald.dev,resources=notificationtemplates,verbs=get;list;watch

func (r *NotificationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var n notifyv1.Notification
	if err := r.Get(ctx, req.NamespacedName, &n); err != nil {
		if apierrors.IsNotFound(err) {
			r.progress.Delete(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if n.DeletionTimestamp != nil {
		r.progress.Delete(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	before := n.Status.DeepCopy()
	now := r.Clock.Now()
	result := ctrl.Result{}
	memo := r.memo(req.NamespacedName, n.UID)

	dispatched := meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionDispatched)
	switch {
	case dispatched || n.Status.Phase.Finished():
	case memo.dispatch != nil:
		// Dispatched earlier by this process, status not written yet.
		memo.dispatch.applyTo(&n.Status)
		dispatched = true
	default:
		res, err := r.dispatch(ctx, &n, now)
		if err != nil {
			return ctrl.Result{}, err
		}
		result = res
		if meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionDispatched) {
			memo.dispatch = snapshotDispatch(&n.Status)
			memo.since = now
			dispatched = true
		}
	}

	if dispatched && memo.dispatch == nil && !n.Status.Phase.Finished() && n.Status.Deliveries.Total >= bigFanOut {
		if wait := memo.since.Add(r.StatusInterval).Sub(now); wait > 0 {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
	}
	if dispatched {
		if err := r.aggregate(ctx, &n, now); err != nil {
			return ctrl.Result{}, err
		}
	}
	n.Status.ObservedGeneration = n.Generation

	if !equality.Semantic.DeepEqual(before, &n.Status) {
		// While deliveries are in flight, status is written at most once
		// per StatusInterval: a fan-out to thousands would otherwise write
		// the notification once per delivery, and a quick single delivery
		// is recorded by one write instead of two.
		if wait := memo.since.Add(r.StatusInterval).Sub(now); wait > 0 && dispatched && !n.Status.Phase.Finished() {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
		if err := r.Status().Update(ctx, &n); err != nil {
			if apierrors.IsConflict(err) {
				return ctrl.Result{Requeue: true}, nil
			}
			return ctrl.Result{}, fmt.Errorf("updating notification status: %w", err)
		}
		memo.since = now
		if meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionDispatched) {
			memo.dispatch = nil
		}
		r.announce(&n, before)
	}
	if n.Status.Phase.Finished() {
		r.progress.Delete(req.NamespacedName)
	}

	if n.Status.Phase.Finished() && n.Spec.TTLSecondsAfterFinished != nil && n.Status.CompletionTime != nil {
		expiry := n.Status.CompletionTime.Add(time.Duration(*n.Spec.TTLSecondsAfterFinished) * time.Second)
		if !now.Before(expiry) {
			log.FromContext(ctx).V(1).Info("deleting finished notification after its TTL")
			err := r.Delete(ctx, &n, client.PropagationPolicy(metav1.DeletePropagationBackground))
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		return ctrl.Result{RequeueAfter: expiry.Sub(now)}, nil
	}
	return result, nil
}

// progressMemo is what this process remembers about a notification in
// flight between its status writes.
type progressMemo struct {
	uid types.UID
	// dispatch holds the outcome of a fan-out whose status write was
	// deferred. It is only an optimisation: after a restart the fan-out
	// runs again and, its names being deterministic, creates nothing.
	dispatch *dispatchSnapshot
	// since is when status was last written (or the fan-out ran).
	since time.Time
}

func (r *NotificationReconciler) memo(key types.NamespacedName, uid types.UID) *progressMemo {
	v, _ := r.progress.LoadOrStore(key, &progressMemo{uid: uid})
	m := v.(*progressMemo)
	if m.uid != uid {
		// A new notification with the name of a deleted one.
		m = &progressMemo{uid: uid}
		r.progress.Store(key, m)
	}
	return m
}

// dispatchSnapshot is the part of status a fan-out sets.
type dispatchSnapshot struct {
	recipients   int32
	unresolved   []string
	dispatchTime *metav1.Time
	condition    metav1.Condition
}

func snapshotDispatch(s *notifyv1.NotificationStatus) *dispatchSnapshot {
	return &dispatchSnapshot{
		recipients:   s.Recipients,
		unresolved:   s.Unresolved,
		dispatchTime: s.DispatchTime,
		condition:    *meta.FindStatusCondition(s.Conditions, notifyv1.ConditionDispatched),
	}
}

func (d *dispatchSnapshot) applyTo(s *notifyv1.NotificationStatus) {
	s.Recipients, s.Unresolved, s.DispatchTime = d.recipients, d.unresolved, d.dispatchTime
	meta.SetStatusCondition(&s.Conditions, d.condition)
}

// announce emits Events for the transitions users care about: dispatch
// problems and completion. Successful deliveries get none; at scale that
// would double the API writes.
func (r *NotificationReconciler) announce(n *notifyv1.Notification, before *notifyv1.NotificationStatus) {
	if len(n.Status.Unresolved) > 0 && len(before.Unresolved) == 0 {
		r.Recorder.Eventf(n, nil, "Warning", ReasonUnknownRecipients, "Dispatch",
			"no Recipient named %s in namespace %s", strings.Join(n.Status.Unresolved, ", "), n.Namespace)
	}
	if c := meta.FindStatusCondition(n.Status.Conditions, notifyv1.ConditionDispatched); c != nil && c.Status == metav1.ConditionFalse {
		if old := meta.FindStatusCondition(before.Conditions, notifyv1.ConditionDispatched); old == nil || old.Reason != c.Reason || old.Message != c.Message {
			r.Recorder.Eventf(n, nil, "Warning", c.Reason, "Dispatch", "%s", c.Message)
		}
	}
	if n.Status.Phase.Finished() && !before.Phase.Finished() {
		notificationsFinished.WithLabelValues(string(n.Status.Phase)).Inc()
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

// dispatch resolves the audience, renders the content and creates one
// ChannelDelivery per (channel, recipient). Names are deterministic and
// creation tolerates AlreadyExists, so a restart mid-way creates nothing
// twice.
func (r *NotificationReconciler) dispatch(ctx context.Context, n *notifyv1.Notification, now time.Time) (ctrl.Result, error) {
	if n.Status.Phase == "" {
		n.Status.Phase = notifyv1.NotificationPending
	}
	if n.Spec.ExpiresAt != nil && !now.Before(n.Spec.ExpiresAt.Time) {
		msg := fmt.Sprintf("expired at %s before it was dispatched", n.Spec.ExpiresAt.UTC().Format(time.RFC3339))
		r.setCondition(n, notifyv1.ConditionDispatched, metav1.ConditionFalse, ReasonNotificationExpire, msg)
		r.setCondition(n, notifyv1.ConditionDelivered, metav1.ConditionFalse, ReasonNotificationExpire, msg)
		n.Status.Phase = notifyv1.NotificationExpired
		n.Status.CompletionTime = &metav1.Time{Time: now}
		return ctrl.Result{}, nil
	}

	var tmpl *notifyv1.NotificationTemplateContent
	if ref := n.Spec.TemplateRef; ref != nil {
		var t notifyv1.NotificationTemplate
		if err := r.Get(ctx, client.ObjectKey{Namespace: n.Namespace, Name: ref.Name}, &t); err != nil {
			if !apierrors.IsNotFound(err) {
				return ctrl.Result{}, fmt.Errorf("reading template %s: %w", ref.Name, err)
			}
			r.setCondition(n, notifyv1.ConditionDispatched, metav1.ConditionFalse, ReasonTemplateNotFound,
				fmt.Sprintf("NotificationTemplate %q not found in namespace %s; nothing is sent until it exists", ref.Name, n.Namespace))
			return ctrl.Result{RequeueAfter: templateRetryInterval}, nil
		}
		tmpl = &t.Spec
	}
	content, err := render.Content(&n.Spec, tmpl)
	if err != nil {
		r.setCondition(n, notifyv1.ConditionDispatched, metav1.ConditionFalse, ReasonTemplateInvalid,
			fmt.Sprintf("cannot render template %q: %v; nothing is sent", n.Spec.TemplateRef.Name, err))
		return ctrl.Result{RequeueAfter: templateRetryInterval}, nil
	}

	var all notifyv1.RecipientList
	if err := r.List(ctx, &all, client.InNamespace(n.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing recipients: %w", err)
	}
	res, err := audience.Resolve(n.Spec.Audience, all.Items)
	if err == nil && len(res.Unresolved) > 0 && r.APIReader != nil {
		var live notifyv1.RecipientList
		if err := r.APIReader.List(ctx, &live, client.InNamespace(n.Namespace)); err != nil {
			return ctrl.Result{}, fmt.Errorf("listing recipients from the API server: %w", err)
		}
		res, err = audience.Resolve(n.Spec.Audience, live.Items)
	}
	if err != nil {
		r.setCondition(n, notifyv1.ConditionDispatched, metav1.ConditionFalse, ReasonInvalidAudience, err.Error())
		n.Status.Phase = notifyv1.NotificationFailed
		n.Status.CompletionTime = &metav1.Time{Time: now}
		r.setCondition(n, notifyv1.ConditionDelivered, metav1.ConditionFalse, ReasonInvalidAudience, err.Error())
		return ctrl.Result{}, nil
	}

	deliveries := r.plan(n, content, res, now)
	existing, err := r.existingDeliveries(ctx, n)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.createAll(ctx, deliveries, existing); err != nil {
		return ctrl.Result{}, err
	}

	n.Status.Recipients = int32(len(res.Recipients))
	n.Status.Unresolved = capList(res.Unresolved, 100)
	n.Status.Phase = notifyv1.NotificationDispatching
	n.Status.DispatchTime = &metav1.Time{Time: now}
	msg := fmt.Sprintf("%d deliveries for %d recipients on %d channels", len(deliveries), len(res.Recipients), len(n.Spec.Channels))
	if len(deliveries) == 0 {
		msg = "the audience matched no Recipient"
		r.setCondition(n, notifyv1.ConditionDispatched, metav1.ConditionTrue, ReasonNoRecipients, msg)
	} else {
		r.setCondition(n, notifyv1.ConditionDispatched, metav1.ConditionTrue, ReasonDispatched, msg)
	}
	return ctrl.Result{}, nil
}

// plan builds every delivery of the notification, skipped ones included,
// so that each decision is visible with kubectl.
func (r *NotificationReconciler) plan(n *notifyv1.Notification, content notifyv1.RenderedContent, res audience.Resolution, now time.Time) []*notifyv1.ChannelDelivery {
	sendAt := now
	if n.Spec.DeliverAfter != nil && n.Spec.DeliverAfter.After(now) {
		sendAt = n.Spec.DeliverAfter.Time
	}
	retryPolicy := r.resolvedRetry(n.Spec.Retry)
	timeout := &metav1.Duration{Duration: r.DefaultTimeout}
	if n.Spec.Timeout != nil {
		timeout = n.Spec.Timeout
	}
	var out []*notifyv1.ChannelDelivery
	for _, ch := range n.Spec.Channels {
		for i := range res.Recipients {
			rc := &res.Recipients[i]
			d := r.newDelivery(n, ch, rc.Name, content, retryPolicy, timeout)
			d.Spec.Recipient = recipientSnapshot(rc, ch)
			if sendAt.After(now) {
				d.Spec.NotBefore = &metav1.Time{Time: sendAt}
			}
			dec := audience.Decide(rc, n.Spec.Type, n.Spec.Category, ch, sendAt)
			switch {
			case !dec.Send:
				d.Spec.Skip = &notifyv1.SkipDecision{Reason: dec.Reason, Message: dec.Message}
			case dec.NotBefore != nil:
				d.Spec.NotBefore = &metav1.Time{Time: *dec.NotBefore}
			}
			out = append(out, d)
		}
		for _, user := range res.Unresolved {
			d := r.newDelivery(n, ch, user, content, retryPolicy, timeout)
			d.Spec.Recipient = notifyv1.RecipientSnapshot{Name: user}
			d.Spec.Skip = &notifyv1.SkipDecision{
				Reason:  audience.ReasonUnknownRecipient,
				Message: fmt.Sprintf("no Recipient named %q in namespace %s", user, n.Namespace),
			}
			out = append(out, d)
		}
	}
	return out
}

// recipientSnapshot copies what the channel needs of a recipient into the
// delivery, and nothing more: addresses a channel does not use would be
// personal data kept in one more object (and read, stored and watched with
// it) for no purpose. Webhook receivers get the whole recipient, since they
// may route on any of it.
func recipientSnapshot(rc *notifyv1.Recipient, ch notifyv1.Channel) notifyv1.RecipientSnapshot {
	s := notifyv1.RecipientSnapshot{Name: rc.Name, Username: rc.Spec.Username, DisplayName: rc.Spec.DisplayName}
	switch ch {
	case notifyv1.ChannelEmail:
		s.Email, s.Timezone = rc.Spec.Email, rc.Spec.Timezone
	case notifyv1.ChannelWhatsApp:
		s.Phone, s.Timezone = rc.Spec.Phone, rc.Spec.Timezone
	case notifyv1.ChannelWebhook:
		s.Email, s.Phone, s.WebhookURL, s.Timezone = rc.Spec.Email, rc.Spec.Phone, rc.Spec.WebhookURL, rc.Spec.Timezone
	}
	return s
}

func (r *NotificationReconciler) newDelivery(n *notifyv1.Notification, ch notifyv1.Channel, recipient string, content notifyv1.RenderedContent, rp *notifyv1.RetryPolicy, timeout *metav1.Duration) *notifyv1.ChannelDelivery {
	d := &notifyv1.ChannelDelivery{
		ObjectMeta: metav1.ObjectMeta{
			Name:      DeliveryName(n.Name, ch, recipient),
			Namespace: n.Namespace,
			Labels: map[string]string{
				notifyv1.LabelNotification: LabelValue(n.Name),
				notifyv1.LabelChannel:      string(ch),
				notifyv1.LabelRecipient:    LabelValue(recipient),
			},
		},
		Spec: notifyv1.ChannelDeliverySpec{
			Notification: n.Name,
			Channel:      ch,
			Provider:     n.Spec.Providers.For(ch),
			Content:      content,
			Retry:        rp,
			Timeout:      timeout,
			ExpiresAt:    n.Spec.ExpiresAt,
		},
	}
	if ch == notifyv1.ChannelInApp {
		// An in-app delivery is recorded, not sent: it has no attempt that
		// could time out or be retried, so it carries no policy for them.
		d.Spec.Retry, d.Spec.Timeout = nil, nil
	}
	// Owner reference: deliveries go with their notification, and their
	// changes wake the notification's reconciler.
	_ = controllerutil.SetControllerReference(n, d, r.Scheme())
	return d
}

func (r *NotificationReconciler) resolvedRetry(p *notifyv1.RetryPolicy) *notifyv1.RetryPolicy {
	out := notifyv1.RetryPolicy{}
	if p != nil {
		out = *p.DeepCopy()
	}
	d := r.DefaultRetry
	if out.Strategy == "" {
		out.Strategy = notifyv1.BackoffStrategy(d.Strategy)
	}
	if out.MaxAttempts == nil {
		v := int32(d.MaxAttempts)
		out.MaxAttempts = &v
	}
	if out.InitialDelay == nil {
		out.InitialDelay = &metav1.Duration{Duration: d.InitialDelay}
	}
	if out.MaxDelay == nil {
		out.MaxDelay = &metav1.Duration{Duration: max(d.MaxDelay, out.InitialDelay.Duration)}
	}
	return &out
}

func (r *NotificationReconciler) existingDeliveries(ctx context.Context, n *notifyv1.Notification) (map[string]bool, error) {
	var list notifyv1.ChannelDeliveryList
	if err := r.List(ctx, &list, client.InNamespace(n.Namespace), client.MatchingFields{deliveryNotificationIndex: n.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing deliveries: %w", err)
	}
	out := make(map[string]bool, len(list.Items))
	for i := range list.Items {
		out[list.Items[i].Name] = true
	}
	return out, nil
}

func (r *NotificationReconciler) createAll(ctx context.Context, deliveries []*notifyv1.ChannelDelivery, existing map[string]bool) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, r.FanOutParallelism))
	for _, d := range deliveries {
		if existing[d.Name] {
			continue
		}
		g.Go(func() error {
			if err := r.Create(gctx, d); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("creating delivery %s: %w", d.Name, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// aggregate counts the notification's deliveries into its status and
// derives phase, conditions and approval responses.
func (r *NotificationReconciler) aggregate(ctx context.Context, n *notifyv1.Notification, now time.Time) error {
	var list notifyv1.ChannelDeliveryList
	if err := r.List(ctx, &list, client.InNamespace(n.Namespace), client.MatchingFields{deliveryNotificationIndex: n.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing deliveries: %w", err)
	}
	var total notifyv1.DeliveryCounts
	perChannel := map[notifyv1.Channel]*notifyv1.DeliveryCounts{}
	for _, ch := range n.Spec.Channels {
		perChannel[ch] = &notifyv1.DeliveryCounts{}
	}
	var problems, unfinished int32
	var responses []notifyv1.Response
	for i := range list.Items {
		d := &list.Items[i]
		if !metav1.IsControlledBy(d, n) {
			continue
		}
		c := perChannel[d.Spec.Channel]
		if c == nil {
			c = &notifyv1.DeliveryCounts{}
			perChannel[d.Spec.Channel] = c
		}
		count(&total, d.Status.Phase)
		count(c, d.Status.Phase)
		switch d.Status.Phase {
		case notifyv1.DeliveryFailed, notifyv1.DeliveryExpired, notifyv1.DeliveryCancelled:
			problems++
		case notifyv1.DeliverySkipped:
			if !intendedSkip(d.Status.Reason) {
				problems++
			}
		case notifyv1.DeliverySucceeded:
		default:
			unfinished++
		}
		if resp := d.Status.Response; resp != nil {
			responses = append(responses, notifyv1.Response{
				Recipient: d.Spec.Recipient.Name,
				Username:  resp.Username,
				Action:    resp.Action,
				Comment:   resp.Comment,
				Time:      resp.Time,
			})
		}
	}
	n.Status.Deliveries = total
	n.Status.Channels = n.Status.Channels[:0]
	for _, ch := range notifyv1.Channels {
		if c := perChannel[ch]; c != nil {
			n.Status.Channels = append(n.Status.Channels, notifyv1.ChannelStatus{Channel: ch, DeliveryCounts: *c})
		}
	}
	if len(n.Status.Channels) == 0 {
		n.Status.Channels = nil
	}
	// Answer times have whole seconds; the recipient name orders answers
	// given in the same second, so the order is the same on every count.
	sort.SliceStable(responses, func(i, j int) bool {
		if !responses[i].Time.Equal(&responses[j].Time) {
			return responses[i].Time.Before(&responses[j].Time)
		}
		return responses[i].Recipient < responses[j].Recipient
	})
	n.Status.Responses = responses
	if n.Spec.Type == notifyv1.TypeApproval {
		r.decideApproval(n)
	}

	// The cache may not show every delivery just created; the notification
	// is only finished when all that were planned are accounted for.
	expected := int32(len(n.Spec.Channels)) * (n.Status.Recipients + int32(len(n.Status.Unresolved)))
	if unfinished > 0 || total.Total < expected {
		n.Status.Phase = notifyv1.NotificationDispatching
		r.setCondition(n, notifyv1.ConditionDelivered, metav1.ConditionUnknown, ReasonInProgress,
			fmt.Sprintf("%d of %d deliveries finished", total.Total-unfinished, max(expected, total.Total)))
		n.Status.CompletionTime = nil
		return nil
	}
	switch {
	case total.Total == 0:
		n.Status.Phase = notifyv1.NotificationFailed
		r.setCondition(n, notifyv1.ConditionDelivered, metav1.ConditionFalse, ReasonNoRecipients, "the audience matched no Recipient")
	case problems == 0:
		n.Status.Phase = notifyv1.NotificationDelivered
		r.setCondition(n, notifyv1.ConditionDelivered, metav1.ConditionTrue, ReasonAllDelivered,
			fmt.Sprintf("%d delivered, %d skipped by preference", total.Succeeded, total.Skipped))
	case total.Succeeded > 0:
		n.Status.Phase = notifyv1.NotificationPartiallyDelivered
		r.setCondition(n, notifyv1.ConditionDelivered, metav1.ConditionFalse, ReasonSomeFailed,
			fmt.Sprintf("%d delivered, %d not (failed %d, expired %d, skipped %d)", total.Succeeded, problems, total.Failed, total.Expired, total.Skipped))
	case total.Expired > 0 && total.Failed == 0:
		n.Status.Phase = notifyv1.NotificationExpired
		r.setCondition(n, notifyv1.ConditionDelivered, metav1.ConditionFalse, ReasonNotificationExpire,
			fmt.Sprintf("%d deliveries expired before they could be made", total.Expired))
	default:
		n.Status.Phase = notifyv1.NotificationFailed
		r.setCondition(n, notifyv1.ConditionDelivered, metav1.ConditionFalse, ReasonAllFailed,
			fmt.Sprintf("nothing delivered: failed %d, expired %d, skipped %d", total.Failed, total.Expired, total.Skipped))
	}
	if n.Status.CompletionTime == nil {
		n.Status.CompletionTime = &metav1.Time{Time: now}
	}
	return nil
}

// decideApproval sets Approved or Rejected once enough answers agree: the
// first outcome to reach the quorum (default 1) wins, and answers are fixed
// once given, so the decision never flips.
func (r *NotificationReconciler) decideApproval(n *notifyv1.Notification) {
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
			r.setCondition(n, notifyv1.ConditionApproved, metav1.ConditionTrue, ReasonQuorumReached, fmt.Sprintf("approved by %s (%d of %d needed)", who, votes[o], quorum))
			r.setCondition(n, notifyv1.ConditionRejected, metav1.ConditionFalse, ReasonQuorumReached, "the notification was approved")
		} else {
			r.setCondition(n, notifyv1.ConditionRejected, metav1.ConditionTrue, ReasonQuorumReached, fmt.Sprintf("rejected by %s (%d of %d needed)", who, votes[o], quorum))
			r.setCondition(n, notifyv1.ConditionApproved, metav1.ConditionFalse, ReasonQuorumReached, "the notification was rejected")
		}
		return
	}
	msg := fmt.Sprintf("%d answers so far; %d needed", len(n.Status.Responses), quorum)
	r.setCondition(n, notifyv1.ConditionApproved, metav1.ConditionUnknown, ReasonAwaitingResponse, msg)
	r.setCondition(n, notifyv1.ConditionRejected, metav1.ConditionUnknown, ReasonAwaitingResponse, msg)
}

func count(c *notifyv1.DeliveryCounts, p notifyv1.DeliveryPhase) {
	c.Total++
	switch p {
	case notifyv1.DeliverySending:
		c.Sending++
	case notifyv1.DeliverySucceeded:
		c.Succeeded++
	case notifyv1.DeliveryFailed:
		c.Failed++
	case notifyv1.DeliverySkipped:
		c.Skipped++
	case notifyv1.DeliveryExpired:
		c.Expired++
	case notifyv1.DeliveryCancelled:
		c.Cancelled++
	default:
		c.Pending++
	}
}

// intendedSkip reports whether a skip reflects the recipient's own choice,
// which counts as delivered-as-intended rather than as a problem.
func intendedSkip(reason string) bool {
	return reason == audience.ReasonOptedOut || reason == audience.ReasonCategoryMuted
}

func (r *NotificationReconciler) setCondition(n *notifyv1.Notification, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&n.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: n.Generation,
	})
}

func capList(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// DeliveryName is the deterministic name of the delivery of notification
// on channel to recipient. Names longer than an object name allows are
// shortened with a hash of the full name, so they stay unique.
func DeliveryName(notification string, ch notifyv1.Channel, recipient string) string {
	name := fmt.Sprintf("%s-%s-%s", notification, strings.ToLower(string(ch)), recipient)
	return shorten(name, 253)
}

// LabelValue fits an object name into a label value (63 characters),
// keeping it readable when it already fits.
func LabelValue(name string) string {
	return shorten(name, 63)
}

func shorten(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return strings.TrimRight(s[:limit-11], "-.") + "-" + hex.EncodeToString(sum[:])[:10]
}

// SetupWithManager watches Notifications (spec changes only: its own status
// writes must not wake it), the deliveries it owns, and the templates that
// undispatched Notifications wait for (see template_controller.go).
func (r *NotificationReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	// Deliveries are found by an index on their notification: a label
	// selector on the cache would scan every delivery of the namespace on
	// each reconcile.
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &notifyv1.ChannelDelivery{}, deliveryNotificationIndex,
		func(o client.Object) []string { return []string{o.(*notifyv1.ChannelDelivery).Spec.Notification} }); err != nil {
		return fmt.Errorf("indexing deliveries by notification: %w", err)
	}
	if err := indexNotificationsByTemplate(context.Background(), mgr); err != nil {
		return fmt.Errorf("indexing notifications by template: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&notifyv1.Notification{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&notifyv1.ChannelDelivery{}).
		Watches(&notifyv1.NotificationTemplate{}, handler.EnqueueRequestsFromMapFunc(notificationsWaitingFor(mgr.GetClient())),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, r.Workers)}).
		Complete(r)
}
