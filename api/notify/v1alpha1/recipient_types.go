package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CategoryPreference chooses the channels for one category.
type CategoryPreference struct {
	// category the preference applies to.
	// +kubebuilder:validation:MaxLength=63
	Category string `json:"category"`
	// channels to receive this category on; an empty list mutes the
	// category (critical and approval notifications still arrive).
	// +listType=set
	// +optional
	Channels []Channel `json:"channels"`
}

// QuietHours defers deliveries that fall inside a daily window in the
// recipient's timezone. Deliveries are held, never dropped.
// +kubebuilder:validation:XValidation:rule="self.start != self.end",message="quietHours start and end must differ"
type QuietHours struct {
	// start of the window, "HH:MM" in 24-hour time.
	// +kubebuilder:validation:Pattern=`^([01][0-9]|2[0-3]):[0-5][0-9]$`
	Start string `json:"start"`
	// end of the window, "HH:MM"; a window may wrap past midnight.
	// +kubebuilder:validation:Pattern=`^([01][0-9]|2[0-3]):[0-5][0-9]$`
	End string `json:"end"`
	// channels the window applies to. By default every channel except
	// inApp, which never disturbs anyone.
	// +listType=set
	// +optional
	Channels []Channel `json:"channels,omitempty"`
	// critical lets critical and approval notifications through the
	// window when true.
	// +optional
	AllowCritical bool `json:"allowCritical,omitempty"`
}

// Preferences are a recipient's choices about what reaches them where.
type Preferences struct {
	// optOut lists channels the recipient does not want. critical and
	// approval notifications ignore it.
	// +listType=set
	// +optional
	OptOut []Channel `json:"optOut,omitempty"`
	// categories choose channels per category.
	// +listType=map
	// +listMapKey=category
	// +kubebuilder:validation:MaxItems=100
	// +optional
	Categories []CategoryPreference `json:"categories,omitempty"`
	// +optional
	QuietHours *QuietHours `json:"quietHours,omitempty"`
	// digests hold matching informational and warning notifications on
	// email, WhatsApp and chat channels and send one message per channel
	// listing them at the end of each window. In-app, webhook, critical
	// and approval notifications are never held.
	// +kubebuilder:validation:MaxItems=10
	// +optional
	Digests []DigestPreference `json:"digests,omitempty"`
}

// DigestPreference is one digest: which notifications it holds and when
// it is sent.
// +kubebuilder:validation:XValidation:rule="has(self.every) != has(self.schedule)",message="a digest needs exactly one of every (e.g. 1h) or schedule (a cron expression)"
type DigestPreference struct {
	// categories the digest holds; empty, every category.
	// +listType=set
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MaxLength=63
	// +optional
	Categories []string `json:"categories,omitempty"`
	// types the digest holds: informational and/or warning; empty, both.
	// +listType=set
	// +kubebuilder:validation:items:Enum=informational;warning
	// +optional
	Types []NotificationType `json:"types,omitempty"`
	// every sends the digest at the end of each window of this length,
	// aligned to the Unix epoch (1h: on the hour), between 1m and 168h.
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(s|m|h))+$`
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m') && duration(self) <= duration('168h')",message="digest every must be between 1m and 168h"
	// +optional
	Every *metav1.Duration `json:"every,omitempty"`
	// schedule sends the digest at the times of this cron expression
	// (five fields, e.g. "0 9 * * 1-5"), in the recipient's timezone.
	// +kubebuilder:validation:MaxLength=100
	// +optional
	Schedule string `json:"schedule,omitempty"`
	// templateRef renders the digest from a NotificationTemplate of the
	// namespace instead of Herald's default. It is given the params it
	// declares of: count (the number of notifications), items (the
	// default list, one numbered entry per notification), categories
	// (comma-separated) and recipient (the display name).
	// +optional
	TemplateRef *TemplateReference `json:"templateRef,omitempty"`
}

// RecipientSpec describes a person who receives notifications.
type RecipientSpec struct {
	// displayName is how the person is addressed.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	DisplayName string `json:"displayName,omitempty"`

	// username is the person's Kubernetes user name; their inbox shows
	// the in-app notifications of every Recipient with this username.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Username string `json:"username,omitempty"`

	// email address for the email channel.
	// +kubebuilder:validation:MaxLength=254
	// +kubebuilder:validation:XValidation:rule="self.matches('^[^@\\\\s]+@[^@\\\\s]+\\\\.[^@\\\\s]+$')",message="email must be an address like name@example.com"
	// +optional
	Email string `json:"email,omitempty"`

	// phone number in E.164 form for WhatsApp, e.g. "+4915112345678".
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="self.matches('^\\\\+[1-9][0-9]{6,14}$')",message="phone must be in E.164 form: a plus sign and 7 to 15 digits, e.g. +4915112345678"
	// +optional
	Phone string `json:"phone,omitempty"`

	// webhookURL receives this person's webhook notifications when the
	// provider has no URL of its own.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'https' || url(self).getScheme() == 'http')",message="webhookURL must be an absolute http or https URL"
	// +optional
	WebhookURL string `json:"webhookURL,omitempty"`

	// slack is the person or room that receives Slack notifications.
	// +optional
	Slack *SlackAddress `json:"slack,omitempty"`

	// teams is the Microsoft Teams room that receives Teams notifications.
	// +optional
	Teams *TeamsAddress `json:"teams,omitempty"`

	// telegram is the chat that receives Telegram notifications.
	// +optional
	Telegram *TelegramAddress `json:"telegram,omitempty"`

	// roles this person has, for role audiences.
	// +listType=set
	// +kubebuilder:validation:MaxItems=50
	// +kubebuilder:validation:items:MaxLength=63
	// +optional
	Roles []string `json:"roles,omitempty"`

	// timezone is an IANA zone name, e.g. "Europe/Berlin", for quiet
	// hours. Defaults to UTC.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Timezone string `json:"timezone,omitempty"`

	// +optional
	Preferences Preferences `json:"preferences,omitempty"`
}

// SlackAddress is a Slack user (a direct message from the bot) or a
// conversation the bot is a member of.
// +kubebuilder:validation:XValidation:rule="has(self.userID) != has(self.channelID)",message="slack needs exactly one of userID (e.g. U024BE7LH) or channelID (e.g. C024BE91L)"
type SlackAddress struct {
	// userID is a member ID, e.g. "U024BE7LH" (in Slack: profile, ⋮,
	// Copy member ID).
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[UW][A-Z0-9]{2,}$')",message="slack.userID must be a member ID such as U024BE7LH (not a display name or @handle)"
	// +optional
	UserID string `json:"userID,omitempty"`
	// channelID is a conversation ID, e.g. "C024BE91L" (in Slack: channel
	// details, at the bottom). The bot must be a member of it.
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[CGD][A-Z0-9]{2,}$')",message="slack.channelID must be a conversation ID such as C024BE91L (not a #name)"
	// +optional
	ChannelID string `json:"channelID,omitempty"`
}

// TeamsAddress is a Microsoft Teams room, reached through the Workflows
// webhook ("Post to a channel when a webhook request is received") set up
// for it. Anyone holding the webhook URL can post to the room, so the URL
// is a credential and is read from a Secret labelled
// notify.herald.dev/provider-secret: "true".
type TeamsAddress struct {
	// webhookURLSecretRef names the Secret and key holding the room's
	// Workflows webhook URL.
	WebhookURLSecretRef SecretKeyReference `json:"webhookURLSecretRef"`
}

// TelegramAddress is a Telegram chat the bot may write to.
type TelegramAddress struct {
	// chatID is the numeric chat ID (a person's or a group's, groups are
	// negative) or a public channel's @username.
	// +kubebuilder:validation:MaxLength=33
	// +kubebuilder:validation:XValidation:rule="self.matches('^(-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$')",message="telegram.chatID must be a numeric chat ID such as 123456789 or -1001234567890, or a public channel's @username"
	ChatID string `json:"chatID"`
}

// RecipientStatus is the observed state of a Recipient.
type RecipientStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Recipient is a person who receives notifications.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rcpt,categories=herald
// +kubebuilder:printcolumn:name="Username",type=string,JSONPath=`.spec.username`
// +kubebuilder:printcolumn:name="Email",type=string,JSONPath=`.spec.email`
// +kubebuilder:printcolumn:name="Phone",type=string,JSONPath=`.spec.phone`
// +kubebuilder:printcolumn:name="Roles",type=string,JSONPath=`.spec.roles`
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="AddressesValid")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Recipient struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RecipientSpec   `json:"spec,omitempty"`
	Status RecipientStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// RecipientList contains a list of Recipient.
type RecipientList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Recipient `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Recipient{}, &RecipientList{})
}
