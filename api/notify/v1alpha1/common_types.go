package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Channel is a delivery channel.
// +kubebuilder:validation:Enum=inApp;email;whatsapp;webhook;slack;teams;telegram
type Channel string

const (
	ChannelInApp    Channel = "inApp"
	ChannelEmail    Channel = "email"
	ChannelWhatsApp Channel = "whatsapp"
	ChannelWebhook  Channel = "webhook"
	ChannelSlack    Channel = "slack"
	ChannelTeams    Channel = "teams"
	ChannelTelegram Channel = "telegram"
)

// Channels lists every Channel value, in the order they are fanned out.
var Channels = []Channel{ChannelInApp, ChannelEmail, ChannelWhatsApp, ChannelWebhook, ChannelSlack, ChannelTeams, ChannelTelegram}

// NotificationType says how important a notification is and how it behaves.
// critical and approval notifications override recipients' opt-outs.
// +kubebuilder:validation:Enum=informational;warning;critical;approval
type NotificationType string

const (
	TypeInformational NotificationType = "informational"
	TypeWarning       NotificationType = "warning"
	TypeCritical      NotificationType = "critical"
	TypeApproval      NotificationType = "approval"
)

// OverridesOptOut reports whether recipients' channel and category opt-outs
// are ignored for this type.
func (t NotificationType) OverridesOptOut() bool {
	return t == TypeCritical || t == TypeApproval
}

// BackoffStrategy is how the delay between attempts grows.
// +kubebuilder:validation:Enum=Exponential;Linear;Fixed
type BackoffStrategy string

const (
	BackoffExponential BackoffStrategy = "Exponential"
	BackoffLinear      BackoffStrategy = "Linear"
	BackoffFixed       BackoffStrategy = "Fixed"
)

// RetryPolicy says how often and how patiently a delivery is attempted.
// Unset fields take the controller's defaults (flags), which by default give
// 4 attempts 1s, 2s and 4s apart.
// +kubebuilder:validation:XValidation:rule="!has(self.initialDelay) || !has(self.maxDelay) || duration(self.initialDelay) <= duration(self.maxDelay)",message="initialDelay must not be longer than maxDelay"
type RetryPolicy struct {
	// strategy is how the delay grows: Exponential (initialDelay * 2^(n-1)),
	// Linear (initialDelay * n) or Fixed (initialDelay).
	// +optional
	Strategy BackoffStrategy `json:"strategy,omitempty"`

	// maxAttempts is the number of attempts, the first included (1 to 50).
	// Waiting for a provider's rate limit does not use an attempt.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=50
	// +optional
	MaxAttempts *int32 `json:"maxAttempts,omitempty"`

	// initialDelay is the delay after the first failed attempt, e.g. "1s".
	// +optional
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:Type=string
	InitialDelay *metav1.Duration `json:"initialDelay,omitempty"`

	// maxDelay caps the delay between attempts, e.g. "5m". A provider's
	// Retry-After replaces the computed delay but is capped at maxDelay too,
	// and no attempt is scheduled after expiresAt.
	// +optional
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:Type=string
	MaxDelay *metav1.Duration `json:"maxDelay,omitempty"`
}

// Audience says who receives a notification. All three parts are resolved
// against Recipients in the notification's namespace and merged without
// duplicates.
// +kubebuilder:validation:XValidation:rule="size(self.users) > 0 || size(self.roles) > 0 || has(self.selector)",message="audience needs at least one of users, roles or selector"
type Audience struct {
	// users are Recipient names.
	// +listType=set
	// +kubebuilder:validation:MaxItems=1000
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:default={}
	// +optional
	Users []string `json:"users"`

	// roles select every Recipient that has any of these roles.
	// +listType=set
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:default={}
	// +optional
	Roles []string `json:"roles"`

	// selector selects Recipients by label.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// Action is a choice offered with an approval notification.
type Action struct {
	// id is what a response records, e.g. "approve".
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	ID string `json:"id"`

	// label is what a person sees, e.g. "Approve".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=100
	Label string `json:"label"`

	// outcome is what choosing this action means for the notification:
	// Approve, Reject, or None for an informational answer.
	// +kubebuilder:validation:Enum=Approve;Reject;None
	// +kubebuilder:default=None
	// +optional
	Outcome ActionOutcome `json:"outcome,omitempty"`
}

// ActionOutcome is what an approval answer means.
type ActionOutcome string

const (
	OutcomeApprove ActionOutcome = "Approve"
	OutcomeReject  ActionOutcome = "Reject"
	OutcomeNone    ActionOutcome = "None"
)

// TemplateReference names a NotificationTemplate in the same namespace.
type TemplateReference struct {
	// name of the NotificationTemplate.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// ChannelProviders names the NotificationProvider to use per channel. Unset
// channels use the namespace's default provider for that channel.
type ChannelProviders struct {
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Email string `json:"email,omitempty"`
	// +kubebuilder:validation:MaxLength=253
	// +optional
	WhatsApp string `json:"whatsapp,omitempty"`
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Webhook string `json:"webhook,omitempty"`
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Slack string `json:"slack,omitempty"`
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Teams string `json:"teams,omitempty"`
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Telegram string `json:"telegram,omitempty"`
}

// For returns the provider named for channel c, or "".
func (p *ChannelProviders) For(c Channel) string {
	if p == nil {
		return ""
	}
	switch c {
	case ChannelEmail:
		return p.Email
	case ChannelWhatsApp:
		return p.WhatsApp
	case ChannelWebhook:
		return p.Webhook
	case ChannelSlack:
		return p.Slack
	case ChannelTeams:
		return p.Teams
	case ChannelTelegram:
		return p.Telegram
	}
	return ""
}

// EmailContent is the email rendering of a notification.
type EmailContent struct {
	// +kubebuilder:validation:MaxLength=998
	// +optional
	Subject string `json:"subject,omitempty"`
	// +optional
	Text string `json:"text,omitempty"`
	// +optional
	HTML string `json:"html,omitempty"`
}

// WhatsAppTemplate is a message template approved by WhatsApp, required to
// start a conversation outside the 24-hour customer service window.
type WhatsAppTemplate struct {
	// name of the approved template (Meta Cloud API).
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Name string `json:"name,omitempty"`
	// language code of the template, e.g. "en_US".
	// +kubebuilder:validation:MaxLength=15
	// +optional
	Language string `json:"language,omitempty"`
	// contentSid of the approved template (Twilio), e.g. "HX...".
	// +kubebuilder:validation:MaxLength=64
	// +optional
	ContentSID string `json:"contentSid,omitempty"`
	// params are the template's positional body parameters.
	// +kubebuilder:validation:MaxItems=20
	// +optional
	Params []string `json:"params,omitempty"`
}

// WhatsAppContent is the WhatsApp rendering of a notification.
type WhatsAppContent struct {
	// text is a free-form message, allowed inside the 24-hour window.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Text string `json:"text,omitempty"`
	// template is an approved template message.
	// +optional
	Template *WhatsAppTemplate `json:"template,omitempty"`
}

// SlackContent is the Slack rendering of a notification: mrkdwn text,
// Block Kit blocks, or both (the text is then the notification's fallback,
// shown in push notifications and by clients that cannot show blocks).
// +kubebuilder:validation:XValidation:rule="!has(self.blocks) || self.blocks.trim().startsWith('[')",message="slack.blocks must be a JSON array of Block Kit blocks, e.g. [{\"type\": \"section\", \"text\": {\"type\": \"mrkdwn\", \"text\": \"...\"}}]"
type SlackContent struct {
	// text is the message in Slack's mrkdwn, e.g. "*deploy* of `app` done".
	// Slack truncates messages longer than 40000 characters.
	// +kubebuilder:validation:MaxLength=40000
	// +optional
	Text string `json:"text,omitempty"`
	// blocks is a JSON array of Block Kit blocks (at most 50), sent as
	// chat.postMessage's blocks.
	// +kubebuilder:validation:MaxLength=65536
	// +optional
	Blocks string `json:"blocks,omitempty"`
}

// TeamsContent is the Microsoft Teams rendering of a notification.
// +kubebuilder:validation:XValidation:rule="!has(self.card) || self.card.trim().startsWith('{')",message="teams.card must be one Adaptive Card as a JSON object, e.g. {\"type\": \"AdaptiveCard\", \"version\": \"1.5\", \"body\": [...]}"
type TeamsContent struct {
	// card is an Adaptive Card (a JSON object with "type": "AdaptiveCard").
	// Without it Herald sends a card with the title and message. Teams
	// refuses messages larger than about 28 KB.
	// +kubebuilder:validation:MaxLength=28000
	// +optional
	Card string `json:"card,omitempty"`
}

// TelegramParseMode is how Telegram reads a message's formatting.
// +kubebuilder:validation:Enum=HTML;MarkdownV2;Markdown
type TelegramParseMode string

const (
	TelegramHTML       TelegramParseMode = "HTML"
	TelegramMarkdownV2 TelegramParseMode = "MarkdownV2"
	TelegramMarkdown   TelegramParseMode = "Markdown"
)

// TelegramContent is the Telegram rendering of a notification.
type TelegramContent struct {
	// text of the message, at most 4096 characters after entities are
	// parsed.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Text string `json:"text,omitempty"`
	// parseMode is how Telegram reads text's formatting: HTML, MarkdownV2
	// or Markdown (legacy). Unset, text is sent as plain text.
	// +optional
	ParseMode TelegramParseMode `json:"parseMode,omitempty"`
}

// SecretKeyReference points at one key of a Secret in the same namespace.
type SecretKeyReference struct {
	// name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// key within the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// SecretReference points at a Secret in the same namespace.
type SecretReference struct {
	// name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// ObjectMetaTemplate is the metadata given to objects created from a
// template (schedules and event rules).
type ObjectMetaTemplate struct {
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// NotificationTemplateSpec describes the Notifications a schedule or event
// rule creates.
type NotificationTemplateSpec struct {
	// +optional
	Metadata ObjectMetaTemplate `json:"metadata,omitempty"`
	Spec     NotificationSpec   `json:"spec"`
}
