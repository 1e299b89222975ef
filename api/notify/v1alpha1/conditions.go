package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types. Each kind's conditions have one writer, the controller
// of that kind; nothing else sets them.
const (
	// ConditionReady says a provider, template, schedule or rule can be
	// used.
	ConditionReady = "Ready"
	// ConditionDispatched is True once every ChannelDelivery of a
	// Notification exists.
	ConditionDispatched = "Dispatched"
	// ConditionDelivered is True when every delivery succeeded or was
	// skipped by preference, False with a reason once the notification
	// finished otherwise.
	ConditionDelivered = "Delivered"
	// ConditionApproved and ConditionRejected record an approval decision.
	ConditionApproved = "Approved"
	ConditionRejected = "Rejected"
	// ConditionRateLimited is True on an EventRule while its budget of
	// Notifications per minute holds matching Events back.
	ConditionRateLimited = "RateLimited"
	// ConditionAddressesValid says every address of a Recipient can be
	// used.
	ConditionAddressesValid = "AddressesValid"
)

// Reasons of conditions, of ChannelDelivery status.reason and of Events.
// They are CamelCase words that scripts may match on, so they are part of
// the API: change none of them.
const (
	// Shared.
	ReasonReady     = "Ready"
	ReasonValid     = "Valid"
	ReasonSuspended = "Suspended"
	ReasonExpired   = "Expired"
	// ReasonCreated is the Event for each Notification a schedule or an
	// event rule creates.
	ReasonCreated = "Created"
	// ReasonTemplateNotFound and ReasonTemplateInvalid say a Notification
	// or EventRule cannot render its NotificationTemplate; the template's
	// own Ready condition uses ReasonTemplateInvalid too.
	ReasonTemplateNotFound = "TemplateNotFound"
	ReasonTemplateInvalid  = "TemplateInvalid"

	// Notification.
	ReasonDispatched        = "Dispatched"
	ReasonInvalidAudience   = "InvalidAudience"
	ReasonNoRecipients      = "NoRecipients"
	ReasonInProgress        = "InProgress"
	ReasonAllDelivered      = "AllDelivered"
	ReasonSomeFailed        = "SomeFailed"
	ReasonAllFailed         = "AllFailed"
	ReasonUnknownRecipients = "UnknownRecipients"
	ReasonAwaitingResponse  = "AwaitingResponse"
	ReasonQuorumReached     = "QuorumReached"
	// ReasonDeliveryRejected says the API server refused to create a
	// delivery (invalid, too large, over quota): that delivery counts as
	// failed and the others proceed.
	ReasonDeliveryRejected = "DeliveryRejected"
	// ReasonDeliveryNameTaken says a delivery's name is held by an object
	// the Notification does not control: while a Notification of the same
	// name deleted a moment ago still has deliveries awaiting garbage
	// collection, Dispatched is False with this reason; past a bounded
	// wait, or for anything else, the delivery counts as failed.
	ReasonDeliveryNameTaken = "DeliveryNameTaken"

	// ChannelDelivery status.reason. A delivery that ends Skipped because
	// its address cannot be used has reason string(ReasonInvalidAddress).
	ReasonDelivered         = "Delivered"
	ReasonRetryScheduled    = "RetryScheduled"
	ReasonAttemptsExhausted = "AttemptsExhausted"
	ReasonPermanentFailure  = "PermanentFailure"
	ReasonAbandoned         = "AttemptAbandoned"
	// ReasonProviderNotReady is set on deliveries that found no usable
	// provider.
	ReasonProviderNotReady = "ProviderNotReady"
	// ReasonWaitingForProvider is the reason of a Pending delivery whose
	// providers are all suspended or have an open circuit: it waits,
	// using no attempt, until one can be used (or the delivery expires).
	ReasonWaitingForProvider = "WaitingForProvider"
	// ReasonRecipientRejected ends a delivery whose recipient's own
	// address or endpoint refused it (a 401/403 from the recipient's
	// webhookURL, an SMTP refusal at RCPT TO, a WhatsApp number that
	// cannot receive): the fault is this recipient's, the provider stays
	// usable for everyone else.
	ReasonRecipientRejected = "RecipientRejected"
	// ReasonReceiptFailed is the Event, on a ChannelDelivery and on its
	// Notification, when a provider's status callback reports that a
	// message it had accepted failed; the delivery then ends Failed with
	// the reason the send path gives the same provider code.
	ReasonReceiptFailed = "ReceiptFailed"
	// Skip reasons, decided when the delivery is planned.
	ReasonOptedOut         = "OptedOut"
	ReasonCategoryMuted    = "CategoryMuted"
	ReasonNoAddress        = "NoAddress"
	ReasonUnknownRecipient = "UnknownRecipient"
	ReasonQuietHours       = "QuietHours"

	// NotificationProvider Ready.
	ReasonSecretNotFound   = "SecretNotFound"
	ReasonSecretKeyMissing = "SecretKeyMissing"
	ReasonInvalidConfig    = "InvalidConfig"
	// ReasonSecretNotAllowed: a referenced Secret lacks the opt-in label
	// LabelProviderSecret, or is a service-account token.
	ReasonSecretNotAllowed = "SecretNotAllowed"
	// ReasonInsecureCredentials: the provider would send credentials (a
	// token, basic auth, an API key, SMTP AUTH, header values from a
	// Secret) without TLS to a host the egress allowlist does not name.
	ReasonInsecureCredentials = "InsecureCredentials"
	// ReasonInsecureSkipVerifyNotAllowed: an SMTP provider sets
	// insecureSkipVerify but the controller runs without
	// --allow-insecure-skip-verify.
	ReasonInsecureSkipVerifyNotAllowed = "InsecureSkipVerifyNotAllowed"
	// ReasonProviderRejected is the Ready reason while a provider's
	// circuit is open after it rejected a delivery for a provider reason.
	ReasonProviderRejected = "DeliveriesRejected"

	// NotificationSchedule.
	ReasonScheduled       = "Scheduled"
	ReasonInvalidSchedule = "InvalidSchedule"
	ReasonMissedSchedule  = "MissedSchedule"
	// ReasonFailedCreate is the Event for a run whose Notification the API
	// server rejected; the run counts as missed.
	ReasonFailedCreate = "FailedCreate"

	// EventRule.
	ReasonWatching       = "Watching"
	ReasonInvalidMatch   = "InvalidSelector"
	ReasonInvalidParams  = "InvalidParams"
	ReasonEmitted        = "Emitted"
	ReasonInvalidContent = "InvalidNotification"
	// ReasonBudgetExceeded is the RateLimited condition's reason (True),
	// and the Warning Event's, while the rule's budget holds Events back;
	// ReasonWithinBudget is the reason once a minute passed without.
	ReasonBudgetExceeded = "BudgetExceeded"
	ReasonWithinBudget   = "WithinBudget"
	// ReasonSelectorUnreadable is the Event for an involved object whose
	// labels Herald may not read.
	ReasonSelectorUnreadable = "SelectorUnreadable"
)

// ConditionSetter is every kind with status conditions.
// +kubebuilder:object:generate=false
type ConditionSetter interface {
	GetConditions() []metav1.Condition
	SetConditions([]metav1.Condition)
}

var (
	_ ConditionSetter = &Notification{}
	_ ConditionSetter = &NotificationProvider{}
	_ ConditionSetter = &NotificationTemplate{}
	_ ConditionSetter = &NotificationSchedule{}
	_ ConditionSetter = &EventRule{}
	_ ConditionSetter = &Recipient{}
)

func (o *Notification) GetConditions() []metav1.Condition          { return o.Status.Conditions }
func (o *Notification) SetConditions(c []metav1.Condition)         { o.Status.Conditions = c }
func (o *NotificationProvider) GetConditions() []metav1.Condition  { return o.Status.Conditions }
func (o *NotificationProvider) SetConditions(c []metav1.Condition) { o.Status.Conditions = c }
func (o *NotificationTemplate) GetConditions() []metav1.Condition  { return o.Status.Conditions }
func (o *NotificationTemplate) SetConditions(c []metav1.Condition) { o.Status.Conditions = c }
func (o *NotificationSchedule) GetConditions() []metav1.Condition  { return o.Status.Conditions }
func (o *NotificationSchedule) SetConditions(c []metav1.Condition) { o.Status.Conditions = c }
func (o *EventRule) GetConditions() []metav1.Condition             { return o.Status.Conditions }
func (o *EventRule) SetConditions(c []metav1.Condition)            { o.Status.Conditions = c }
func (o *Recipient) GetConditions() []metav1.Condition             { return o.Status.Conditions }
func (o *Recipient) SetConditions(c []metav1.Condition)            { o.Status.Conditions = c }

// SetCondition sets one condition on obj, stamped with obj's generation.
// The transition time changes only when the status does.
func SetCondition(obj interface {
	ConditionSetter
	GetGeneration() int64
}, typ string, status metav1.ConditionStatus, reason, message string) {
	conds := obj.GetConditions()
	meta.SetStatusCondition(&conds, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: message, ObservedGeneration: obj.GetGeneration(),
	})
	obj.SetConditions(conds)
}

// LabelProviderSecret is the label a Secret must carry, with value "true",
// for a NotificationProvider to use it. Without it a provider could send
// any Secret of its namespace (a service-account token, another
// application's credentials) to a host of its author's choosing.
// Service-account token Secrets are refused even with it.
const LabelProviderSecret = "notify.herald.dev/provider-secret"
