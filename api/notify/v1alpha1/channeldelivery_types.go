package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels set on every ChannelDelivery, so that channel reconcilers watch
// only their channel and a notification's deliveries list cheaply.
const (
	LabelNotification = "notify.herald.dev/notification"
	LabelChannel      = "notify.herald.dev/channel"
	LabelRecipient    = "notify.herald.dev/recipient"
)

// RecipientSnapshot is a copy of the recipient taken at fan-out, so that a
// later change to the Recipient does not change a delivery in flight. It
// holds what the delivery's channel uses: name, username and display name
// always; email for email, phone for WhatsApp, and every address for
// webhooks.
type RecipientSnapshot struct {
	// name of the Recipient.
	Name string `json:"name"`
	// +optional
	Username string `json:"username,omitempty"`
	// +optional
	DisplayName string `json:"displayName,omitempty"`
	// +optional
	Email string `json:"email,omitempty"`
	// +optional
	Phone string `json:"phone,omitempty"`
	// +optional
	WebhookURL string `json:"webhookURL,omitempty"`
	// +optional
	Slack *SlackAddress `json:"slack,omitempty"`
	// teams holds the reference to the room's webhook URL, never the URL.
	// +optional
	Teams *TeamsAddress `json:"teams,omitempty"`
	// +optional
	Telegram *TelegramAddress `json:"telegram,omitempty"`
	// +optional
	Timezone string `json:"timezone,omitempty"`
}

// RenderedContent is the content of one delivery, rendered once at fan-out.
type RenderedContent struct {
	// +optional
	Type NotificationType `json:"type,omitempty"`
	// +optional
	Category string `json:"category,omitempty"`
	// +optional
	Title string `json:"title,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
	// +optional
	Actions []Action `json:"actions,omitempty"`
	// +optional
	Email *EmailContent `json:"email,omitempty"`
	// +optional
	WhatsApp *WhatsAppContent `json:"whatsapp,omitempty"`
	// +optional
	Slack *SlackContent `json:"slack,omitempty"`
	// +optional
	Teams *TeamsContent `json:"teams,omitempty"`
	// +optional
	Telegram *TelegramContent `json:"telegram,omitempty"`
	// webhookPayload replaces the default webhook JSON body.
	// +optional
	WebhookPayload string `json:"webhookPayload,omitempty"`
}

// ChannelDeliverySpec is one (notification, channel, recipient) unit of work.
// It is written by the Notification reconciler and never changes.
type ChannelDeliverySpec struct {
	// notification is the name of the owning Notification.
	Notification string            `json:"notification"`
	Channel      Channel           `json:"channel"`
	Recipient    RecipientSnapshot `json:"recipient"`
	// provider is the NotificationProvider named on the notification;
	// empty means the namespace's default for the channel.
	// +optional
	Provider string          `json:"provider,omitempty"`
	Content  RenderedContent `json:"content"`
	// retry is the resolved policy (defaults filled in at fan-out). In-app
	// deliveries have none: they are recorded, not sent.
	// +optional
	Retry *RetryPolicy `json:"retry,omitempty"`
	// timeout bounds one attempt.
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// notBefore holds the delivery until this time (deliverAfter, quiet
	// hours).
	// +optional
	NotBefore *metav1.Time `json:"notBefore,omitempty"`
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
	// skip, when set, records that fan-out decided against sending
	// (opt-out, no address, unknown recipient); the delivery ends Skipped
	// with this reason, visible to kubectl like any other outcome.
	// +optional
	Skip *SkipDecision `json:"skip,omitempty"`
	// digest, when set, holds the delivery for the recipient's digest: it
	// is not sent on its own but listed in the digest delivery named
	// here, sent at until.
	// +optional
	Digest *DigestHold `json:"digest,omitempty"`
	// deliveredOnCreate marks an in-app delivery that is delivered by being
	// created: it is due, its recipient has a user name, and it is neither
	// skipped nor held for a digest. No controller writes its outcome, so
	// its status.phase stays empty and reads as Succeeded (see Phase). One
	// status write less per in-app delivery is a quarter of what it costs
	// the control plane (docs/performance.md).
	// +optional
	DeliveredOnCreate bool `json:"deliveredOnCreate,omitempty"`
	// digestOf lists the held deliveries a digest delivery carries.
	// +kubebuilder:validation:MaxItems=500
	// +optional
	DigestOf []string `json:"digestOf,omitempty"`
}

// DigestHold says which digest a held delivery goes into.
type DigestHold struct {
	// name of the digest ChannelDelivery.
	Name string `json:"name"`
	// until is the end of the digest's window.
	Until metav1.Time `json:"until"`
	// template is the NotificationTemplate the digest is rendered from;
	// empty, Herald's default.
	// +optional
	Template string `json:"template,omitempty"`
}

// MaxDigestItems is how many held deliveries one digest carries; more are
// sent on their own.
const MaxDigestItems = 500

// LabelDigest is the label of held deliveries, naming (by LabelValue)
// their digest delivery, and of digest deliveries, naming themselves.
const LabelDigest = "notify.herald.dev/digest"

// Reasons of held and digest deliveries.
const (
	ReasonHeldForDigest = "HeldForDigest"
	ReasonDigested      = "Digested"
	// ReasonDigestMissed: a held delivery reached its digest too late to
	// be listed in it, and was sent on its own.
	ReasonDigestMissed = "DigestMissed"
)

// SkipDecision is why a delivery is not sent.
type SkipDecision struct {
	// reason is a CamelCase word, e.g. OptedOut, NoAddress.
	Reason string `json:"reason"`
	// +optional
	Message string `json:"message,omitempty"`
}

// DeliveryPhase is where a delivery is in its lifecycle.
// +kubebuilder:validation:Enum=Pending;Sending;Succeeded;Failed;Skipped;Expired;Cancelled
type DeliveryPhase string

const (
	DeliveryPending   DeliveryPhase = "Pending"
	DeliverySending   DeliveryPhase = "Sending"
	DeliverySucceeded DeliveryPhase = "Succeeded"
	DeliveryFailed    DeliveryPhase = "Failed"
	DeliverySkipped   DeliveryPhase = "Skipped"
	DeliveryExpired   DeliveryPhase = "Expired"
	DeliveryCancelled DeliveryPhase = "Cancelled"
)

// Finished reports whether the phase is terminal.
func (p DeliveryPhase) Finished() bool {
	switch p {
	case DeliverySucceeded, DeliveryFailed, DeliverySkipped, DeliveryExpired, DeliveryCancelled:
		return true
	}
	return false
}

// Phase is the delivery's phase: status.phase, or Succeeded for a
// delivery delivered on create, whose status never records one. Read a
// delivery's phase through it, never from status.phase alone.
func (d *ChannelDelivery) Phase() DeliveryPhase {
	if d.Status.Phase == "" && d.Spec.DeliveredOnCreate {
		return DeliverySucceeded
	}
	return d.Status.Phase
}

// FailureReason classifies why an attempt failed.
// +kubebuilder:validation:Enum=Transient;Permanent;RateLimited;Timeout;InvalidAddress;DestinationNotAllowed
type FailureReason string

const (
	ReasonTransient      FailureReason = "Transient"
	ReasonPermanent      FailureReason = "Permanent"
	ReasonRateLimited    FailureReason = "RateLimited"
	ReasonTimeout        FailureReason = "Timeout"
	ReasonInvalidAddress FailureReason = "InvalidAddress"
	// ReasonDestinationNotAllowed: the egress policy refused the address
	// the provider or the recipient points to (docs/security.md). It is
	// permanent, and it is also the Ready reason of a provider whose own
	// URL or host is refused.
	ReasonDestinationNotAllowed FailureReason = "DestinationNotAllowed"
)

// Attempt records one delivery attempt.
type Attempt struct {
	// number is the 1-based attempt number.
	Number    int32            `json:"number"`
	StartTime metav1.MicroTime `json:"startTime"`
	// duration of the attempt.
	// +optional
	Duration *metav1.Duration `json:"duration,omitempty"`
	// outcome: Succeeded, Failed or Abandoned (the controller stopped
	// during the attempt).
	Outcome string `json:"outcome"`
	// +optional
	Reason FailureReason `json:"reason,omitempty"`
	// +optional
	Error string `json:"error,omitempty"`
	// +optional
	Provider string `json:"provider,omitempty"`
}

// ReceiptState is what a provider's status callback said about a sent
// message, in the order messages move through them: sent, delivered, read.
// failed ends the message wherever it was.
// +kubebuilder:validation:Enum=sent;delivered;read;failed
type ReceiptState string

const (
	ReceiptSent      ReceiptState = "sent"
	ReceiptDelivered ReceiptState = "delivered"
	ReceiptRead      ReceiptState = "read"
	ReceiptFailed    ReceiptState = "failed"
)

// DeliveryReceipt is the latest state a provider reported for the message
// a delivery sent. It is written by `herald receiver` (field manager
// herald-receiver) and never moves backwards (docs/channels.md, "Delivery
// receipts").
type DeliveryReceipt struct {
	State ReceiptState `json:"state"`
	// time is when the provider says the state was reached, or when the
	// receiver got the callback if the provider gave no time (Twilio).
	Time metav1.Time `json:"time"`
	// code is the provider's error code of a failed message, e.g.
	// "meta 131047" or "twilio 63016".
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Code string `json:"code,omitempty"`
	// reason explains a failure, from Herald's own advice for the code.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Reason string `json:"reason,omitempty"`
}

// MaxAttemptHistory is how many attempts status.history keeps.
const MaxAttemptHistory = 10

// InboxResponse is a recipient's answer, given through the inbox.
type InboxResponse struct {
	Action string `json:"action"`
	// +optional
	Comment  string      `json:"comment,omitempty"`
	Username string      `json:"username,omitempty"`
	Time     metav1.Time `json:"time"`
}

// ChannelDeliveryStatus is the observed state of a ChannelDelivery.
type ChannelDeliveryStatus struct {
	// +optional
	Phase DeliveryPhase `json:"phase,omitempty"`
	// reason is a CamelCase word for why the delivery is in its phase,
	// e.g. OptedOut, InvalidPhone, AttemptsExhausted, ProviderNotReady.
	// +optional
	Reason string `json:"reason,omitempty"`
	// message explains reason to a person.
	// +optional
	Message string `json:"message,omitempty"`
	// attempts is the number of attempts started.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// attemptStartTime is when the current attempt started (phase Sending).
	// A Sending delivery older than its timeout was abandoned by a crash.
	// +optional
	AttemptStartTime *metav1.MicroTime `json:"attemptStartTime,omitempty"`
	// nextAttemptTime is when a Pending delivery will be tried again.
	// +optional
	NextAttemptTime *metav1.MicroTime `json:"nextAttemptTime,omitempty"`
	// +optional
	LastError string `json:"lastError,omitempty"`
	// +optional
	LastErrorReason FailureReason `json:"lastErrorReason,omitempty"`
	// provider is the NotificationProvider that delivered (or last tried).
	// +optional
	Provider string `json:"provider,omitempty"`
	// +optional
	ProviderMessageID string `json:"providerMessageID,omitempty"`
	// receipt is the latest state the provider reported for the message
	// providerMessageID names, from its status callbacks (WhatsApp
	// providers with receipts set). A failed receipt also turns the
	// delivery Failed.
	// +optional
	Receipt *DeliveryReceipt `json:"receipt,omitempty"`
	// history keeps the last attempts, oldest first.
	// +kubebuilder:validation:MaxItems=10
	// +optional
	History []Attempt `json:"history,omitempty"`
	// completionTime is when the delivery reached a terminal phase.
	// +optional
	CompletionTime *metav1.MicroTime `json:"completionTime,omitempty"`

	// attemptsBeforeRetry is the number of attempts made before the
	// delivery was last re-driven (AnnotationRetry on its Notification):
	// the retry policy counts only the attempts after it, while attempts
	// and history go on counting them all.
	// +optional
	AttemptsBeforeRetry int32 `json:"attemptsBeforeRetry,omitempty"`
	// expiresAt, when set, replaces spec.expiresAt: a re-driven delivery
	// that had expired gets a new deadline (docs/operations.md).
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// readTime is when the recipient read an in-app item.
	// +optional
	ReadTime *metav1.Time `json:"readTime,omitempty"`
	// archivedTime is when the recipient archived an in-app item.
	// +optional
	ArchivedTime *metav1.Time `json:"archivedTime,omitempty"`
	// seenTime is when the recipient first saw an in-app item in a list
	// (reading it also sees it).
	// +optional
	SeenTime *metav1.Time `json:"seenTime,omitempty"`
	// snoozedUntil hides an in-app item from its recipient's inbox until
	// this time.
	// +optional
	SnoozedUntil *metav1.Time `json:"snoozedUntil,omitempty"`
	// acknowledgedTime is when the recipient acknowledged an in-app
	// item. Unlike readTime it is final, and it stops the notification's
	// escalation and reminders.
	// +optional
	AcknowledgedTime *metav1.Time `json:"acknowledgedTime,omitempty"`
	// response is the recipient's answer to an approval.
	// +optional
	Response *InboxResponse `json:"response,omitempty"`
	// digestedBy is the digest delivery that carried this held delivery.
	// +optional
	DigestedBy string `json:"digestedBy,omitempty"`
}

// ChannelDelivery is one (notification, channel, recipient) unit of work.
// Herald creates them; people read them with kubectl get.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=cd;delivery,categories=herald
// +kubebuilder:printcolumn:name="Notification",type=string,JSONPath=`.spec.notification`
// +kubebuilder:printcolumn:name="Channel",type=string,JSONPath=`.spec.channel`
// +kubebuilder:printcolumn:name="Recipient",type=string,JSONPath=`.spec.recipient.name`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="On Create",type=boolean,JSONPath=`.spec.deliveredOnCreate`,description="Delivered by being created (in-app): no phase is written, it reads Succeeded"
// +kubebuilder:printcolumn:name="Attempts",type=integer,JSONPath=`.status.attempts`
// +kubebuilder:printcolumn:name="Next Attempt",type=date,JSONPath=`.status.nextAttemptTime`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.reason`,priority=1
// +kubebuilder:printcolumn:name="Receipt",type=string,JSONPath=`.status.receipt.state`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ChannelDelivery struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// The spec is immutable: the ValidatingAdmissionPolicy in
	// config/crd/policies refuses changes to it, but not on status writes.
	Spec   ChannelDeliverySpec   `json:"spec"`
	Status ChannelDeliveryStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ChannelDeliveryList contains a list of ChannelDelivery.
type ChannelDeliveryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ChannelDelivery `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ChannelDelivery{}, &ChannelDeliveryList{})
}
