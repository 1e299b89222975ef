package delivery

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/controllers/notification"
	"github.com/herald-dev/herald/internal/digest"
	"github.com/herald-dev/herald/internal/patch"
	"github.com/herald-dev/herald/internal/render"
)

// holdForDigest keeps a held delivery Pending (reason HeldForDigest) until
// its digest's window ends, then makes sure the digest delivery exists and
// ends Succeeded, recording which digest carried it.
//
// The digest delivery is made by whichever held delivery of the window
// comes first, listing every held delivery of the window it finds; its
// name is deterministic, so a second controller, or the same after a
// restart, finds it instead of making another, and it is sent once like
// any delivery. A held delivery the digest does not list (it reached the
// cache after the digest was made, or the digest was full) is sent on its
// own, with reason DigestMissed on the way: nothing is lost.
func (r *Reconciler) holdForDigest(ctx context.Context, d *notifyv1.ChannelDelivery, w *statusWrite, now time.Time) (ctrl.Result, error) {
	hold := d.Spec.Digest
	s := &d.Status
	if now.Before(hold.Until.Time) {
		if s.Phase == "" || s.Reason != notifyv1.ReasonHeldForDigest {
			s.Phase = notifyv1.DeliveryPending
			s.Reason = notifyv1.ReasonHeldForDigest
			s.Message = fmt.Sprintf("held for the recipient's digest %s, sent at %s", hold.Name, hold.Until.UTC().Format(time.RFC3339))
			if err := w.write(ctx); err != nil {
				return patch.RequeueOnConflict(err, "holding for a digest")
			}
		}
		return ctrl.Result{RequeueAfter: hold.Until.Sub(now)}, nil
	}

	var dg notifyv1.ChannelDelivery
	err := r.Get(ctx, client.ObjectKey{Namespace: d.Namespace, Name: hold.Name}, &dg)
	switch {
	case apierrors.IsNotFound(err):
		made, err := r.makeDigest(ctx, d)
		switch {
		case err == nil:
			dg = *made
		case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsForbidden(err) || apierrors.IsRequestEntityTooLargeError(err):
			// The API server will not take the digest (a quota, a
			// policy): the held deliveries are sent one by one.
			return r.leaveDigest(ctx, d, w, fmt.Sprintf("digest %s cannot be created (%v): sent on its own", hold.Name, err))
		default:
			return ctrl.Result{}, err
		}
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("reading digest %s: %w", hold.Name, err)
	}
	if !slices.Contains(dg.Spec.DigestOf, d.Name) {
		return r.leaveDigest(ctx, d, w, fmt.Sprintf("not listed in digest %s (made before this delivery reached it, or full): sent on its own", hold.Name))
	}
	s.DigestedBy = hold.Name
	res, err := w.finish(ctx, notifyv1.DeliverySucceeded, notifyv1.ReasonDigested, fmt.Sprintf("carried by digest %s", hold.Name))
	if err != nil {
		return res, err
	}
	// The other held deliveries the digest lists end too, now rather than
	// when each wakes: one reconcile settles the window. One that is
	// missed here (a conflict, a crash) settles itself the same way.
	for _, name := range dg.Spec.DigestOf {
		if name != d.Name {
			r.settleHeld(ctx, d.Namespace, name, hold.Name)
		}
	}
	return res, nil
}

// leaveDigest sends a held delivery on its own after all, with reason
// DigestMissed and a Warning Event that says why.
func (r *Reconciler) leaveDigest(ctx context.Context, d *notifyv1.ChannelDelivery, w *statusWrite, why string) (ctrl.Result, error) {
	s := &d.Status
	s.Phase = notifyv1.DeliveryPending
	s.Reason = notifyv1.ReasonDigestMissed
	s.Message = why
	if err := w.write(ctx); err != nil {
		return patch.RequeueOnConflict(err, "leaving a digest")
	}
	r.Recorder.Eventf(d, nil, "Warning", notifyv1.ReasonDigestMissed, "Digest", "%s", why)
	return ctrl.Result{Requeue: true}, nil
}

// digestContent renders a digest: Herald's default, or the template the
// digest names. A template that is missing or does not render falls back
// to the default, with a Warning Event on the held delivery that says why.
func (r *Reconciler) digestContent(ctx context.Context, d *notifyv1.ChannelDelivery, items []digest.Item) notifyv1.RenderedContent {
	title, message := digest.Content(items, d.Spec.Recipient.Timezone)
	def := notifyv1.RenderedContent{Type: notifyv1.TypeInformational, Category: "digest", Title: title, Message: message}
	name := d.Spec.Digest.Template
	if name == "" {
		return def
	}
	var t notifyv1.NotificationTemplate
	if err := r.Get(ctx, client.ObjectKey{Namespace: d.Namespace, Name: name}, &t); err != nil {
		r.Recorder.Eventf(d, nil, "Warning", notifyv1.ReasonTemplateNotFound, "Digest",
			"digest template %q cannot be read (%v): the digest uses Herald's default", name, err)
		return def
	}
	var cats []string
	for _, it := range items {
		if it.Category != "" && !slices.Contains(cats, it.Category) {
			cats = append(cats, it.Category)
		}
	}
	who := d.Spec.Recipient.DisplayName
	if who == "" {
		who = d.Spec.Recipient.Name
	}
	offered := map[string]string{"count": strconv.Itoa(len(items)), "items": message, "categories": strings.Join(cats, ", "), "recipient": who}
	params := map[string]string{}
	for _, p := range t.Spec.Params {
		if v, ok := offered[p.Name]; ok {
			params[p.Name] = v
		}
	}
	spec := &notifyv1.NotificationSpec{Type: notifyv1.TypeInformational, Category: "digest",
		TemplateRef: &notifyv1.TemplateReference{Name: name}, Params: params}
	c, err := render.Content(spec, &t.Spec)
	if err != nil {
		r.Recorder.Eventf(d, nil, "Warning", notifyv1.ReasonTemplateInvalid, "Digest",
			"digest template %q does not render (%v): the digest uses Herald's default", name, err)
		return def
	}
	c.Title, c.Message = notifyv1.FitText(c.Title, 256), notifyv1.FitText(c.Message, 16384)
	return notification.ContentFor(c, d.Spec.Channel)
}

// settleHeld ends the held delivery name as carried by digest, if it is
// still unfinished; any failure leaves it to settle itself.
func (r *Reconciler) settleHeld(ctx context.Context, namespace, name, digestName string) {
	var h notifyv1.ChannelDelivery
	if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &h); err != nil || h.Phase().Finished() ||
		h.Spec.Digest == nil || h.Spec.Digest.Name != digestName || h.DeletionTimestamp != nil {
		return
	}
	hw := r.newStatusWrite(&h)
	h.Status.DigestedBy = digestName
	_, _ = hw.finish(ctx, notifyv1.DeliverySucceeded, notifyv1.ReasonDigested, fmt.Sprintf("carried by digest %s", digestName))
}

// makeDigest creates the digest delivery of d's window, listing the held
// deliveries of that window, oldest first. It is owned by the Recipient:
// it outlives the Notifications it lists.
func (r *Reconciler) makeDigest(ctx context.Context, d *notifyv1.ChannelDelivery) (*notifyv1.ChannelDelivery, error) {
	hold := d.Spec.Digest
	var list notifyv1.ChannelDeliveryList
	if err := r.List(ctx, &list, client.InNamespace(d.Namespace), client.MatchingLabels{notifyv1.LabelDigest: notifyv1.LabelValue(hold.Name)}); err != nil {
		return nil, fmt.Errorf("listing the deliveries held for digest %s: %w", hold.Name, err)
	}
	held := make([]*notifyv1.ChannelDelivery, 0, len(list.Items))
	for i := range list.Items {
		h := &list.Items[i]
		if h.Spec.Digest != nil && h.Spec.Digest.Name == hold.Name && h.DeletionTimestamp == nil && h.Status.Reason != notifyv1.ReasonDigestMissed {
			held = append(held, h)
		}
	}
	if !slices.ContainsFunc(held, func(h *notifyv1.ChannelDelivery) bool { return h.Name == d.Name }) {
		held = append(held, d)
	}
	sort.Slice(held, func(i, j int) bool {
		if !held[i].CreationTimestamp.Equal(&held[j].CreationTimestamp) {
			return held[i].CreationTimestamp.Before(&held[j].CreationTimestamp)
		}
		return held[i].Name < held[j].Name
	})
	if len(held) > notifyv1.MaxDigestItems {
		held = held[:notifyv1.MaxDigestItems]
	}
	items := make([]digest.Item, 0, len(held))
	names := make([]string, 0, len(held))
	for _, h := range held {
		items = append(items, digest.Item{Title: h.Spec.Content.Title, Message: h.Spec.Content.Message,
			Category: h.Spec.Content.Category, Type: h.Spec.Content.Type, Time: h.CreationTimestamp.Time})
		names = append(names, h.Name)
	}
	content := r.digestContent(ctx, d, items)
	dg := &notifyv1.ChannelDelivery{
		ObjectMeta: metav1.ObjectMeta{
			Name:      hold.Name,
			Namespace: d.Namespace,
			Labels: map[string]string{
				notifyv1.LabelChannel:   string(d.Spec.Channel),
				notifyv1.LabelRecipient: d.Labels[notifyv1.LabelRecipient],
				notifyv1.LabelDigest:    notifyv1.LabelValue(hold.Name),
			},
		},
		Spec: notifyv1.ChannelDeliverySpec{
			Channel:   d.Spec.Channel,
			Recipient: d.Spec.Recipient,
			Provider:  d.Spec.Provider,
			Content:   content,
			Retry:     d.Spec.Retry,
			Timeout:   d.Spec.Timeout,
			DigestOf:  names,
		},
	}
	if key, ok := d.Labels[notifyv1.LabelShardKey]; ok {
		// Sent by the shard whose deliveries it carries (its name is
		// that shard's, see digest.DeliveryName).
		dg.Labels[notifyv1.LabelShardKey] = key
	}
	var rc notifyv1.Recipient
	if err := r.Get(ctx, client.ObjectKey{Namespace: d.Namespace, Name: d.Spec.Recipient.Name}, &rc); err == nil {
		_ = ctrl.SetControllerReference(&rc, dg, r.Scheme())
	}
	if err := r.Create(ctx, dg); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			r.Recorder.Eventf(d, nil, "Warning", notifyv1.ReasonDeliveryRejected, "Digest", "cannot create digest %s: %v", hold.Name, err)
			return nil, fmt.Errorf("creating digest %s: %w", hold.Name, err)
		}
		// Made a moment ago by another held delivery of the window.
		if err := r.Get(ctx, client.ObjectKeyFromObject(dg), dg); err != nil {
			return nil, fmt.Errorf("reading digest %s: %w", hold.Name, err)
		}
	}
	return dg, nil
}
