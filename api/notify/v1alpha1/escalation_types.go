package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AcknowledgePolicy says how many recipients must acknowledge a
// Notification before it counts as acknowledged.
// +kubebuilder:validation:Enum=Any;All
type AcknowledgePolicy string

const (
	// AcknowledgeAny: the first recipient's acknowledgement is enough.
	AcknowledgeAny AcknowledgePolicy = "Any"
	// AcknowledgeAll: every recipient with an in-app delivery must
	// acknowledge it.
	AcknowledgeAll AcknowledgePolicy = "All"
)

// MaxEscalationSteps bounds spec.escalation; MaxReminders bounds
// spec.remind.max.
const (
	MaxEscalationSteps = 5
	MaxReminders       = 10
)

// EscalationStep widens a Notification that nobody has acknowledged (or,
// for an approval, decided) after a while.
type EscalationStep struct {
	// after is how long after the notification was sent this step runs,
	// e.g. "10m". Steps run in order; each step's after must be later
	// than the previous one's.
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(s|m|h))+$`
	// +kubebuilder:validation:Type=string
	After metav1.Duration `json:"after"`

	// channels to deliver this step on; unset, the notification's own
	// channels.
	// +kubebuilder:validation:MaxItems=7
	// +listType=set
	// +optional
	Channels []Channel `json:"channels,omitempty"`

	// audience this step notifies; unset, the notification's own audience.
	// +optional
	Audience *Audience `json:"audience,omitempty"`
}

// ReminderPolicy sends a notification again to the recipients who have not
// acknowledged it (for an approval: not answered).
type ReminderPolicy struct {
	// every is the time between two reminders, at least 1m.
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(s|m|h))+$`
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m')",message="remind.every must be at least 1m"
	Every metav1.Duration `json:"every"`

	// max is how many reminders are sent at most (1 to 10).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	Max int32 `json:"max"`
}

// AcknowledgementStatus counts acknowledgements of a Notification.
type AcknowledgementStatus struct {
	// acknowledged is the number of recipients who acknowledged.
	Acknowledged int32 `json:"acknowledged"`
	// required is how many must acknowledge for the notification to
	// count as acknowledged: 1 under policy Any, every recipient with an
	// in-app delivery under All.
	Required int32 `json:"required"`
	// by is the first recipient who acknowledged, and time when.
	// +optional
	By string `json:"by,omitempty"`
	// +optional
	Time *metav1.Time `json:"time,omitempty"`
}

// EscalationStepRun records an escalation step that ran, so that a
// restarted controller neither runs it again nor skips it.
type EscalationStepRun struct {
	// step is the 1-based index into spec.escalation.
	Step int32 `json:"step"`
	// time is when the step ran.
	Time metav1.Time `json:"time"`
	// deliveries is the number of deliveries the step planned.
	Deliveries int32 `json:"deliveries"`
}

// ReminderRun records a round of reminders.
type ReminderRun struct {
	// round is the 1-based reminder number.
	Round int32 `json:"round"`
	// time is when the round ran.
	Time metav1.Time `json:"time"`
	// recipients is the number of recipients reminded.
	Recipients int32 `json:"recipients"`
	// overdue is true for a round that was not sent because a later
	// round was due too (the controller was not running): recipients get
	// one reminder, not a burst of them.
	// +optional
	Overdue bool `json:"overdue,omitempty"`
}

// Labels of the deliveries escalation steps and reminders create.
const (
	LabelEscalationStep = "notify.herald.dev/escalation-step"
	LabelReminder       = "notify.herald.dev/reminder"
)

// ConditionAcknowledged says whether enough recipients acknowledged a
// Notification (spec.acknowledge).
const ConditionAcknowledged = "Acknowledged"

// Reasons of the Acknowledged condition and of escalation Events.
const (
	ReasonAcknowledgedBy          = "AcknowledgedBy"
	ReasonAwaitingAcknowledgement = "AwaitingAcknowledgement"
	ReasonNothingToAcknowledge    = "NothingToAcknowledge"
	ReasonEscalated               = "Escalated"
	ReasonReminded                = "Reminded"
	ReasonEscalationFailed        = "EscalationFailed"
)
