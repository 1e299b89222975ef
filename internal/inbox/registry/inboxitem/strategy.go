package inboxitem

import (
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// What a recipient may change of an item, and how it lands on the
// delivery: status.seen, status.read, status.archived, status.snoozedUntil,
// status.acknowledged and one answer; nothing else.

// maxCommentLength bounds a response's comment.
const maxCommentLength = 1024

// applyStatus validates the caller's new item against the old one and
// returns the delivery with the resulting status, or nil when nothing
// changes. Times are the server's: a client's readTime or response time is
// ignored.
func applyStatus(d *notifyv1.ChannelDelivery, old, upd *inboxv1.InboxItem, user string, now time.Time) (*notifyv1.ChannelDelivery, error) {
	var errs field.ErrorList
	if upd.Name != old.Name {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), upd.Name, "does not match the item"))
	}
	if upd.Namespace != "" && upd.Namespace != old.Namespace {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "namespace"), upd.Namespace, "does not match the item"))
	}
	if !equality.Semantic.DeepEqual(upd.Spec, old.Spec) {
		errs = append(errs, field.Forbidden(field.NewPath("spec"), "inbox items are read-only except status.seen, status.read, status.archived, status.snoozedUntil, status.acknowledged and status.response"))
	}
	if !equality.Semantic.DeepEqual(upd.Labels, old.Labels) || len(upd.Annotations) > 0 {
		errs = append(errs, field.Forbidden(field.NewPath("metadata"), "labels and annotations of inbox items are read-only"))
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(inboxv1.GroupVersion.WithKind("InboxItem").GroupKind(), old.Name, errs)
	}

	next := d.DeepCopy()
	t := metav1.NewTime(now.Truncate(time.Second))
	switch {
	case upd.Status.Read && next.Status.ReadTime == nil:
		next.Status.ReadTime = &t
	case !upd.Status.Read:
		next.Status.ReadTime = nil
	}
	// A read item shows as seen without a seenTime of its own (see
	// view.Item), so marking read writes only readTime; marking it unread
	// keeps it seen, since when it was read.
	switch {
	case upd.Status.Seen && next.Status.SeenTime == nil && next.Status.ReadTime == nil:
		next.Status.SeenTime = &t
		if old.Status.SeenTime != nil {
			next.Status.SeenTime = old.Status.SeenTime.DeepCopy()
		}
	case !upd.Status.Seen:
		next.Status.SeenTime = nil
	}
	switch {
	case upd.Status.Archived && next.Status.ArchivedTime == nil:
		next.Status.ArchivedTime = &t
	case !upd.Status.Archived:
		next.Status.ArchivedTime = nil
	}
	if !upd.Status.SnoozedUntil.Equal(old.Status.SnoozedUntil) {
		if err := checkSnooze(old, upd.Status.SnoozedUntil, now); err != nil {
			return nil, err
		}
		next.Status.SnoozedUntil = nil
		if u := upd.Status.SnoozedUntil; u != nil {
			until := metav1.NewTime(u.Time.Truncate(time.Second))
			next.Status.SnoozedUntil = &until
		}
	}
	if err := applyAcknowledged(next, old, upd.Status.Acknowledged, t); err != nil {
		return nil, err
	}
	if err := applyResponse(next, old, upd.Status.Response, user, t); err != nil {
		return nil, err
	}
	if equality.Semantic.DeepEqual(next.Status, d.Status) {
		return nil, nil
	}
	return next, nil
}

// applyAcknowledged records an acknowledgement. It is final, like an
// answer: an escalation it stopped cannot be resumed by taking it back, so
// acknowledged: false on an acknowledged item is refused.
func applyAcknowledged(next *notifyv1.ChannelDelivery, old *inboxv1.InboxItem, ack bool, t metav1.Time) error {
	switch {
	case ack && next.Status.AcknowledgedTime == nil:
		next.Status.AcknowledgedTime = &t
	case !ack && next.Status.AcknowledgedTime != nil:
		return finalConflict(old.Name, "status.acknowledged", "already acknowledged",
			fmt.Sprintf("inboxitems.%s %q was acknowledged at %s; an acknowledgement is final, so acknowledged: false is refused",
				itemsResource.Group, old.Name, next.Status.AcknowledgedTime.UTC().Format(time.RFC3339)))
	}
	return nil
}

// finalConflict is the 409 Conflict for a change to a field the caller set
// once and for good (an acknowledgement, an answer): the cause names the
// field, the message says what was recorded and why the change is refused.
func finalConflict(name, fieldPath, cause, message string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure,
		Code:   409,
		Reason: metav1.StatusReasonConflict,
		Details: &metav1.StatusDetails{
			Group: itemsResource.Group, Kind: itemsResource.Resource, Name: name,
			Causes: []metav1.StatusCause{{Type: metav1.CauseTypeFieldValueNotSupported, Field: fieldPath, Message: cause}},
		},
		Message: message,
	}}
}

// applyResponse records an answer to an approval item. An answer is final:
// the same answer again changes nothing (a merge patch of other fields
// carries it over), a different one or its removal is refused.
func applyResponse(next *notifyv1.ChannelDelivery, old *inboxv1.InboxItem, resp *inboxv1.InboxItemResponse, user string, t metav1.Time) error {
	path := field.NewPath("status", "response")
	given := next.Status.Response
	if given != nil {
		if resp != nil && resp.Action == given.Action && resp.Comment == given.Comment {
			return nil
		}
		what := "a different answer"
		if resp == nil {
			what = "removing it"
		}
		return finalConflict(old.Name, path.String(), "already answered",
			fmt.Sprintf("inboxitems.%s %q was already answered %q by %s at %s; an answer is final, so %s is refused",
				itemsResource.Group, old.Name, given.Action, given.Username, given.Time.UTC().Format(time.RFC3339), what))
	}
	if resp == nil {
		return nil
	}
	var ids []string
	for _, a := range old.Spec.Actions {
		ids = append(ids, a.ID)
	}
	switch {
	case len(ids) == 0:
		return apierrors.NewInvalid(inboxv1.GroupVersion.WithKind("InboxItem").GroupKind(), old.Name, field.ErrorList{
			field.Forbidden(path, "this item offers no actions to answer")})
	case !slices.Contains(ids, resp.Action):
		return apierrors.NewInvalid(inboxv1.GroupVersion.WithKind("InboxItem").GroupKind(), old.Name, field.ErrorList{
			field.NotSupported(path.Child("action"), resp.Action, ids)})
	case len(resp.Comment) > maxCommentLength:
		return apierrors.NewInvalid(inboxv1.GroupVersion.WithKind("InboxItem").GroupKind(), old.Name, field.ErrorList{
			field.TooLong(path.Child("comment"), "", maxCommentLength)})
	}
	next.Status.Response = &notifyv1.InboxResponse{Action: resp.Action, Comment: resp.Comment, Username: user, Time: t}
	return nil
}
