package notification

import (
	"context"
	"fmt"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/audience"
)

// aggregate counts the notification's deliveries into its status and
// derives phase, conditions and approval responses.
// It returns who has acknowledged and answered, which escalation and
// reminders act on.
func (r *Reconciler) aggregate(ctx context.Context, n *notifyv1.Notification, now time.Time) (*ackState, error) {
	var list notifyv1.ChannelDeliveryList
	if err := r.List(ctx, &list, client.InNamespace(n.Namespace), client.MatchingFields{DeliveryIndex: n.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing deliveries: %w", err)
	}
	acks := newAckState()
	var total notifyv1.DeliveryCounts
	perChannel := map[notifyv1.Channel]*notifyv1.DeliveryCounts{}
	for _, ch := range n.Spec.Channels {
		perChannel[ch] = &notifyv1.DeliveryCounts{}
	}
	memo := r.progress.memo(client.ObjectKeyFromObject(n), n.UID)
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
		acks.add(d)
		phase := d.Phase()
		if awaitingRedrive(memo, d) {
			// The cache has not caught up with the re-drive yet.
			phase = notifyv1.DeliveryPending
		}
		count(&total, phase)
		count(c, phase)
		switch phase {
		case notifyv1.DeliveryFailed, notifyv1.DeliveryExpired, notifyv1.DeliveryCancelled:
			problems++
		case notifyv1.DeliverySkipped:
			if !audience.IntendedSkip(d.Status.Reason) {
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
	// Deliveries the API server refused, or whose name something else
	// holds, were never created: each counts as failed.
	for _, rc := range n.Status.RejectedCounts {
		c := perChannel[rc.Channel]
		if c == nil {
			c = &notifyv1.DeliveryCounts{}
			perChannel[rc.Channel] = c
		}
		c.Total += rc.Count
		c.Failed += rc.Count
		total.Total += rc.Count
		total.Failed += rc.Count
		problems += rc.Count
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
	// status.responses keeps the oldest answers only; the decision counts all.
	n.Status.Responses = capResponses(responses)
	if n.Spec.Type == notifyv1.TypeApproval {
		r.decideApproval(n, responses)
	}
	acks.decide(n)

	if n.Status.Cancel != nil {
		return acks, finishCancelled(n, &total, unfinished, now)
	}
	// The cache may not show every delivery just created; the notification
	// is only finished when all that were planned are accounted for.
	expected := int32(len(n.Spec.Channels)) * (n.Status.Recipients + int32(len(n.Status.Unresolved)))
	if unfinished > 0 || total.Total < expected {
		n.Status.Phase = notifyv1.NotificationDispatching
		notifyv1.SetCondition(n, notifyv1.ConditionDelivered, metav1.ConditionUnknown, notifyv1.ReasonInProgress,
			fmt.Sprintf("%d of %d deliveries finished", total.Total-unfinished, max(expected, total.Total)))
		n.Status.CompletionTime = nil
		return acks, nil
	}
	switch {
	case total.Total == 0:
		n.Status.Phase = notifyv1.NotificationFailed
		notifyv1.SetCondition(n, notifyv1.ConditionDelivered, metav1.ConditionFalse, notifyv1.ReasonNoRecipients, "the audience matched no Recipient")
	case problems == 0:
		n.Status.Phase = notifyv1.NotificationDelivered
		notifyv1.SetCondition(n, notifyv1.ConditionDelivered, metav1.ConditionTrue, notifyv1.ReasonAllDelivered,
			fmt.Sprintf("%d delivered, %d skipped by preference", total.Succeeded, total.Skipped))
	case total.Succeeded > 0:
		n.Status.Phase = notifyv1.NotificationPartiallyDelivered
		notifyv1.SetCondition(n, notifyv1.ConditionDelivered, metav1.ConditionFalse, notifyv1.ReasonSomeFailed,
			fmt.Sprintf("%d delivered, %d not (failed %d, expired %d, skipped %d)", total.Succeeded, problems, total.Failed, total.Expired, total.Skipped))
	case total.Expired > 0 && total.Failed == 0:
		n.Status.Phase = notifyv1.NotificationExpired
		notifyv1.SetCondition(n, notifyv1.ConditionDelivered, metav1.ConditionFalse, notifyv1.ReasonExpired,
			fmt.Sprintf("%d deliveries expired before they could be made", total.Expired))
	default:
		n.Status.Phase = notifyv1.NotificationFailed
		notifyv1.SetCondition(n, notifyv1.ConditionDelivered, metav1.ConditionFalse, notifyv1.ReasonAllFailed,
			fmt.Sprintf("nothing delivered: failed %d, expired %d, skipped %d", total.Failed, total.Expired, total.Skipped))
	}
	if n.Status.CompletionTime == nil {
		n.Status.CompletionTime = &metav1.Time{Time: now}
	}
	return acks, nil
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

func capList(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// finishCancelled sets the phase of a cancelled notification: Cancelled
// once no delivery is in flight any more. Deliveries the fan-out never
// created count as cancelled.
func finishCancelled(n *notifyv1.Notification, total *notifyv1.DeliveryCounts, unfinished int32, now time.Time) error {
	notCreated := n.Status.Cancel.NotCreated
	total.Total += notCreated
	total.Cancelled += notCreated
	n.Status.Deliveries = *total
	if unfinished > 0 {
		n.Status.Phase = notifyv1.NotificationDispatching
		notifyv1.SetCondition(n, notifyv1.ConditionDelivered, metav1.ConditionUnknown, notifyv1.ReasonCancelled,
			fmt.Sprintf("cancelling: %d deliveries not finished yet (an attempt in flight finishes)", unfinished))
		n.Status.CompletionTime = nil
		return nil
	}
	n.Status.Phase = notifyv1.NotificationCancelled
	notifyv1.SetCondition(n, notifyv1.ConditionDelivered, metav1.ConditionFalse, notifyv1.ReasonCancelled,
		fmt.Sprintf("cancelled: %d delivered before the cancel, %d cancelled, %d failed, %d skipped, %d expired",
			total.Succeeded, total.Cancelled, total.Failed, total.Skipped, total.Expired))
	if n.Status.CompletionTime == nil {
		n.Status.CompletionTime = &metav1.Time{Time: now}
	}
	return nil
}
