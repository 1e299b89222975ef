package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// InboxCountsAll is the name of the InboxCounts that covers every
// namespace of the caller; any other name is a namespace.
const InboxCountsAll = "all"

// InboxCountSummary counts some of the caller's items. Snoozed items are
// counted only in snoozed; archived items only in archived.
type InboxCountSummary struct {
	// total is the number of items that are neither archived nor snoozed.
	Total int32 `json:"total"`
	// unread is the number of those that are not read.
	Unread int32 `json:"unread"`
	// unseen is the number of those that were not seen.
	Unseen int32 `json:"unseen"`
	// archived is the number of archived items (not snoozed).
	Archived int32 `json:"archived"`
	// snoozed is the number of items snoozed until later.
	Snoozed int32 `json:"snoozed"`
}

// InboxCounts is the caller's inbox in numbers, for a badge: read-only,
// computed per request from the server's cache. Its name is "all" (every
// namespace) or a namespace.
// +kubebuilder:object:root=true
type InboxCounts struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// counts of every item in scope.
	Counts InboxCountSummary `json:"counts"`
	// byCategory counts the items of each spec.category ("" for none).
	// +optional
	ByCategory map[string]InboxCountSummary `json:"byCategory,omitempty"`
	// byType counts the items of each spec.type.
	// +optional
	ByType map[string]InboxCountSummary `json:"byType,omitempty"`
	// byNamespace counts the items of each namespace.
	// +optional
	ByNamespace map[string]InboxCountSummary `json:"byNamespace,omitempty"`
}

// BulkOperation is what a BulkAction does to each item it selects.
type BulkOperation string

// Bulk operations.
const (
	// BulkMarkRead marks the selected items read (and seen).
	BulkMarkRead BulkOperation = "MarkRead"
	// BulkMarkSeen marks the selected items seen.
	BulkMarkSeen BulkOperation = "MarkSeen"
	// BulkArchiveRead archives the selected items that are read.
	BulkArchiveRead BulkOperation = "ArchiveRead"
	// BulkSnooze snoozes the selected items until spec.snooze.
	BulkSnooze BulkOperation = "Snooze"
)

// SnoozeUntil says until when to snooze: a time, or a preset.
type SnoozeUntil struct {
	// until is the time the items come back.
	// +optional
	Until *metav1.Time `json:"until,omitempty"`
	// preset is a duration such as "1h" or "30m" (at least a minute, at
	// most 90 days), or "tomorrow": 09:00 on the next day in the
	// recipient's timezone.
	// +optional
	Preset string `json:"preset,omitempty"`
}

// BulkActionSpec selects the caller's items and says what to do to them.
type BulkActionSpec struct {
	// operation is MarkRead, MarkSeen, ArchiveRead or Snooze.
	Operation BulkOperation `json:"operation"`
	// namespace limits the action to one namespace; empty: every
	// namespace of the caller.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// labelSelector selects items by label, as in a list.
	// +optional
	LabelSelector string `json:"labelSelector,omitempty"`
	// fieldSelector selects items by the fields a list accepts.
	// +optional
	FieldSelector string `json:"fieldSelector,omitempty"`
	// snooze is required by the Snooze operation.
	// +optional
	Snooze *SnoozeUntil `json:"snooze,omitempty"`
}

// BulkFailure is one item the action could not change.
type BulkFailure struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// message says why.
	Message string `json:"message"`
}

// BulkActionStatus is the outcome, filled in by the server.
type BulkActionStatus struct {
	// matched is how many of the caller's items the selector matched.
	Matched int32 `json:"matched"`
	// changed is how many items the action changed.
	Changed int32 `json:"changed"`
	// unchanged is how many needed no change (already read, ...).
	Unchanged int32 `json:"unchanged"`
	// remaining is how many matching items were left for a next request,
	// because one request changes at most 100 items.
	Remaining int32 `json:"remaining"`
	// failed lists the items whose write failed after its retries.
	// +listType=atomic
	// +optional
	Failed []BulkFailure `json:"failed,omitempty"`
}

// BulkAction is a request, not a stored object (like a TokenReview): a
// create applies spec.operation to the caller's items that match the
// selectors, and answers with status. Nothing is kept.
// +kubebuilder:object:root=true
type BulkAction struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec BulkActionSpec `json:"spec"`
	// +optional
	Status BulkActionStatus `json:"status,omitempty"`
}
