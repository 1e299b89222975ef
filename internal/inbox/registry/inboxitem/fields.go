package inboxitem

import (
	"fmt"
	"strconv"

	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
)

// matcher returns the label and field selector of opts as one predicate.
func matcher(opts *metainternalversion.ListOptions) func(*inboxv1.InboxItem) bool {
	ls, fs := labels.Everything(), fields.Everything()
	if opts != nil && opts.LabelSelector != nil {
		ls = opts.LabelSelector
	}
	if opts != nil && opts.FieldSelector != nil {
		fs = opts.FieldSelector
	}
	return func(it *inboxv1.InboxItem) bool {
		return ls.Matches(labels.Set(it.Labels)) && fs.Matches(fieldSet(it))
	}
}

// fieldSet is what field selectors match an item against.
func fieldSet(it *inboxv1.InboxItem) fields.Set {
	return fields.Set{
		"metadata.name":           it.Name,
		"metadata.namespace":      it.Namespace,
		inboxv1.FieldCategory:     it.Spec.Category,
		inboxv1.FieldType:         it.Spec.Type,
		inboxv1.FieldNotification: it.Spec.Notification,
		inboxv1.FieldRead:         strconv.FormatBool(it.Status.Read),
		inboxv1.FieldArchived:     strconv.FormatBool(it.Status.Archived),
		inboxv1.FieldSeen:         strconv.FormatBool(it.Status.Seen),
	}
}

// FieldLabelConversion accepts the field selectors InboxItems support; the generic
// server rejects any other with 400 Bad Request.
func FieldLabelConversion(label, value string) (string, string, error) {
	switch label {
	case "metadata.name", "metadata.namespace",
		inboxv1.FieldCategory, inboxv1.FieldType, inboxv1.FieldNotification,
		inboxv1.FieldRead, inboxv1.FieldArchived, inboxv1.FieldSeen:
		return label, value, nil
	}
	return "", "", fmt.Errorf("field label not supported for inboxitems: %s (supported: metadata.name, metadata.namespace, %s, %s, %s, %s, %s, %s)",
		label, inboxv1.FieldCategory, inboxv1.FieldType, inboxv1.FieldNotification, inboxv1.FieldSeen, inboxv1.FieldRead, inboxv1.FieldArchived)
}
