package whatsapp

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/herald-dev/herald/internal/channel"
)

// Defaults for CloudConfig.
const (
	DefaultCloudBaseURL    = "https://graph.facebook.com"
	DefaultCloudAPIVersion = "v21.0"
	// DefaultTemplateLanguage is used when neither the message nor the
	// config names a template language. Meta requires one, and en_US is the
	// language of the templates every new WhatsApp Business account gets.
	DefaultTemplateLanguage = "en_US"
)

// CloudConfig configures a sender for Meta's WhatsApp Cloud API.
type CloudConfig struct {
	// BaseURL defaults to DefaultCloudBaseURL.
	BaseURL string
	// APIVersion is the Graph API version path segment, for example v21.0.
	// It defaults to DefaultCloudAPIVersion.
	APIVersion string
	// PhoneNumberID is the numeric ID Meta assigned to the business phone
	// number (not the phone number itself). Required.
	PhoneNumberID string
	// AccessToken is a system-user or temporary access token with the
	// whatsapp_business_messaging permission. Required.
	AccessToken string
	// TemplateLanguage is used for template messages that do not name a
	// language. Defaults to DefaultTemplateLanguage.
	TemplateLanguage string
	// DefaultRegion reads recipient numbers written without a country code.
	DefaultRegion string
	// HTTPClient defaults to channel.HTTPClient(), shared by every HTTP
	// channel.
	HTTPClient *http.Client
}

// CloudSender sends through the WhatsApp Cloud API. It is safe for
// concurrent use.
type CloudSender struct {
	endpoint      string
	token         string
	templateLang  string
	defaultRegion string
	client        *http.Client
}

var _ channel.Sender = (*CloudSender)(nil)

var (
	graphVersionRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+$`)
	numericIDRE    = regexp.MustCompile(`^[0-9]+$`)
)

// NewCloud validates cfg and returns a sender.
func NewCloud(cfg CloudConfig) (*CloudSender, error) {
	base, err := validateBaseURL("whatsapp cloud: baseURL", cmp.Or(cfg.BaseURL, DefaultCloudBaseURL))
	if err != nil {
		return nil, err
	}
	if cfg.APIVersion == "" {
		cfg.APIVersion = DefaultCloudAPIVersion
	}
	if !graphVersionRE.MatchString(cfg.APIVersion) {
		return nil, fmt.Errorf("whatsapp cloud: apiVersion %q must look like v21.0", cfg.APIVersion)
	}
	cfg.PhoneNumberID = strings.TrimSpace(cfg.PhoneNumberID)
	if cfg.PhoneNumberID == "" {
		return nil, errors.New("whatsapp cloud: phoneNumberID is required")
	}
	if !numericIDRE.MatchString(cfg.PhoneNumberID) {
		return nil, fmt.Errorf("whatsapp cloud: phoneNumberID %q must be the numeric phone number ID from WhatsApp Manager, not the phone number", cfg.PhoneNumberID)
	}
	if strings.TrimSpace(cfg.AccessToken) == "" {
		return nil, errors.New("whatsapp cloud: accessToken is required")
	}
	if cfg.TemplateLanguage == "" {
		cfg.TemplateLanguage = DefaultTemplateLanguage
	}
	return &CloudSender{
		endpoint:      base + "/" + cfg.APIVersion + "/" + url.PathEscape(cfg.PhoneNumberID) + "/messages",
		token:         strings.TrimSpace(cfg.AccessToken),
		templateLang:  cfg.TemplateLanguage,
		defaultRegion: cfg.DefaultRegion,
		client:        cfg.HTTPClient,
	}, nil
}

// Wire format of POST /{phone-number-id}/messages.
type cloudRequest struct {
	MessagingProduct string         `json:"messaging_product"`
	RecipientType    string         `json:"recipient_type"`
	To               string         `json:"to"`
	Type             string         `json:"type"`
	Text             *cloudText     `json:"text,omitempty"`
	Template         *cloudTemplate `json:"template,omitempty"`
}

type cloudText struct {
	PreviewURL bool   `json:"preview_url"`
	Body       string `json:"body"`
}

type cloudTemplate struct {
	Name       string           `json:"name"`
	Language   cloudLanguage    `json:"language"`
	Components []cloudComponent `json:"components,omitempty"`
}

type cloudLanguage struct {
	Code string `json:"code"`
}

type cloudComponent struct {
	Type       string           `json:"type"`
	Parameters []cloudParameter `json:"parameters"`
}

type cloudParameter struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type cloudResponse struct {
	Messages []struct {
		ID string `json:"id"`
	} `json:"messages"`
}

type cloudErrorBody struct {
	Error *struct {
		Message      string `json:"message"`
		Type         string `json:"type"`
		Code         *int   `json:"code"`
		ErrorSubcode int    `json:"error_subcode"`
		ErrorData    struct {
			Details string `json:"details"`
		} `json:"error_data"`
		FBTraceID string `json:"fbtrace_id"`
	} `json:"error"`
}

// Send delivers msg. A message with a TemplateName goes out as a template
// message even if it also has text: templates are deliverable outside the
// 24-hour customer service window, free-form text is not.
func (s *CloudSender) Send(ctx context.Context, msg *channel.Message) (channel.Result, error) {
	to, err := recipientPhone(msg, s.defaultRegion)
	if err != nil {
		return channel.Result{}, err
	}
	req := cloudRequest{
		MessagingProduct: "whatsapp",
		RecipientType:    "individual",
		// Meta documents the recipient as the number with country code; it
		// accepts a leading +, but the bare digits are the canonical form
		// (the wa_id it echoes back has none).
		To: strings.TrimPrefix(to, "+"),
	}
	if wa := msg.WhatsApp; wa != nil && wa.TemplateName != "" {
		lang := wa.TemplateLanguage
		if lang == "" {
			lang = s.templateLang
		}
		tpl := &cloudTemplate{Name: wa.TemplateName, Language: cloudLanguage{Code: lang}}
		if len(wa.TemplateParams) > 0 {
			params := make([]cloudParameter, len(wa.TemplateParams))
			for i, p := range wa.TemplateParams {
				params[i] = cloudParameter{Type: "text", Text: p}
			}
			tpl.Components = []cloudComponent{{Type: "body", Parameters: params}}
		}
		req.Type, req.Template = "template", tpl
	} else {
		text := messageText(msg)
		if text == "" {
			return channel.Result{}, channel.NewPermanent("", errors.New("whatsapp cloud: message has neither text nor a template"))
		}
		// Link previews stay off: a notification should not make WhatsApp
		// fetch arbitrary URLs from its body.
		req.Type, req.Text = "text", &cloudText{PreviewURL: false, Body: text}
	}
	payload, err := json.Marshal(req)
	if err != nil {
		return channel.Result{}, channel.NewPermanent("", fmt.Errorf("whatsapp cloud: encoding request: %w", err))
	}

	header := apiHeader("application/json")
	header.Set("Authorization", "Bearer "+s.token)
	body, err := exchange(ctx, s.client, "whatsapp cloud", s.endpoint, header, payload, classifyCloud)
	if err != nil {
		return channel.Result{}, err
	}
	var ok cloudResponse
	_ = json.Unmarshal(body, &ok)
	// A 2xx means Meta accepted the message; a missing ID is no reason to
	// send it again.
	var id string
	if len(ok.Messages) > 0 {
		id = ok.Messages[0].ID
	}
	return channel.Result{ProviderMessageID: id}, nil
}

// Meta error codes, from the Cloud API error code reference.
const (
	metaAPIUnknown          = 1
	metaAPIService          = 2
	metaAPIMethod           = 3
	metaAppRateLimit        = 4
	metaPermissionDenied    = 10
	metaAuth                = 190
	metaGraphRateLimit      = 613
	metaBusinessDeleted     = 33
	metaPolicyBlock         = 368
	metaWABARateLimit       = 80007
	metaThroughput          = 130429
	metaGeneric             = 131000
	metaAccessDenied        = 131005
	metaUndeliverable       = 131026
	metaNotAllowedList      = 131030
	metaAccountLocked       = 131031
	metaServiceUnavailable  = 131016
	metaPaymentIssue        = 131042
	metaReengagement        = 131047
	metaSpamRateLimit       = 131048
	metaPairRateLimit       = 131056
	metaNotRegistered       = 133010
	metaServerUnavailable   = 133004
	metaTemplateNotFound    = 132001
	metaTemplateParamsCount = 132000
)

// classifyCloud maps a Graph API error response to a channel.Error. Meta
// recommends keying on error.code rather than the HTTP status (most errors
// are HTTP 400), so the code decides and the status is only the fallback.
func classifyCloud(r *channel.HTTPResponse) error {
	var eb cloudErrorBody
	if err := json.Unmarshal(r.Body, &eb); err != nil || eb.Error == nil || eb.Error.Code == nil {
		return unrecognised("whatsapp cloud", r)
	}
	e := eb.Error
	n := *e.Code
	code := fmt.Sprintf("meta %d", n)
	f := failure{code: code, said: fmt.Sprintf("whatsapp cloud: HTTP %d", r.Status)}
	if e.FBTraceID != "" {
		f.ref = "fbtrace_id " + token(e.FBTraceID)
	}

	if ce := cloudCodeError(n, f, retryAfter(r)); ce != nil {
		return ce
	}
	if n == 0 && r.Status == http.StatusUnauthorized {
		return f.providerFault("The access token is invalid or expired; issue a new one")
	}
	if r.Status == http.StatusUnauthorized && e.Type == "OAuthException" {
		return f.providerFault("Authentication failed")
	}
	return byStatus(code, r, f.err(""))
}

// cloudCodeError classifies a Meta error code that means the same whatever
// carried it: an error response to a send, or a failed message's status
// callback (CloudReceiptError). It returns nil for a code it does not know.
func cloudCodeError(n int, f failure, wait time.Duration) *channel.Error {
	switch {
	case n == metaThroughput || n == metaPairRateLimit || n == metaAppRateLimit ||
		n == metaWABARateLimit || n == metaGraphRateLimit || n == metaSpamRateLimit:
		// All of these clear with time: throughput and app limits within
		// seconds to an hour, the pair limit once the recipient has had a
		// pause. Meta rarely sends Retry-After; the retry policy's delay
		// applies then.
		return channel.NewRateLimited(f.code, wait, f.err(""))
	case n == metaReengagement:
		return f.recipientFault("More than 24 hours have passed since the recipient last replied, so WhatsApp only accepts an approved template message: set an approved template (templateName) for this notification")
	case n == metaAuth:
		return f.providerFault("The access token is invalid or expired; issue a new one")
	case n == metaPermissionDenied || (n >= 200 && n <= 299) || n == metaAPIMethod || n == metaAccessDenied:
		return f.providerFault("The access token lacks the whatsapp_business_messaging permission for this phone number")
	case n == metaAccountLocked || n == metaPaymentIssue || n == metaPolicyBlock ||
		n == metaNotRegistered || n == metaBusinessDeleted:
		return f.providerFault("The WhatsApp Business account or phone number cannot send messages; check WhatsApp Manager")
	case n == metaUndeliverable:
		return f.recipientFault("The recipient may not use WhatsApp or has not accepted the latest terms")
	case n == metaNotAllowedList:
		return f.recipientFault("With a test phone number, add the recipient to the allowed list in the app dashboard")
	case n == metaTemplateNotFound || n == metaTemplateParamsCount:
		return channel.NewPermanent(f.code, f.err("Check the template name, language and number of parameters against WhatsApp Manager"))
	case n == metaAPIUnknown || n == metaAPIService || n == metaGeneric ||
		n == metaServiceUnavailable || n == metaServerUnavailable:
		te := channel.NewTransient(f.code, f.err(""))
		te.RetryAfter = wait
		return te
	}
	return nil
}

// CloudReceiptError classifies the error of a "failed" status that Meta's
// webhook reported for a message it had accepted, exactly as the same code
// in an answer to the send would be; an unknown code is a permanent
// failure of this message.
func CloudReceiptError(code int) *channel.Error {
	f := failure{code: fmt.Sprintf("meta %d", code), said: "whatsapp cloud: status callback: message failed"}
	if ce := cloudCodeError(code, f, 0); ce != nil {
		return ce
	}
	return channel.NewPermanent(f.code, f.err(""))
}
