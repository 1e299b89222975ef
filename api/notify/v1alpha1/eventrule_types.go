package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LabelEventRule names the EventRule that created a Notification
// (shortened with a hash beyond 63 characters).
const LabelEventRule = "notify.herald.dev/eventrule"

// EventMatch selects core/v1 Events. Every part that is set must match.
type EventMatch struct {
	// types of Event: Normal and/or Warning.
	// +listType=set
	// +kubebuilder:validation:items:Enum=Normal;Warning
	// +optional
	Types []string `json:"types,omitempty"`
	// reasons, e.g. BackOff, Failed, OOMKilling.
	// +listType=set
	// +kubebuilder:validation:MaxItems=50
	// +optional
	Reasons []string `json:"reasons,omitempty"`
	// involvedKinds, e.g. Pod, Deployment.
	// +listType=set
	// +kubebuilder:validation:MaxItems=20
	// +optional
	InvolvedKinds []string `json:"involvedKinds,omitempty"`
	// selector matches labels of the involved object.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// MaxEventRuleNotificationsPerMinute is the most
// spec.maxNotificationsPerMinute admits; the controller's
// --eventrule-max-notifications-per-minute may lower it further.
const MaxEventRuleNotificationsPerMinute = 600

// DefaultEventRuleNotificationsPerMinute is a rule's budget when its spec
// sets none.
const DefaultEventRuleNotificationsPerMinute = 60

// EventGrouping says how a rule groups Events into Notifications.
// +kubebuilder:validation:XValidation:rule="duration(self.wait) < duration(self.interval)",message="grouping.wait must be shorter than grouping.interval"
type EventGrouping struct {
	// by are the keys Events are grouped on: reason, type, kind, name,
	// namespace, or label:<key> for a label of the involved object. No
	// keys put every matching Event in one group.
	// +listType=set
	// +kubebuilder:validation:MaxItems=5
	// +kubebuilder:validation:items:Pattern=`^(reason|type|kind|name|namespace|label:([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$`
	// +kubebuilder:validation:items:MaxLength=320
	// +optional
	By []string `json:"by,omitempty"`
	// wait is how long after a group's first Event in an interval its
	// Notification is made, collecting the Events that follow, e.g. "30s".
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(s|m|h))+$`
	// +kubebuilder:validation:Type=string
	// +optional
	Wait metav1.Duration `json:"wait,omitempty"`
	// interval is the length of the windows, aligned to the Unix epoch,
	// that Events are grouped in (at most 24h). Events of a group that
	// arrive after its Notification was made are folded into one more
	// Notification at the end of the window.
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(s|m|h))+$`
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('24h')",message="grouping.interval must be between 1s and 24h"
	// +optional
	Interval metav1.Duration `json:"interval,omitempty"`
}

// EventRuleSpec turns matching cluster Events into Notifications.
type EventRuleSpec struct {
	// match selects the Events in this namespace that trigger the rule.
	Match EventMatch `json:"match"`
	// throttle is the window during which repeats for the same involved
	// object and reason create no further Notification.
	// +kubebuilder:default="10m"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="throttle must not be negative"
	// +optional
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:Type=string
	Throttle metav1.Duration `json:"throttle,omitempty"`
	// grouping, when set, collects matching Events into groups (like
	// Alertmanager's group_by) and makes one Notification per group and
	// interval that carries their count and objects, instead of one per
	// involved object and reason; throttle then does not apply.
	// +optional
	Grouping *EventGrouping `json:"grouping,omitempty"`
	// maxNotificationsPerMinute is the rule's budget: the most
	// Notifications it makes in a minute, grouped ones included (a token
	// bucket that holds this many and refills at this rate). Matching
	// Events beyond it make no Notification (a grouped Notification waits
	// for the budget until an interval after its window ended); they are
	// counted in status.rateLimited and the RateLimited condition says so.
	// The controller's --eventrule-max-notifications-per-minute caps it,
	// and all rules of the namespace together get no more than its
	// --eventrule-namespace-max-notifications-per-minute.
	// +kubebuilder:default=60
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=600
	// +optional
	MaxNotificationsPerMinute int32 `json:"maxNotificationsPerMinute,omitempty"`
	// suspend stops the rule.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
	// notification is the template of each Notification. Its params may
	// use the event's fields: reason, message, type, kind, name,
	// namespace, count, lastTimestamp.
	Notification NotificationTemplateSpec `json:"notification"`
}

// EventRuleStatus is the observed state of an EventRule.
type EventRuleStatus struct {
	// +optional
	Matched int64 `json:"matched,omitempty"`
	// +optional
	Emitted int64 `json:"emitted,omitempty"`
	// +optional
	Throttled int64 `json:"throttled,omitempty"`
	// grouped counts Events folded into a grouped Notification.
	// +optional
	Grouped int64 `json:"grouped,omitempty"`
	// rateLimited counts matching Events that made no Notification
	// because the rule's budget (spec.maxNotificationsPerMinute, capped by
	// the controller) or the budget all rules of its namespace share was
	// spent.
	// +optional
	RateLimited int64 `json:"rateLimited,omitempty"`
	// +optional
	LastEmitTime *metav1.Time `json:"lastEmitTime,omitempty"`
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// EventRule turns Kubernetes Events into Notifications.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=evr,categories=herald
// +kubebuilder:printcolumn:name="Throttle",type=string,JSONPath=`.spec.throttle`
// +kubebuilder:printcolumn:name="Matched",type=integer,JSONPath=`.status.matched`
// +kubebuilder:printcolumn:name="Emitted",type=integer,JSONPath=`.status.emitted`
// +kubebuilder:printcolumn:name="Throttled",type=integer,JSONPath=`.status.throttled`
// +kubebuilder:printcolumn:name="RateLimited",type=integer,JSONPath=`.status.rateLimited`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type EventRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   EventRuleSpec   `json:"spec"`
	Status EventRuleStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// EventRuleList contains a list of EventRule.
type EventRuleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EventRule `json:"items"`
}

func init() {
	SchemeBuilder.Register(&EventRule{}, &EventRuleList{})
}
