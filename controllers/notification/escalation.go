package notification

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/audience"
	"github.com/herald-dev/herald/internal/render"
)

// followUpRetry is how soon a step or reminder round that could not run
// (a template or the API server unavailable) is tried again.
const followUpRetry = 30 * time.Second

// followUp runs the escalation steps and reminder rounds that are due and
// returns when the next one is (zero: none left). Every step and round is
// recorded in status once it ran; its deliveries have deterministic names,
// so running it again after a crash before that record was written
// creates nothing twice, and a restarted controller runs every step that
// came due while it was away, in order, and none again.
func (r *Reconciler) followUp(ctx context.Context, n *notifyv1.Notification, acks *ackState, now time.Time) (time.Duration, error) {
	if len(n.Spec.Escalation) == 0 && n.Spec.Remind == nil {
		return 0, nil
	}
	if stop := r.followUpsStopped(n, now); stop != "" {
		return 0, nil
	}
	start := followUpStart(n)
	if start.IsZero() {
		return 0, nil
	}
	var next time.Time
	due := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}

	for k := stepsRun(n) + 1; k <= len(n.Spec.Escalation); k++ {
		at := start.Add(n.Spec.Escalation[k-1].After.Duration)
		if now.Before(at) {
			due(at)
			break
		}
		if err := r.runStep(ctx, n, acks, k, now); err != nil {
			r.Recorder.Eventf(n, nil, "Warning", notifyv1.ReasonEscalationFailed, "Escalate",
				"escalation step %d could not run, trying again in %s: %v", k, followUpRetry, err)
			return followUpRetry, nil
		}
	}

	if rp := n.Spec.Remind; rp != nil && rp.Every.Duration > 0 {
		last := min(rp.Max, notifyv1.MaxReminders)
		for j := int32(len(n.Status.Reminders)) + 1; j <= last; j++ {
			at := start.Add(time.Duration(j) * rp.Every.Duration)
			if now.Before(at) {
				due(at)
				break
			}
			if j < last && !now.Before(start.Add(time.Duration(j+1)*rp.Every.Duration)) {
				// The next round is due too: only the latest is sent.
				n.Status.Reminders = append(n.Status.Reminders, notifyv1.ReminderRun{Round: j, Time: metav1.NewTime(now), Overdue: true})
				continue
			}
			if err := r.remind(ctx, n, acks, j, now); err != nil {
				r.Recorder.Eventf(n, nil, "Warning", notifyv1.ReasonEscalationFailed, "Remind",
					"reminder %d could not be sent, trying again in %s: %v", j, followUpRetry, err)
				return followUpRetry, nil
			}
		}
	}
	if next.IsZero() {
		return 0, nil
	}
	if exp := n.Spec.ExpiresAt; exp != nil && !next.Before(exp.Time) {
		return 0, nil // nothing more runs before it expires
	}
	return max(next.Sub(now), time.Millisecond), nil
}

// followUpsStopped says why no escalation step or reminder runs any more,
// or "" while they still may.
func (r *Reconciler) followUpsStopped(n *notifyv1.Notification, now time.Time) string {
	switch {
	case n.Status.Cancel != nil:
		return "cancelled"
	case meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionAcknowledged):
		return "acknowledged"
	case meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionApproved),
		meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionRejected):
		return "decided"
	case n.Spec.ExpiresAt != nil && !now.Before(n.Spec.ExpiresAt.Time):
		return "expired"
	}
	return ""
}

// followUpStart is when the notification was sent: steps and reminders
// count from it. A deferred notification counts from deliverAfter.
func followUpStart(n *notifyv1.Notification) time.Time {
	if n.Status.DispatchTime == nil {
		return time.Time{}
	}
	start := n.Status.DispatchTime.Time
	if da := n.Spec.DeliverAfter; da != nil && da.After(start) {
		start = da.Time
	}
	return start
}

// stepsRun is how many escalation steps have run, as status records them.
func stepsRun(n *notifyv1.Notification) int {
	ran := 0
	for _, s := range n.Status.Escalation {
		ran = max(ran, int(s.Step))
	}
	return ran
}

// runStep creates the deliveries of escalation step k (1-based) and
// records it. Recipients who already acknowledged are left out.
func (r *Reconciler) runStep(ctx context.Context, n *notifyv1.Notification, acks *ackState, k int, now time.Time) error {
	step := n.Spec.Escalation[k-1]
	content, err := r.renderFor(ctx, n)
	if err != nil {
		return err
	}
	aud := n.Spec.Audience
	if step.Audience != nil {
		aud = *step.Audience
	}
	var all notifyv1.RecipientList
	if err := r.List(ctx, &all, client.InNamespace(n.Namespace)); err != nil {
		return fmt.Errorf("listing recipients: %w", err)
	}
	res, err := audience.Resolve(aud, all.Items)
	if err != nil {
		return fmt.Errorf("escalation step %d audience: %w", k, err)
	}
	kept := res.Recipients[:0]
	for _, rc := range res.Recipients {
		if _, ok := acks.acked[rc.Name]; !ok {
			kept = append(kept, rc)
		}
	}
	res.Recipients = kept

	planned := n.DeepCopy()
	if len(step.Channels) > 0 {
		planned.Spec.Channels = step.Channels
	}
	deliveries := r.plan(planned, content, res, now)
	tag := "escalation-" + strconv.Itoa(k)
	for _, d := range deliveries {
		d.Name = DeliveryName(n.Name+"/"+tag, d.Spec.Channel, d.Spec.Recipient.Name)
		d.Labels[notifyv1.LabelEscalationStep] = strconv.Itoa(k)
		// An escalation is urgent: never held for a digest.
		if d.Spec.Digest != nil {
			d.Spec.Digest = nil
			delete(d.Labels, notifyv1.LabelDigest)
		}
	}
	if err := r.createFollowUps(ctx, n, deliveries, now); err != nil {
		return err
	}
	n.Status.Escalation = append(n.Status.Escalation, notifyv1.EscalationStepRun{
		Step: int32(k), Time: metav1.NewTime(now), Deliveries: int32(len(deliveries)),
	})
	r.Recorder.Eventf(n, nil, "Normal", notifyv1.ReasonEscalated, "Escalate",
		"not acknowledged after %s: escalation step %d of %d sent %d deliveries on %s to %d recipients",
		step.After.Duration, k, len(n.Spec.Escalation), len(deliveries), joinChannels(planned.Spec.Channels), len(res.Recipients)+len(res.Unresolved))
	return nil
}

// remind sends reminder round j: for each recipient that has neither
// acknowledged nor (approvals) answered, a copy of each of its original
// deliveries on a channel other than in-app that was not skipped.
func (r *Reconciler) remind(ctx context.Context, n *notifyv1.Notification, acks *ackState, j int32, now time.Time) error {
	var list notifyv1.ChannelDeliveryList
	if err := r.List(ctx, &list, client.InNamespace(n.Namespace), client.MatchingFields{DeliveryIndex: n.Name}); err != nil {
		return fmt.Errorf("listing deliveries: %w", err)
	}
	tag := "reminder-" + strconv.Itoa(int(j))
	reminded := map[string]bool{}
	var deliveries []*notifyv1.ChannelDelivery
	for i := range list.Items {
		orig := &list.Items[i]
		if !metav1.IsControlledBy(orig, n) || orig.Spec.Channel == notifyv1.ChannelInApp || orig.Spec.Skip != nil ||
			orig.Labels[notifyv1.LabelEscalationStep] != "" || orig.Labels[notifyv1.LabelReminder] != "" ||
			acks.settled(n, orig.Spec.Recipient.Name) {
			continue
		}
		switch orig.Phase() {
		case notifyv1.DeliverySkipped, notifyv1.DeliveryCancelled:
			continue
		}
		d := &notifyv1.ChannelDelivery{
			ObjectMeta: metav1.ObjectMeta{
				Name:      DeliveryName(n.Name+"/"+tag, orig.Spec.Channel, orig.Spec.Recipient.Name),
				Namespace: n.Namespace,
				Labels:    map[string]string{notifyv1.LabelReminder: strconv.Itoa(int(j))},
			},
			Spec: *orig.Spec.DeepCopy(),
		}
		for _, l := range []string{notifyv1.LabelNotification, notifyv1.LabelChannel, notifyv1.LabelRecipient, notifyv1.LabelShardKey, notifyv1.LabelHeraldAlert} { // not LabelDigest
			if v, ok := orig.Labels[l]; ok {
				d.Labels[l] = v
			}
		}
		// A reminder is sent when due, never held for a digest.
		d.Spec.NotBefore, d.Spec.Digest = nil, nil
		d.Spec.Content.Title = reminderTitle(d.Spec.Content.Title, j, 256)
		if e := d.Spec.Content.Email; e != nil && e.Subject != "" {
			e.Subject = reminderTitle(e.Subject, j, 998)
		}
		_ = controllerutil.SetControllerReference(n, d, r.Scheme())
		deliveries = append(deliveries, d)
		reminded[orig.Spec.Recipient.Name] = true
	}
	if err := r.createFollowUps(ctx, n, deliveries, now); err != nil {
		return err
	}
	n.Status.Reminders = append(n.Status.Reminders, notifyv1.ReminderRun{Round: j, Time: metav1.NewTime(now), Recipients: int32(len(reminded))})
	if len(deliveries) > 0 {
		r.Recorder.Eventf(n, nil, "Normal", notifyv1.ReasonReminded, "Remind",
			"reminder %d of %d: %d deliveries to %d recipients who have not acknowledged", j, n.Spec.Remind.Max, len(deliveries), len(reminded))
	}
	return nil
}

func reminderTitle(title string, j int32, limit int) string {
	return notifyv1.FitText(fmt.Sprintf("Reminder %d: %s", j, title), limit)
}

// createFollowUps creates a step's or round's deliveries; one the API
// server refuses for good is reported with an Event and not retried.
func (r *Reconciler) createFollowUps(ctx context.Context, n *notifyv1.Notification, deliveries []*notifyv1.ChannelDelivery, now time.Time) error {
	existing, err := r.existingDeliveries(ctx, n)
	if err != nil {
		return err
	}
	out, err := r.createAll(ctx, n, deliveries, existing, now)
	if err != nil {
		return err
	}
	for i, rj := range out.rejected {
		if i == maxRejectedEvents {
			break
		}
		r.Recorder.Eventf(n, nil, "Warning", rj.Reason, "Escalate",
			"delivery to %q on %s not created: %s", rj.Recipient, rj.Channel, rj.Message)
	}
	if len(out.waiting) > 0 {
		return fmt.Errorf("%d delivery names are still held by an earlier Notification's deliveries", len(out.waiting))
	}
	return nil
}

// renderFor renders the notification's content again, for an escalation
// step's channels and recipients.
func (r *Reconciler) renderFor(ctx context.Context, n *notifyv1.Notification) (notifyv1.RenderedContent, error) {
	var tmpl *notifyv1.NotificationTemplateContent
	if ref := n.Spec.TemplateRef; ref != nil {
		var t notifyv1.NotificationTemplate
		if err := r.Get(ctx, client.ObjectKey{Namespace: n.Namespace, Name: ref.Name}, &t); err != nil {
			return notifyv1.RenderedContent{}, fmt.Errorf("reading NotificationTemplate %q: %w", ref.Name, err)
		}
		tmpl = &t.Spec
	}
	content, err := render.Content(&n.Spec, tmpl)
	if err != nil {
		return notifyv1.RenderedContent{}, fmt.Errorf("rendering: %w", err)
	}
	return content, nil
}

func joinChannels(chs []notifyv1.Channel) string {
	s := make([]string, len(chs))
	for i, c := range chs {
		s[i] = string(c)
	}
	return strings.Join(s, ", ")
}
