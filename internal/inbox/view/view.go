// Package view renders the inbox's view of a ChannelDelivery: whose inbox
// shows it, whether it is visible now, and the InboxItem it shows as. The
// hub and the REST storage both see deliveries through it, so an item
// looks the same in a list, a watch, a stream and a write's answer.
package view

import (
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// Owner returns the Kubernetes user name whose inbox shows d, or "" when d
// belongs in nobody's inbox (another channel, no username).
func Owner(d *notifyv1.ChannelDelivery) string {
	if d.Spec.Channel != notifyv1.ChannelInApp {
		return ""
	}
	return d.Spec.Recipient.Username
}

// Visible reports whether d is an item of its owner's inbox at now: an
// in-app delivery that succeeded, is not being deleted, has not expired
// and is not snoozed.
func Visible(d *notifyv1.ChannelDelivery, now time.Time) bool {
	return Live(d, now) && !Snoozed(d, now)
}

// Live reports whether d is an item of its owner's inbox at now, snoozed or
// not: an in-app delivery that succeeded, is not being deleted and has not
// expired.
func Live(d *notifyv1.ChannelDelivery, now time.Time) bool {
	if Owner(d) == "" || d.Phase() != notifyv1.DeliverySucceeded || d.DeletionTimestamp != nil {
		return false
	}
	return !Expired(d.Spec.ExpiresAt, now)
}

// Snoozed reports whether d is snoozed at now: hidden until
// status.snoozedUntil.
func Snoozed(d *notifyv1.ChannelDelivery, now time.Time) bool {
	return d.Status.SnoozedUntil != nil && now.Before(d.Status.SnoozedUntil.Time)
}

// Expired reports whether an item that expires at at (nil: never) has
// expired at now.
func Expired(at *metav1.Time, now time.Time) bool {
	return at != nil && !now.Before(at.Time)
}

// Item renders the inbox view of d. The item carries the delivery's
// resourceVersion, so that optimistic concurrency on the item is that of
// the delivery, and its UID, which the generic patch handler requires.
func Item(d *notifyv1.ChannelDelivery) *inboxv1.InboxItem {
	it := &inboxv1.InboxItem{
		TypeMeta: metav1.TypeMeta{APIVersion: inboxv1.GroupVersion.String(), Kind: "InboxItem"},
		ObjectMeta: metav1.ObjectMeta{
			Name:              d.Name,
			Namespace:         d.Namespace,
			UID:               d.UID,
			ResourceVersion:   d.ResourceVersion,
			CreationTimestamp: d.CreationTimestamp,
		},
		Spec: inboxv1.InboxItemSpec{
			Notification: d.Spec.Notification,
			Type:         string(d.Spec.Content.Type),
			Category:     d.Spec.Content.Category,
			Title:        d.Spec.Content.Title,
			Message:      d.Spec.Content.Message,
			ExpiresAt:    d.Spec.ExpiresAt.DeepCopy(),
		},
		Status: inboxv1.InboxItemStatus{
			// Reading an item sees it.
			Seen:         d.Status.SeenTime != nil || d.Status.ReadTime != nil,
			SeenTime:     d.Status.SeenTime.DeepCopy(),
			SnoozedUntil: d.Status.SnoozedUntil.DeepCopy(),
			Read:         d.Status.ReadTime != nil,
			ReadTime:     d.Status.ReadTime.DeepCopy(),
			Archived:     d.Status.ArchivedTime != nil,
			ArchivedTime: d.Status.ArchivedTime.DeepCopy(),
			// Acknowledging is distinct from reading: an item can be
			// acknowledged from a list without being opened.
			Acknowledged:     d.Status.AcknowledgedTime != nil,
			AcknowledgedTime: d.Status.AcknowledgedTime.DeepCopy(),
		},
	}
	if len(d.Labels) > 0 {
		it.Labels = make(map[string]string, len(d.Labels))
		for k, v := range d.Labels {
			it.Labels[k] = v
		}
	}
	for _, a := range d.Spec.Content.Actions {
		it.Spec.Actions = append(it.Spec.Actions, inboxv1.InboxAction{ID: a.ID, Label: a.Label, Outcome: string(a.Outcome)})
	}
	if it.Status.SeenTime == nil {
		it.Status.SeenTime = d.Status.ReadTime.DeepCopy()
	}
	if ct := d.Status.CompletionTime; ct != nil {
		// Whole seconds, as metav1.Time serializes: a patched copy of the
		// item must compare equal to the item.
		t := metav1.NewTime(ct.Time).Rfc3339Copy()
		it.Spec.CreatedTime = &t
	} else {
		it.Spec.CreatedTime = d.CreationTimestamp.DeepCopy()
	}
	if r := d.Status.Response; r != nil {
		t := r.Time
		it.Status.Response = &inboxv1.InboxItemResponse{Action: r.Action, Comment: r.Comment, Time: &t}
	}
	return it
}

// Same reports whether two items show the same thing to their reader,
// ignoring the resourceVersion (a delivery can change in ways the inbox
// does not show).
func Same(a, b *inboxv1.InboxItem) bool {
	return equality.Semantic.DeepEqual(a.Spec, b.Spec) &&
		equality.Semantic.DeepEqual(a.Status, b.Status) &&
		equality.Semantic.DeepEqual(a.Labels, b.Labels)
}
