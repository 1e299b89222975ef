package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Field paths that list and watch accept as field selectors, besides
// metadata.name and metadata.namespace.
const (
	FieldCategory     = "spec.category"
	FieldType         = "spec.type"
	FieldNotification = "spec.notification"
	FieldRead         = "status.read"
	FieldArchived     = "status.archived"
	FieldSeen         = "status.seen"
)

// InboxAction is an answer an approval item offers.
type InboxAction struct {
	// id is what a response names in status.response.action, e.g. "approve".
	ID string `json:"id"`
	// label is what a person sees, e.g. "Approve".
	Label string `json:"label"`
	// outcome is what choosing the action means for the notification:
	// Approve, Reject or None.
	// +optional
	Outcome string `json:"outcome,omitempty"`
}

// InboxItemSpec is the content of an inbox item. It is read-only: it comes
// from the ChannelDelivery the item shows.
type InboxItemSpec struct {
	// notification is the name of the Notification the item belongs to.
	Notification string `json:"notification"`
	// type is informational, warning, critical or approval.
	// +optional
	Type string `json:"type,omitempty"`
	// category groups notifications, e.g. "security".
	// +optional
	Category string `json:"category,omitempty"`
	// title is a short headline.
	// +optional
	Title string `json:"title,omitempty"`
	// message is the body text.
	// +optional
	Message string `json:"message,omitempty"`
	// actions are the answers an approval item offers; status.response
	// names one of their ids.
	// +listType=atomic
	// +optional
	Actions []InboxAction `json:"actions,omitempty"`
	// createdTime is when the item arrived in the inbox (its delivery
	// succeeded). metadata.creationTimestamp is when the delivery was
	// created, which is earlier for deferred notifications.
	// +optional
	CreatedTime *metav1.Time `json:"createdTime,omitempty"`
	// expiresAt is when the item leaves the inbox.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
}

// InboxItemResponse is the recipient's answer to an approval item.
type InboxItemResponse struct {
	// action is the id of one of spec.actions.
	Action string `json:"action"`
	// comment is an optional note with the answer (at most 1024 characters).
	// +optional
	Comment string `json:"comment,omitempty"`
	// time is when the answer was given; the server sets it.
	// +optional
	Time *metav1.Time `json:"time,omitempty"`
}

// InboxItemStatus is what the recipient did with the item. Only seen, read,
// archived, snoozedUntil and response can be changed; the times are set by
// the server.
type InboxItemStatus struct {
	// seen is true once the item was shown to the recipient in a list;
	// reading an item also sees it.
	// +optional
	Seen bool `json:"seen"`
	// seenTime is when seen became true.
	// +optional
	SeenTime *metav1.Time `json:"seenTime,omitempty"`
	// read is true once the recipient has read (opened) the item.
	Read bool `json:"read"`
	// readTime is when read became true.
	// +optional
	ReadTime *metav1.Time `json:"readTime,omitempty"`
	// archived is true once the recipient has archived the item.
	Archived bool `json:"archived"`
	// archivedTime is when archived became true.
	// +optional
	ArchivedTime *metav1.Time `json:"archivedTime,omitempty"`
	// response is the answer to an approval item. It can be given once and
	// not changed afterwards.
	// +optional
	Response *InboxItemResponse `json:"response,omitempty"`
	// snoozedUntil, when set to a future time no later than
	// spec.expiresAt, hides the item from lists, watches, streams and
	// counts until then; it comes back as a new item when due.
	// +optional
	SnoozedUntil *metav1.Time `json:"snoozedUntil,omitempty"`
}

// InboxItem is one in-app notification in the caller's inbox: a view of an
// in-app ChannelDelivery addressed to the caller that has been delivered and
// has not expired. Its name and namespace are those of the delivery.
// +kubebuilder:object:root=true
type InboxItem struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec InboxItemSpec `json:"spec"`
	// +optional
	Status InboxItemStatus `json:"status,omitempty"`
}

// InboxItemList is a list of the caller's inbox items.
// +kubebuilder:object:root=true
type InboxItemList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []InboxItem `json:"items"`
}
