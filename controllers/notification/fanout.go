package notification

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/audience"
	"github.com/herald-dev/herald/internal/digest"
	"github.com/herald-dev/herald/internal/metrics"
	"github.com/herald-dev/herald/internal/render"
	"github.com/herald-dev/herald/internal/retry"
)

// dispatch resolves the audience, renders the content and creates one
// ChannelDelivery per (channel, recipient). Names are deterministic and
// creation tolerates AlreadyExists, so a restart mid-way creates nothing
// twice.
func (r *Reconciler) dispatch(ctx context.Context, n *notifyv1.Notification, now time.Time) (ctrl.Result, error) {
	if n.Status.Phase == "" {
		n.Status.Phase = notifyv1.NotificationPending
	}
	if n.Spec.ExpiresAt != nil && !now.Before(n.Spec.ExpiresAt.Time) {
		msg := fmt.Sprintf("expired at %s before it was dispatched", n.Spec.ExpiresAt.UTC().Format(time.RFC3339))
		notifyv1.SetCondition(n, notifyv1.ConditionDispatched, metav1.ConditionFalse, notifyv1.ReasonExpired, msg)
		notifyv1.SetCondition(n, notifyv1.ConditionDelivered, metav1.ConditionFalse, notifyv1.ReasonExpired, msg)
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
			notifyv1.SetCondition(n, notifyv1.ConditionDispatched, metav1.ConditionFalse, notifyv1.ReasonTemplateNotFound,
				fmt.Sprintf("NotificationTemplate %q not found in namespace %s; nothing is sent until it exists", ref.Name, n.Namespace))
			return ctrl.Result{RequeueAfter: templateRetryInterval}, nil
		}
		tmpl = &t.Spec
	}
	content, err := render.Content(&n.Spec, tmpl)
	if err != nil {
		notifyv1.SetCondition(n, notifyv1.ConditionDispatched, metav1.ConditionFalse, notifyv1.ReasonTemplateInvalid,
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
		notifyv1.SetCondition(n, notifyv1.ConditionDispatched, metav1.ConditionFalse, notifyv1.ReasonInvalidAudience, err.Error())
		n.Status.Phase = notifyv1.NotificationFailed
		n.Status.CompletionTime = &metav1.Time{Time: now}
		notifyv1.SetCondition(n, notifyv1.ConditionDelivered, metav1.ConditionFalse, notifyv1.ReasonInvalidAudience, err.Error())
		return ctrl.Result{}, nil
	}

	deliveries := r.plan(n, content, res, now)
	existing, err := r.existingDeliveries(ctx, n)
	if err != nil {
		return ctrl.Result{}, err
	}
	out, err := r.createAll(ctx, n, deliveries, existing, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	if out.notCreated > 0 {
		// Cancelled mid-way (operator.go): the deliveries not created
		// never will be, and count as cancelled.
		n.Status.Recipients = int32(len(res.Recipients))
		n.Status.Unresolved = capList(res.Unresolved, 100)
		n.Status.Cancel = &notifyv1.CancelRecord{Value: notifyv1.FitText(out.cancelValue, maxAnnotationValue), NotCreated: out.notCreated}
		notifyv1.SetCondition(n, notifyv1.ConditionDispatched, metav1.ConditionFalse, notifyv1.ReasonCancelled,
			fmt.Sprintf("the fan-out stopped when the notification was cancelled: %d of %d deliveries were not created", out.notCreated, len(deliveries)))
		return ctrl.Result{}, nil
	}
	if len(out.waiting) > 0 {
		// Deliveries of an earlier Notification of this name still hold
		// some names; the garbage collector deletes them shortly.
		deadline := n.CreationTimestamp.Add(oldDeliveriesWait)
		notifyv1.SetCondition(n, notifyv1.ConditionDispatched, metav1.ConditionFalse, notifyv1.ReasonDeliveryNameTaken,
			fmt.Sprintf("%d delivery names (%s) are still held by deliveries of an earlier Notification named %s awaiting garbage collection; waiting until %s, then they count as failed",
				len(out.waiting), strings.Join(capList(out.waiting, 3), ", "), n.Name, deadline.UTC().Format(time.RFC3339)))
		return ctrl.Result{RequeueAfter: min(oldDeliveriesRecheck, max(deadline.Sub(now), time.Second))}, nil
	}
	n.Status.Rejected, n.Status.RejectedCounts = nil, nil
	perChannel := map[notifyv1.Channel]int32{}
	for _, rj := range out.rejected {
		perChannel[rj.Channel]++
		if len(n.Status.Rejected) < maxRejectedListed {
			n.Status.Rejected = append(n.Status.Rejected, rj)
		}
	}
	for _, ch := range notifyv1.Channels {
		if c := perChannel[ch]; c > 0 {
			n.Status.RejectedCounts = append(n.Status.RejectedCounts, notifyv1.ChannelCount{Channel: ch, Count: c})
		}
	}

	n.Status.Recipients = int32(len(res.Recipients))
	n.Status.Unresolved = capList(res.Unresolved, 100)
	n.Status.Phase = notifyv1.NotificationDispatching
	n.Status.DispatchTime = &metav1.Time{Time: now}
	msg := fmt.Sprintf("%d deliveries for %d recipients on %d channels", len(deliveries), len(res.Recipients), len(n.Spec.Channels))
	if len(out.rejected) > 0 {
		msg += fmt.Sprintf("; %d not created (status.rejected)", len(out.rejected))
	}
	if len(deliveries) == 0 {
		msg = "the audience matched no Recipient"
		notifyv1.SetCondition(n, notifyv1.ConditionDispatched, metav1.ConditionTrue, notifyv1.ReasonNoRecipients, msg)
	} else {
		notifyv1.SetCondition(n, notifyv1.ConditionDispatched, metav1.ConditionTrue, notifyv1.ReasonDispatched, msg)
	}
	return ctrl.Result{}, nil
}

// plan builds every delivery of the notification, skipped ones included,
// so that each decision is visible with kubectl.
func (r *Reconciler) plan(n *notifyv1.Notification, content notifyv1.RenderedContent, res audience.Resolution, now time.Time) []*notifyv1.ChannelDelivery {
	sendAt := now
	if n.Spec.DeliverAfter != nil && n.Spec.DeliverAfter.After(now) {
		sendAt = n.Spec.DeliverAfter.Time
	}
	retryPolicy := retry.Resolve(n.Spec.Retry, r.DefaultRetry).Spec()
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
			if !dec.Send {
				out = append(out, d)
				continue
			}
			if p := digest.Find(rc.Spec.Preferences.Digests, n.Spec.Type, n.Spec.Category, ch); p != nil {
				// Held for the window that is open when it would be sent;
				// a schedule that cannot be used (the Recipient's
				// AddressesValid condition says why) holds nothing.
				from := sendAt
				if dec.NotBefore != nil && dec.NotBefore.After(from) {
					from = *dec.NotBefore
				}
				if end, err := digest.WindowEnd(p, rc.Spec.Timezone, from); err == nil {
					name := digest.DeliveryName(rc.Name, ch, end, n.Labels[notifyv1.LabelShardKey])
					d.Spec.Digest = &notifyv1.DigestHold{Name: name, Until: metav1.NewTime(end)}
					if p.TemplateRef != nil {
						d.Spec.Digest.Template = p.TemplateRef.Name
					}
					d.Spec.NotBefore = nil
					d.Labels[notifyv1.LabelDigest] = notifyv1.LabelValue(name)
				}
			}
			d.Spec.DeliveredOnCreate = deliveredOnCreate(d, now)
			out = append(out, d)
		}
		for _, user := range res.Unresolved {
			d := r.newDelivery(n, ch, user, content, retryPolicy, timeout)
			d.Spec.Recipient = notifyv1.RecipientSnapshot{Name: user}
			d.Spec.Skip = &notifyv1.SkipDecision{
				Reason:  notifyv1.ReasonUnknownRecipient,
				Message: fmt.Sprintf("no Recipient named %q in namespace %s", user, n.Namespace),
			}
			out = append(out, d)
		}
	}
	return out
}

// deliveredOnCreate reports whether the planned delivery d is delivered by
// being created: an in-app delivery that is due now, for a recipient with a
// user name (the inbox it goes to), not held for a digest and not expired.
// What the in-app channel's handler would check at its attempt is checked
// here instead, so no controller has to write its outcome. Deferred ones
// (quiet hours, deliverAfter) keep their attempt: they become visible
// when it records them.
func deliveredOnCreate(d *notifyv1.ChannelDelivery, now time.Time) bool {
	return d.Spec.Channel == notifyv1.ChannelInApp && d.Spec.Skip == nil && d.Spec.Digest == nil &&
		d.Spec.NotBefore == nil && d.Spec.Recipient.Username != "" &&
		(d.Spec.ExpiresAt == nil || now.Before(d.Spec.ExpiresAt.Time))
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
	case notifyv1.ChannelSlack:
		s.Slack, s.Timezone = rc.Spec.Slack.DeepCopy(), rc.Spec.Timezone
	case notifyv1.ChannelTeams:
		// The reference to the room's webhook, never the URL: it is a
		// credential and stays in its Secret.
		s.Teams, s.Timezone = rc.Spec.Teams.DeepCopy(), rc.Spec.Timezone
	case notifyv1.ChannelTelegram:
		s.Telegram, s.Timezone = rc.Spec.Telegram.DeepCopy(), rc.Spec.Timezone
	}
	return s
}

func (r *Reconciler) newDelivery(n *notifyv1.Notification, ch notifyv1.Channel, recipient string, content notifyv1.RenderedContent, rp *notifyv1.RetryPolicy, timeout *metav1.Duration) *notifyv1.ChannelDelivery {
	d := &notifyv1.ChannelDelivery{
		ObjectMeta: metav1.ObjectMeta{
			Name:      DeliveryName(n.Name, ch, recipient),
			Namespace: n.Namespace,
			Labels: map[string]string{
				notifyv1.LabelNotification: notifyv1.LabelValue(n.Name),
				notifyv1.LabelChannel:      string(ch),
				notifyv1.LabelRecipient:    notifyv1.LabelValue(recipient),
			},
		},
		Spec: notifyv1.ChannelDeliverySpec{
			Notification: n.Name,
			Channel:      ch,
			Provider:     n.Spec.Providers.For(ch),
			Content:      contentFor(content, ch),
			Retry:        rp,
			Timeout:      timeout,
			ExpiresAt:    n.Spec.ExpiresAt,
		},
	}
	if n.Labels[notifyv1.LabelHeraldAlert] == "true" {
		// Herald's alerts about itself never count towards another alert.
		d.Labels[notifyv1.LabelHeraldAlert] = "true"
	}
	if key, ok := n.Labels[notifyv1.LabelShardKey]; ok {
		// The delivery is worked on by its notification's shard.
		d.Labels[notifyv1.LabelShardKey] = key
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

// ContentFor is contentFor for the digests the delivery reconcilers make.
func ContentFor(c notifyv1.RenderedContent, ch notifyv1.Channel) notifyv1.RenderedContent {
	return contentFor(c, ch)
}

// contentFor keeps of the rendered content what ch sends, so that one
// channel's content (a WhatsApp text at the size limit) cannot make
// another channel's delivery too large to create. Title and message stay
// on every channel: each falls back to them (email subject and text,
// WhatsApp text, the webhook's default body, the inbox item).
func contentFor(c notifyv1.RenderedContent, ch notifyv1.Channel) notifyv1.RenderedContent {
	out := notifyv1.RenderedContent{Type: c.Type, Category: c.Category, Title: c.Title, Message: c.Message}
	switch ch {
	case notifyv1.ChannelInApp:
		out.Actions = c.Actions
	case notifyv1.ChannelEmail:
		out.Email = c.Email
	case notifyv1.ChannelWhatsApp:
		out.WhatsApp = c.WhatsApp
	case notifyv1.ChannelWebhook:
		out.Actions, out.WebhookPayload = c.Actions, c.WebhookPayload
	case notifyv1.ChannelSlack:
		out.Actions, out.Slack = c.Actions, c.Slack
	case notifyv1.ChannelTeams:
		out.Actions, out.Teams = c.Actions, c.Teams
	case notifyv1.ChannelTelegram:
		out.Telegram = c.Telegram
	}
	return out
}

// existingDeliveries maps the names of the cached deliveries that name
// the notification to whether the notification controls them: a
// Notification of the same name deleted a moment ago may still have
// deliveries awaiting garbage collection.
func (r *Reconciler) existingDeliveries(ctx context.Context, n *notifyv1.Notification) (map[string]bool, error) {
	var list notifyv1.ChannelDeliveryList
	if err := r.List(ctx, &list, client.InNamespace(n.Namespace), client.MatchingFields{DeliveryIndex: n.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing deliveries: %w", err)
	}
	out := make(map[string]bool, len(list.Items))
	for i := range list.Items {
		out[list.Items[i].Name] = metav1.IsControlledBy(&list.Items[i], n)
	}
	return out, nil
}

// createOutcome is what a fan-out's creates left undone.
type createOutcome struct {
	// rejected are deliveries that will never be created.
	rejected []notifyv1.RejectedDelivery
	// waiting are names held by deliveries of an earlier Notification of
	// the same name, within oldDeliveriesWait.
	waiting []string
	// notCreated counts the deliveries not created because the
	// notification was cancelled (cancelValue) during the fan-out.
	notCreated  int32
	cancelValue string
}

// createAll creates the deliveries that do not exist yet. A create the API
// server refuses for good (permanentCreateError) ends that one delivery;
// a transient error is returned, and the fan-out runs again with backoff.
func (r *Reconciler) createAll(ctx context.Context, n *notifyv1.Notification, deliveries []*notifyv1.ChannelDelivery, existing map[string]bool, now time.Time) (createOutcome, error) {
	var (
		mu  sync.Mutex
		out createOutcome
	)
	reject := func(d *notifyv1.ChannelDelivery, reason, msg string) {
		mu.Lock()
		defer mu.Unlock()
		out.rejected = append(out.rejected, notifyv1.RejectedDelivery{
			Channel: d.Spec.Channel, Recipient: notifyv1.FitText(d.Spec.Recipient.Name, 253), Reason: reason, Message: notifyv1.FitText(msg, 1000)})
	}
	held := func(d *notifyv1.ChannelDelivery, holder *notifyv1.ChannelDelivery) {
		if stale := staleDelivery(holder, n); stale && now.Before(n.CreationTimestamp.Add(oldDeliveriesWait)) {
			mu.Lock()
			out.waiting = append(out.waiting, d.Name)
			mu.Unlock()
			return
		}
		reject(d, notifyv1.ReasonDeliveryNameTaken, fmt.Sprintf("the name %s is held by a ChannelDelivery this Notification does not control (%s)", d.Name, controllerOf(holder)))
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, r.FanOutParallelism))
	for _, d := range deliveries {
		ours, found := existing[d.Name]
		if found && ours {
			continue
		}
		g.Go(func() error {
			if v := r.cancelSeen(gctx, n); v != "" {
				mu.Lock()
				out.notCreated++
				out.cancelValue = v
				mu.Unlock()
				return nil
			}
			if found {
				var holder notifyv1.ChannelDelivery
				if err := r.Get(gctx, client.ObjectKeyFromObject(d), &holder); err == nil {
					held(d, &holder)
					return nil
				}
			}
			err := r.Create(gctx, d)
			switch {
			case err == nil:
				if d.Spec.DeliveredOnCreate {
					// Its outcome, counted here as a controller would
					// count it at a status write.
					metrics.DeliveriesTotal.WithLabelValues(string(d.Spec.Channel), string(notifyv1.DeliverySucceeded)).Inc()
					metrics.DeliveryLatency.WithLabelValues(string(d.Spec.Channel)).Observe(0)
				}
				return nil
			case apierrors.IsAlreadyExists(err):
				holder, err := r.readDelivery(gctx, client.ObjectKeyFromObject(d))
				if err != nil {
					return fmt.Errorf("reading delivery %s that already exists: %w", d.Name, err)
				}
				if !metav1.IsControlledBy(holder, n) {
					held(d, holder)
				}
				return nil
			case permanentCreateError(err):
				reject(d, notifyv1.ReasonDeliveryRejected, err.Error())
				return nil
			default:
				return fmt.Errorf("creating delivery %s: %w", d.Name, err)
			}
		})
	}
	if err := g.Wait(); err != nil {
		return createOutcome{}, err
	}
	// The order of creates is not; status must not change with it.
	sort.Slice(out.rejected, func(i, j int) bool {
		a, b := out.rejected[i], out.rejected[j]
		if a.Channel != b.Channel {
			return a.Channel < b.Channel
		}
		return a.Recipient < b.Recipient
	})
	sort.Strings(out.waiting)
	return out, nil
}

// readDelivery reads a delivery past the cache when it can: one that
// already exists may not have reached the cache.
func (r *Reconciler) readDelivery(ctx context.Context, key client.ObjectKey) (*notifyv1.ChannelDelivery, error) {
	var reader client.Reader = r.Client
	if r.APIReader != nil {
		reader = r.APIReader
	}
	var d notifyv1.ChannelDelivery
	if err := reader.Get(ctx, key, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// staleDelivery reports whether d belongs to an earlier Notification of
// n's name, deleted and awaiting garbage collection of its deliveries.
func staleDelivery(d *notifyv1.ChannelDelivery, n *notifyv1.Notification) bool {
	ref := metav1.GetControllerOf(d)
	return ref != nil && ref.Kind == "Notification" && ref.Name == n.Name && ref.UID != n.UID
}

func controllerOf(d *notifyv1.ChannelDelivery) string {
	if ref := metav1.GetControllerOf(d); ref != nil {
		return fmt.Sprintf("controlled by %s %s, uid %s", ref.Kind, ref.Name, ref.UID)
	}
	return "no controller"
}

// permanentCreateError reports whether the API server refused a create in
// a way that repeating it cannot change: the object is invalid or too
// large, or a quota or policy forbids it.
func permanentCreateError(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsRequestEntityTooLargeError(err) ||
		apierrors.IsForbidden(err) || strings.Contains(err.Error(), "request is too large")
}
