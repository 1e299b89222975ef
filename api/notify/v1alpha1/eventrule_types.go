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
