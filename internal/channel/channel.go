// Package channel defines what every delivery channel implements: a Sender
// that takes one rendered Message for one recipient and either delivers it or
// returns a classified *Error that tells the delivery reconciler whether to
// retry, wait, or give up.
//
// Channel packages (webhook, email, whatsapp) know nothing about Kubernetes
// objects: the delivery reconciler turns a ChannelDelivery into a Message,
// and package factory turns a NotificationProvider and its Secrets into a
// Sender. They share only the API's enums: a channel is a notifyv1.Channel
// and a failure reason a notifyv1.FailureReason, the values the CRDs accept.
package channel

import (
	"context"
	"errors"
	"fmt"
	"time"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel/egress"
)

// Recipient is the snapshot of a person taken when the delivery was created.
type Recipient struct {
	// Name is the Recipient object's name.
	Name        string
	Username    string
	DisplayName string
	Email       string
	// Phone is E.164, for example +4915112345678.
	Phone string
	// WebhookURL is the recipient's own endpoint, if any.
	WebhookURL string
	// SlackUserID or SlackChannelID is where Slack messages go.
	SlackUserID    string
	SlackChannelID string
	// TeamsWebhook names the Secret key holding the recipient's Teams
	// room webhook URL; the URL itself is read at send time.
	TeamsWebhook *SecretKey
	// TelegramChatID is a numeric chat ID or a channel's @username.
	TelegramChatID string
}

// SecretKey names one key of a Secret in the message's namespace.
type SecretKey struct {
	Name string
	Key  string
}

// SlackContent is the Slack-specific rendering: mrkdwn Text, Block Kit
// Blocks (a JSON array), or both.
type SlackContent struct {
	Text   string
	Blocks string
}

// TeamsContent is the Teams-specific rendering: an Adaptive Card as a JSON
// object.
type TeamsContent struct {
	Card string
}

// TelegramContent is the Telegram-specific rendering.
type TelegramContent struct {
	Text      string
	ParseMode string
}

// EmailContent is the email-specific rendering of a message.
type EmailContent struct {
	Subject string
	Text    string
	HTML    string
}

// WhatsAppContent is the WhatsApp-specific rendering. Either Text is set (a
// free-form session message) or TemplateName (an approved template message).
type WhatsAppContent struct {
	Text             string
	TemplateName     string
	TemplateLanguage string
	// TemplateParams are positional body parameters ({{1}}, {{2}}, ...).
	TemplateParams []string
	// ContentSID is Twilio's identifier of an approved content template.
	ContentSID string
}

// Action is an approval choice offered with a message.
type Action struct {
	ID    string
	Label string
}

// Message is one rendered notification for one recipient on one channel.
type Message struct {
	// ID is stable for the delivery across attempts and restarts (the
	// ChannelDelivery UID). Receivers de-duplicate repeated sends with it:
	// it becomes the email Message-ID and the webhook Idempotency-Key.
	ID string
	// Delivery and Notification name the Kubernetes objects, for receivers
	// that want to correlate.
	Namespace    string
	Delivery     string
	Notification string
	// Attempt is the 1-based attempt number.
	Attempt int

	Type     string
	Category string
	Title    string
	Body     string
	Actions  []Action

	Recipient Recipient
	Email     *EmailContent
	WhatsApp  *WhatsAppContent
	Slack     *SlackContent
	Teams     *TeamsContent
	Telegram  *TelegramContent
	// WebhookPayload, when set, is sent as the webhook body instead of the
	// default JSON document.
	WebhookPayload []byte
	// InboxItem is the name of the recipient's inbox item for this
	// notification, for chat messages that link to it (approvals are
	// answered in the inbox); empty when the recipient has no inbox (no
	// username, such as a room).
	InboxItem string

	CreatedAt time.Time
}

// Result describes a successful send.
type Result struct {
	// ProviderMessageID is the identifier the provider assigned, if any.
	ProviderMessageID string
}

// Sender delivers messages for one configured provider. Implementations must
// be safe for concurrent use and must honour ctx's deadline.
type Sender interface {
	Send(ctx context.Context, msg *Message) (Result, error)
}

// Error is a classified send failure. Its Reason is what
// ChannelDelivery.status.lastErrorReason records:
//
//   - Transient failures are retried according to the retry policy.
//   - Permanent failures end the delivery at once.
//   - RateLimited failures are retried after RetryAfter (or the policy's
//     delay when the provider gave none).
//   - Timeout means the attempt ran out of time; it is retried.
//   - DestinationNotAllowed means the egress policy refused the address
//     (permanent).
//   - InvalidAddress means the recipient's address cannot be used at all;
//     the delivery is skipped rather than failed.
type Error struct {
	Reason notifyv1.FailureReason
	// Code is the provider's own error code or status, for people reading
	// status (for example "smtp 550 5.1.1", "http 503", "meta 131047").
	Code string
	// RetryAfter is the provider's requested wait, zero when it gave none.
	RetryAfter time.Duration
	// Scope says whose fault the failure is, and so how far it reaches:
	// only ScopeProvider failures open the provider's circuit or move a
	// delivery on to a fallback provider.
	Scope Scope
	Err   error
}

// Scope is how far a failure reaches beyond the message that met it.
type Scope string

const (
	// ScopeMessage (the zero value) concerns this attempt or this message
	// only: a network failure, a timeout, a rejected content. Transient
	// failures without a known culprit have it too.
	ScopeMessage Scope = ""
	// ScopeRecipient is a refusal of this recipient's own address or
	// endpoint (an unknown mailbox, a number not on WhatsApp, a 401 from
	// the recipient's own webhookURL). It ends or skips this delivery and
	// touches nothing else: another provider, or another recipient, would
	// not be refused for it.
	ScopeRecipient Scope = "Recipient"
	// ScopeProvider is a refusal of the provider's own configuration:
	// its credentials, its sender address or number, its account, its
	// server certificate. Every message through the provider would meet
	// it, so it opens the provider's circuit and deliveries fall back.
	ScopeProvider Scope = "Provider"
)

// ProviderFault reports whether the failure is the provider's own (its
// credentials, sender or account), the only kind that opens a circuit.
func (e *Error) ProviderFault() bool { return e.Scope == ScopeProvider }

// RecipientFault reports whether the failure is this recipient's own
// address or endpoint refusing.
func (e *Error) RecipientFault() bool { return e.Scope == ScopeRecipient }

func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("%s (%s): %v", e.Reason, e.Code, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Reason, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether the delivery should be attempted again.
func (e *Error) Retryable() bool {
	switch e.Reason {
	case notifyv1.ReasonTransient, notifyv1.ReasonRateLimited, notifyv1.ReasonTimeout:
		return true
	}
	return false
}

// NewTransient, NewPermanent and friends build classified errors.
func NewTransient(code string, err error) *Error {
	return &Error{Reason: notifyv1.ReasonTransient, Code: code, Err: err}
}

func NewPermanent(code string, err error) *Error {
	return &Error{Reason: notifyv1.ReasonPermanent, Code: code, Err: err}
}

func NewRateLimited(code string, retryAfter time.Duration, err error) *Error {
	return &Error{Reason: notifyv1.ReasonRateLimited, Code: code, RetryAfter: retryAfter, Err: err}
}

// NewDestinationNotAllowed reports a destination the egress policy
// refuses. It is permanent: only a change of the address or of the
// controller's --egress-allow changes the verdict.
func NewDestinationNotAllowed(err error) *Error {
	return &Error{Reason: notifyv1.ReasonDestinationNotAllowed, Code: "egress", Err: err}
}

func NewInvalidAddress(err error) *Error {
	return &Error{Reason: notifyv1.ReasonInvalidAddress, Scope: ScopeRecipient, Err: err}
}

// Classify turns any error returned by a Sender into a *Error. Unclassified
// errors count as transient (the safe choice: a bounded number of retries),
// and a context deadline becomes Timeout.
func Classify(err error) *Error {
	if err == nil {
		return nil
	}
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	if errors.Is(err, egress.ErrNotAllowed) {
		return NewDestinationNotAllowed(err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Reason: notifyv1.ReasonTimeout, Err: err}
	}
	return &Error{Reason: notifyv1.ReasonTransient, Err: err}
}
