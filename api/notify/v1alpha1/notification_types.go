package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NotificationSpec is one request to notify an audience.
// +kubebuilder:validation:XValidation:rule="has(self.templateRef) != (has(self.title) || has(self.message))",message="set either templateRef or title/message, not both and not neither"
// +kubebuilder:validation:XValidation:rule="has(self.templateRef) || has(self.message)",message="message is required when no templateRef is set"
// +kubebuilder:validation:XValidation:rule="self.type != 'approval' || size(self.actions) > 0",message="an approval notification needs at least one action"
// +kubebuilder:validation:XValidation:rule="self.type == 'approval' || size(self.actions) == 0",message="actions are only allowed on approval notifications"
// +kubebuilder:validation:XValidation:rule="!has(self.deliverAfter) || !has(self.expiresAt) || timestamp(self.deliverAfter) < timestamp(self.expiresAt)",message="expiresAt must be later than deliverAfter"
// +kubebuilder:validation:XValidation:rule="!has(self.quorum) || self.type == 'approval'",message="quorum is only allowed on approval notifications"
// +kubebuilder:validation:XValidation:rule="self.type != 'approval' || !self.channels.exists(c, c == 'slack' || c == 'teams') || self.channels.exists(c, c == 'inApp')",message="an approval sent to slack or teams also needs the inApp channel: it is answered in the inbox, which the chat message links to"
// +kubebuilder:validation:XValidation:rule="!has(self.escalation) || [1, 2, 3, 4].all(i, i >= size(self.escalation) || duration(self.escalation[i].after) > duration(self.escalation[i-1].after))",message="escalation steps must be in order: each step's after must be later than the previous step's"
// +kubebuilder:validation:XValidation:rule="(!has(self.escalation) && !has(self.remind)) || self.channels.exists(c, c == 'inApp') || self.type == 'approval'",message="escalation and remind stop when the notification is acknowledged, which happens in the inbox: add the inApp channel"
type NotificationSpec struct {
	// type is how important the notification is: informational, warning,
	// critical or approval. critical and approval override opt-outs.
	// +kubebuilder:default=informational
	// +optional
	Type NotificationType `json:"type,omitempty"`

	// category groups notifications for recipients' preferences, e.g.
	// "security" or "deployments".
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Category string `json:"category,omitempty"`

	// title is a short headline.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Title string `json:"title,omitempty"`

	// message is the body text.
	// +kubebuilder:validation:MaxLength=16384
	// +optional
	Message string `json:"message,omitempty"`

	// templateRef renders title, message and per-channel content from a
	// NotificationTemplate, with params.
	// +optional
	TemplateRef *TemplateReference `json:"templateRef,omitempty"`

	// params are the values given to the template.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Params map[string]string `json:"params,omitempty"`

	// audience is who receives the notification.
	Audience Audience `json:"audience"`

	// channels to deliver on.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=7
	// +listType=set
	Channels []Channel `json:"channels"`

	// providers names the NotificationProvider per channel; unset channels
	// use the namespace's default provider for that channel.
	// +optional
	Providers *ChannelProviders `json:"providers,omitempty"`

	// deliverAfter holds every delivery until this time.
	// +optional
	DeliverAfter *metav1.Time `json:"deliverAfter,omitempty"`

	// expiresAt gives up on deliveries not made by this time (phase
	// Expired). In-app items disappear from inboxes after it.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// retry overrides the controller's default retry policy.
	// +optional
	Retry *RetryPolicy `json:"retry,omitempty"`

	// timeout bounds one delivery attempt, e.g. "30s".
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s') && duration(self) <= duration('10m')",message="timeout must be between 0s (exclusive) and 10m"
	// +optional
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:Type=string
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// actions are the answers an approval notification offers.
	// +kubebuilder:validation:MaxItems=10
	// +listType=map
	// +listMapKey=id
	// +kubebuilder:default={}
	// +optional
	Actions []Action `json:"actions"`

	// quorum is how many distinct Kubernetes users giving the same outcome
	// decide an approval; a user answering through several Recipients
	// counts once, with their first answer. By default the first answer
	// decides.
	// +kubebuilder:validation:Minimum=1
	// +optional
	Quorum *int32 `json:"quorum,omitempty"`

	// acknowledge says whose acknowledgement makes the notification
	// acknowledged (condition Acknowledged): Any recipient's (the
	// default) or All recipients with an in-app delivery.
	// +kubebuilder:default=Any
	// +optional
	Acknowledge AcknowledgePolicy `json:"acknowledge,omitempty"`

	// escalation widens the notification, step by step, while it is not
	// acknowledged (approvals: not decided) and has not expired. Each
	// step's deliveries carry the label notify.herald.dev/escalation-step.
	// +kubebuilder:validation:MaxItems=5
	// +optional
	Escalation []EscalationStep `json:"escalation,omitempty"`

	// remind sends the notification again, on their channels other than
	// inApp, to the recipients who have not acknowledged it (approvals:
	// not answered), every remind.every, at most remind.max times.
	// +optional
	Remind *ReminderPolicy `json:"remind,omitempty"`

	// ttlSecondsAfterFinished deletes the notification (and its
	// deliveries) this long after it finished; 0 deletes it as soon as it
	// finishes. Unset, the controller's --default-ttl-after-finished (7
	// days by default) applies.
	// +kubebuilder:validation:Minimum=0
	// +optional
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
}

// NotificationPhase summarises a notification's progress.
// +kubebuilder:validation:Enum=Pending;Dispatching;Delivered;PartiallyDelivered;Failed;Expired;Cancelled
type NotificationPhase string

const (
	NotificationPending            NotificationPhase = "Pending"
	NotificationDispatching        NotificationPhase = "Dispatching"
	NotificationDelivered          NotificationPhase = "Delivered"
	NotificationPartiallyDelivered NotificationPhase = "PartiallyDelivered"
	NotificationFailed             NotificationPhase = "Failed"
	NotificationExpired            NotificationPhase = "Expired"
	// NotificationCancelled: an operator cancelled it (AnnotationCancel);
	// no delivery not yet sent was sent.
	NotificationCancelled NotificationPhase = "Cancelled"
)

// Finished reports whether the phase is terminal.
func (p NotificationPhase) Finished() bool {
	switch p {
	case NotificationDelivered, NotificationPartiallyDelivered, NotificationFailed, NotificationExpired, NotificationCancelled:
		return true
	}
	return false
}

// DeliveryCounts counts deliveries by phase. total, succeeded and failed
// are always written (kubectl's columns show them); the others only when
// they are not zero, as Deployment status does with its counters: zeros
// made a finished Notification's status write 7-11% slower and its object
// 7% larger (bench/statussize_test.go, docs/performance.md).
type DeliveryCounts struct {
	Total int32 `json:"total"`
	// +optional
	Pending int32 `json:"pending,omitempty"`
	// +optional
	Sending   int32 `json:"sending,omitempty"`
	Succeeded int32 `json:"succeeded"`
	Failed    int32 `json:"failed"`
	// +optional
	Skipped int32 `json:"skipped,omitempty"`
	// +optional
	Expired int32 `json:"expired,omitempty"`
	// +optional
	Cancelled int32 `json:"cancelled,omitempty"`
}

// ChannelStatus counts one channel's deliveries.
type ChannelStatus struct {
	Channel        Channel `json:"channel"`
	DeliveryCounts `json:",inline"`
}

// MaxResponses is how many answers status.responses keeps.
const MaxResponses = 100

// RejectedDelivery is a delivery of a Notification that was never created.
type RejectedDelivery struct {
	Channel Channel `json:"channel"`
	// recipient is the Recipient's name or the audience entry.
	// +kubebuilder:validation:MaxLength=253
	Recipient string `json:"recipient"`
	// reason is DeliveryRejected or DeliveryNameTaken.
	// +kubebuilder:validation:MaxLength=64
	Reason string `json:"reason"`
	// message is the API server's answer or what holds the name.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`
}

// ChannelCount is a number of deliveries on one channel.
type ChannelCount struct {
	Channel Channel `json:"channel"`
	Count   int32   `json:"count"`
}

// Response is one recipient's answer to an approval notification.
type Response struct {
	// recipient is the Recipient's name.
	Recipient string `json:"recipient"`
	// username is the Kubernetes user who answered.
	// +optional
	Username string `json:"username,omitempty"`
	// action is the chosen action id.
	Action string `json:"action"`
	// +optional
	Comment string      `json:"comment,omitempty"`
	Time    metav1.Time `json:"time"`
}

// NotificationStatus is the observed state of a Notification.
type NotificationStatus struct {
	// +optional
	Phase NotificationPhase `json:"phase,omitempty"`

	// recipients is the number of distinct recipients resolved.
	// +optional
	Recipients int32 `json:"recipients"`

	// unresolved lists audience users that name no Recipient.
	// +kubebuilder:validation:MaxItems=100
	// +optional
	Unresolved []string `json:"unresolved,omitempty"`

	// rejected lists deliveries that were never created: the API server
	// refused them (reason DeliveryRejected: an invalid object, a quota,
	// a size limit) or their name is held by an object this Notification
	// does not control (reason DeliveryNameTaken). Each counts as a failed
	// delivery. At most the first 100 are listed; rejectedCounts counts
	// them all.
	// +kubebuilder:validation:MaxItems=100
	// +optional
	Rejected []RejectedDelivery `json:"rejected,omitempty"`

	// rejectedCounts counts the rejected deliveries per channel.
	// +listType=map
	// +listMapKey=channel
	// +kubebuilder:validation:MaxItems=10
	// +optional
	RejectedCounts []ChannelCount `json:"rejectedCounts,omitempty"`

	// deliveries counts all deliveries by phase.
	// +optional
	Deliveries DeliveryCounts `json:"deliveries,omitempty"`

	// channels counts deliveries per channel.
	// +listType=map
	// +listMapKey=channel
	// +optional
	Channels []ChannelStatus `json:"channels,omitempty"`

	// responses are the answers to an approval notification, oldest first;
	// at most the first 100 are kept (the Approved and Rejected conditions
	// count every answer and say how many there were).
	// +kubebuilder:validation:MaxItems=100
	// +optional
	Responses []Response `json:"responses,omitempty"`

	// acknowledgement counts the recipients who acknowledged.
	// +optional
	Acknowledgement *AcknowledgementStatus `json:"acknowledgement,omitempty"`

	// escalation lists the escalation steps that ran, in order.
	// +kubebuilder:validation:MaxItems=5
	// +optional
	Escalation []EscalationStepRun `json:"escalation,omitempty"`

	// reminders lists the reminder rounds that ran, in order.
	// +kubebuilder:validation:MaxItems=10
	// +optional
	Reminders []ReminderRun `json:"reminders,omitempty"`

	// dispatchTime is when every delivery had been created.
	// +optional
	DispatchTime *metav1.Time `json:"dispatchTime,omitempty"`

	// completionTime is when the notification finished.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// retry records the last re-drive handled (AnnotationRetry).
	// +optional
	Retry *RetryRecord `json:"retry,omitempty"`

	// cancel records that the notification was cancelled (AnnotationCancel).
	// +optional
	Cancel *CancelRecord `json:"cancel,omitempty"`

	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}

// Notification is a request to notify an audience on one or more channels.
// Its spec cannot change once created: create a new Notification instead.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=notif,categories=herald
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Recipients",type=integer,JSONPath=`.status.recipients`
// +kubebuilder:printcolumn:name="Succeeded",type=integer,JSONPath=`.status.deliveries.succeeded`
// +kubebuilder:printcolumn:name="Failed",type=integer,JSONPath=`.status.deliveries.failed`
// +kubebuilder:printcolumn:name="Acknowledged",type=string,JSONPath=`.status.conditions[?(@.type=="Acknowledged")].status`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Notification struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// The spec is immutable: the ValidatingAdmissionPolicy in
	// config/crd/policies refuses changes to it, but not on status writes.
	Spec   NotificationSpec   `json:"spec"`
	Status NotificationStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// NotificationList contains a list of Notification.
type NotificationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Notification `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Notification{}, &NotificationList{})
}
