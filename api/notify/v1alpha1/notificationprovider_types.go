package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SMTPTLSMode is how an SMTP connection is secured.
// +kubebuilder:validation:Enum=None;StartTLS;ImplicitTLS
type SMTPTLSMode string

const (
	SMTPTLSNone     SMTPTLSMode = "None"
	SMTPStartTLS    SMTPTLSMode = "StartTLS"
	SMTPImplicitTLS SMTPTLSMode = "ImplicitTLS"
)

// SMTPProvider sends email through an SMTP server.
type SMTPProvider struct {
	// host of the SMTP server.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Host string `json:"host"`
	// port of the SMTP server, usually 587 (StartTLS) or 465 (ImplicitTLS).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
	// tls is how the connection is secured.
	// +kubebuilder:default=StartTLS
	// +optional
	TLS SMTPTLSMode `json:"tls,omitempty"`
	// from is the sender, e.g. "Herald <herald@example.com>".
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=320
	From string `json:"from"`
	// replyTo is an optional Reply-To address.
	// +kubebuilder:validation:MaxLength=320
	// +optional
	ReplyTo string `json:"replyTo,omitempty"`
	// authSecretRef names a Secret with keys "username" and "password"
	// for SMTP AUTH.
	// +optional
	AuthSecretRef *SecretReference `json:"authSecretRef,omitempty"`
	// caSecretRef names a Secret whose key "ca.crt" holds extra CA
	// certificates to trust.
	// +optional
	CASecretRef *SecretReference `json:"caSecretRef,omitempty"`
	// insecureSkipVerify disables certificate verification. For tests.
	// +optional
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
}

// WhatsAppAPI is the WhatsApp gateway a provider speaks to.
// +kubebuilder:validation:Enum=cloud;twilio;waha
type WhatsAppAPI string

const (
	WhatsAppCloud  WhatsAppAPI = "cloud"
	WhatsAppTwilio WhatsAppAPI = "twilio"
	WhatsAppWAHA   WhatsAppAPI = "waha"
)

// WhatsAppProvider sends WhatsApp messages through Meta's Cloud API, Twilio
// or a WAHA gateway.
// +kubebuilder:validation:XValidation:rule="self.api != 'cloud' || has(self.phoneNumberID)",message="the cloud api needs phoneNumberID"
// +kubebuilder:validation:XValidation:rule="self.api != 'twilio' || (has(self.accountSID) && has(self.from))",message="the twilio api needs accountSID and from"
// +kubebuilder:validation:XValidation:rule="self.api != 'waha' || has(self.baseURL)",message="the waha api needs baseURL"
// +kubebuilder:validation:XValidation:rule="!has(self.receipts) || self.api != 'waha'",message="receipts are not available for the waha api: WAHA has no signed status callbacks"
// +kubebuilder:validation:XValidation:rule="!has(self.receipts) || self.api != 'cloud' || (has(self.receipts.appSecretRef) && has(self.receipts.verifyTokenRef))",message="receipts for the cloud api need appSecretRef and verifyTokenRef"
// +kubebuilder:validation:XValidation:rule="!has(self.receipts) || self.api != 'twilio' || (!has(self.receipts.appSecretRef) && !has(self.receipts.verifyTokenRef) && has(self.credentialsSecretRef))",message="receipts for the twilio api are verified with the auth token of credentialsSecretRef; appSecretRef and verifyTokenRef are Meta's"
type WhatsAppProvider struct {
	// api is cloud (Meta WhatsApp Cloud API), twilio or waha.
	API WhatsAppAPI `json:"api"`
	// baseURL overrides the API's address (required for waha).
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self)",message="baseURL must be an absolute URL"
	// +optional
	BaseURL string `json:"baseURL,omitempty"`
	// apiVersion of the Cloud API, e.g. "v21.0".
	// +kubebuilder:validation:MaxLength=16
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// phoneNumberID is the Cloud API sender's phone number id.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	PhoneNumberID string `json:"phoneNumberID,omitempty"`
	// accountSID is the Twilio account.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	AccountSID string `json:"accountSID,omitempty"`
	// from is the Twilio sender number in E.164.
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="self.matches('^\\\\+[1-9][0-9]{6,14}$')",message="from must be in E.164 form, e.g. +14155238886"
	// +optional
	From string `json:"from,omitempty"`
	// session is the WAHA session name.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Session string `json:"session,omitempty"`
	// defaultRegion parses recipients' numbers written without a country
	// code, e.g. "DE".
	// +kubebuilder:validation:Pattern=`^[A-Z]{2}$`
	// +optional
	DefaultRegion string `json:"defaultRegion,omitempty"`
	// credentialsSecretRef names a Secret with the API credentials: key
	// "token" (cloud), "authToken" (twilio) or "apiKey" (waha, optional).
	// +optional
	CredentialsSecretRef *SecretReference `json:"credentialsSecretRef,omitempty"`
	// receipts opts this provider in to delivery receipts: the provider's
	// status callbacks, sent to `herald receiver` at
	// /receipts/meta/<namespace>/<provider> (cloud) or
	// /receipts/twilio/<namespace>/<provider> (twilio), record on each
	// delivery whether the message was delivered, read or failed. Without
	// it the receiver refuses this provider's callbacks.
	// +optional
	Receipts *WhatsAppReceipts `json:"receipts,omitempty"`
}

// WhatsAppReceipts holds the secrets that prove a status callback came from
// the provider. Twilio signs its callbacks with the account's auth token,
// key "authToken" of credentialsSecretRef, so a twilio provider sets none
// of these fields (receipts: {}).
type WhatsAppReceipts struct {
	// appSecretRef names the Secret key holding the Meta app secret, which
	// signs every webhook POST (X-Hub-Signature-256). Cloud API only.
	// +optional
	AppSecretRef *SecretKeyReference `json:"appSecretRef,omitempty"`
	// verifyTokenRef names the Secret key holding the verify token typed
	// into the app dashboard's webhook settings, which Meta echoes when it
	// subscribes the callback URL (hub.verify_token). Cloud API only.
	// +optional
	VerifyTokenRef *SecretKeyReference `json:"verifyTokenRef,omitempty"`
}

// WebhookHeaderFromSecret is a request header whose value is a Secret's
// key, for credentials such as an Authorization header.
type WebhookHeaderFromSecret struct {
	// name of the header.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[!#$%&'*+.^_|~0-9A-Za-z-]+$`
	Name string `json:"name"`
	// secretKeyRef names the Secret and key holding the value.
	SecretKeyRef SecretKeyReference `json:"secretKeyRef"`
}

// WebhookProvider posts JSON to an HTTP endpoint.
// +kubebuilder:validation:XValidation:rule="!has(self.headersFrom) || has(self.url)",message="headersFrom needs url: header values from a Secret are sent only to the provider's own url, never to recipients' webhookURLs"
// +kubebuilder:validation:XValidation:rule="!has(self.headersFrom) || !has(self.headers) || self.headersFrom.all(h, self.headers.all(k, k.lowerAscii() != h.name.lowerAscii()))",message="a header may be set in headers or in headersFrom, not both"
type WebhookProvider struct {
	// url receives the POST. When empty, each recipient's webhookURL is
	// used.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'https' || url(self).getScheme() == 'http')",message="url must be an absolute http or https URL"
	// +optional
	URL string `json:"url,omitempty"`
	// signingSecretRef names a Secret key whose value signs each request
	// with HMAC-SHA256 (header X-Herald-Signature).
	// +optional
	SigningSecretRef *SecretKeyReference `json:"signingSecretRef,omitempty"`
	// headers are added to every request.
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	Headers map[string]string `json:"headers,omitempty"`
	// headersFrom are added to every request with values read from
	// Secrets (which must carry the label
	// notify.herald.dev/provider-secret: "true"). They are credentials:
	// they need url, and url must be https unless the controller's
	// --egress-allow names its host.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(h, self.exists_one(o, o.name.lowerAscii() == h.name.lowerAscii()))",message="header names in headersFrom must be unique (case-insensitive)"
	// +listType=map
	// +listMapKey=name
	// +optional
	HeadersFrom []WebhookHeaderFromSecret `json:"headersFrom,omitempty"`
}

// SlackProvider posts with a Slack app's bot token through chat.postMessage.
type SlackProvider struct {
	// botTokenSecretRef names the Secret and key holding the bot user
	// OAuth token ("xoxb-..."), of an app with the chat:write scope.
	BotTokenSecretRef SecretKeyReference `json:"botTokenSecretRef"`
	// defaultChannel is the conversation ID (e.g. "C024BE91L") posted to
	// for recipients that have no slack address.
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[CGD][A-Z0-9]{2,}$')",message="defaultChannel must be a conversation ID such as C024BE91L (not a #name)"
	// +optional
	DefaultChannel string `json:"defaultChannel,omitempty"`
	// baseURL overrides Slack's Web API address, https://slack.com/api,
	// for a proxy or a test server. The egress policy applies to it, and
	// the token is only sent over https unless the controller's
	// --egress-allow names the host.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'https' || url(self).getScheme() == 'http')",message="baseURL must be an absolute http or https URL"
	// +optional
	BaseURL string `json:"baseURL,omitempty"`
	// inboxURL is the address of the inbox web page; approval
	// notifications link to their item there. It overrides the
	// controller's --inbox-url.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'https' || url(self).getScheme() == 'http')",message="inboxURL must be an absolute http or https URL"
	// +optional
	InboxURL string `json:"inboxURL,omitempty"`
}

// TeamsProvider posts Adaptive Cards to Microsoft Teams rooms through
// their Workflows webhooks. Each recipient names its room's webhook; the
// provider may name a room for recipients that name none.
type TeamsProvider struct {
	// webhookURLSecretRef names the Secret and key holding the Workflows
	// webhook URL of the room used for recipients without a teams
	// address.
	// +optional
	WebhookURLSecretRef *SecretKeyReference `json:"webhookURLSecretRef,omitempty"`
	// inboxURL is the address of the inbox web page; approval
	// notifications link to their item there. It overrides the
	// controller's --inbox-url.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'https' || url(self).getScheme() == 'http')",message="inboxURL must be an absolute http or https URL"
	// +optional
	InboxURL string `json:"inboxURL,omitempty"`
}

// TelegramProvider sends with a Telegram bot through the Bot API's
// sendMessage.
type TelegramProvider struct {
	// botTokenSecretRef names the Secret and key holding the token
	// BotFather gave the bot ("123456:ABC-...").
	BotTokenSecretRef SecretKeyReference `json:"botTokenSecretRef"`
	// baseURL overrides the Bot API's address, https://api.telegram.org,
	// for a local Bot API server or a test server. The egress policy
	// applies to it, and the token is only sent over https unless the
	// controller's --egress-allow names the host.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'https' || url(self).getScheme() == 'http')",message="baseURL must be an absolute http or https URL"
	// +optional
	BaseURL string `json:"baseURL,omitempty"`
}

// RateLimit allows `requests` per `per`, with bursts up to `burst`.
type RateLimit struct {
	// requests allowed in each period.
	// +kubebuilder:validation:Minimum=1
	Requests int32 `json:"requests"`
	// per is the period, e.g. "1s" or "1m".
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1ms')",message="per must be at least 1ms"
	// +kubebuilder:default="1s"
	// +optional
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:Type=string
	Per metav1.Duration `json:"per,omitempty"`
	// burst is how many requests may go at once; defaults to requests.
	// +kubebuilder:validation:Minimum=1
	// +optional
	Burst int32 `json:"burst,omitempty"`
}

// NotificationProviderSpec says how one channel is delivered.
// +kubebuilder:validation:XValidation:rule="self.channel != 'inApp'",message="inApp needs no provider: in-app notifications are served by Herald's inbox"
// +kubebuilder:validation:XValidation:rule="(self.channel == 'email') == has(self.smtp)",message="an email provider needs smtp settings, and only email providers may have them"
// +kubebuilder:validation:XValidation:rule="(self.channel == 'whatsapp') == has(self.whatsapp)",message="a whatsapp provider needs whatsapp settings, and only whatsapp providers may have them"
// +kubebuilder:validation:XValidation:rule="(self.channel == 'webhook') == has(self.webhook)",message="a webhook provider needs webhook settings, and only webhook providers may have them"
// +kubebuilder:validation:XValidation:rule="(self.channel == 'slack') == has(self.slack)",message="a slack provider needs slack settings (at least botTokenSecretRef), and only slack providers may have them"
// +kubebuilder:validation:XValidation:rule="(self.channel == 'teams') == has(self.teams)",message="a teams provider needs teams settings (teams: {} when every recipient names its room), and only teams providers may have them"
// +kubebuilder:validation:XValidation:rule="(self.channel == 'telegram') == has(self.telegram)",message="a telegram provider needs telegram settings (at least botTokenSecretRef), and only telegram providers may have them"
type NotificationProviderSpec struct {
	// channel this provider delivers.
	Channel Channel `json:"channel"`
	// default makes this the provider for notifications that name none.
	// +optional
	Default bool `json:"default,omitempty"`
	// +optional
	SMTP *SMTPProvider `json:"smtp,omitempty"`
	// +optional
	WhatsApp *WhatsAppProvider `json:"whatsapp,omitempty"`
	// +optional
	Webhook *WebhookProvider `json:"webhook,omitempty"`
	// +optional
	Slack *SlackProvider `json:"slack,omitempty"`
	// +optional
	Teams *TeamsProvider `json:"teams,omitempty"`
	// +optional
	Telegram *TelegramProvider `json:"telegram,omitempty"`
	// rateLimit holds deliveries back so the provider is not flooded. It
	// is shared by all workers; waiting for it uses no attempt.
	// +optional
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
	// fallback names providers of the same channel, tried in order when
	// this one fails for provider reasons (credentials, configuration) or
	// is not Ready.
	// +kubebuilder:validation:MaxItems=5
	// +optional
	Fallback []string `json:"fallback,omitempty"`
	// suspend stops deliveries through this provider; they wait.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// NotificationProviderStatus is the observed state of a provider.
type NotificationProviderStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// NotificationProvider configures how a channel is delivered in a namespace.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=nprov,categories=herald
// +kubebuilder:printcolumn:name="Channel",type=string,JSONPath=`.spec.channel`
// +kubebuilder:printcolumn:name="Default",type=boolean,JSONPath=`.spec.default`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type NotificationProvider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   NotificationProviderSpec   `json:"spec"`
	Status NotificationProviderStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// NotificationProviderList contains a list of NotificationProvider.
type NotificationProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NotificationProvider `json:"items"`
}

func init() {
	SchemeBuilder.Register(&NotificationProvider{}, &NotificationProviderList{})
}
