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
	"strconv"
	"strings"
	"time"

	"github.com/herald-dev/herald/internal/channel"
)

// DefaultTwilioBaseURL is Twilio's REST API host.
const DefaultTwilioBaseURL = "https://api.twilio.com"

// TwilioConfig configures a sender for WhatsApp over Twilio's Messages API.
type TwilioConfig struct {
	// BaseURL defaults to DefaultTwilioBaseURL.
	BaseURL string
	// AccountSID (AC...) names the account the message is sent from. Required.
	AccountSID string
	// AuthToken authenticates as the account. Either AuthToken or the
	// APIKeySID/APIKeySecret pair is required; an API key wins when both
	// are set, because it can be revoked without rotating the account token.
	AuthToken    string
	APIKeySID    string
	APIKeySecret string
	// From is the WhatsApp-enabled sender number in E.164, with or without
	// the "whatsapp:" prefix. Required.
	From string
	// DefaultRegion reads recipient numbers written without a country code.
	DefaultRegion string
	// HTTPClient defaults to channel.HTTPClient(), shared by every HTTP
	// channel.
	HTTPClient *http.Client
}

// TwilioSender sends WhatsApp messages through Twilio. It is safe for
// concurrent use.
type TwilioSender struct {
	endpoint      string
	user, pass    string
	from          string // whatsapp:+E164
	defaultRegion string
	client        *http.Client
}

var _ channel.Sender = (*TwilioSender)(nil)

var (
	accountSIDRE = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	apiKeySIDRE  = regexp.MustCompile(`^SK[0-9a-fA-F]{32}$`)
)

// NewTwilio validates cfg and returns a sender.
func NewTwilio(cfg TwilioConfig) (*TwilioSender, error) {
	base, err := validateBaseURL("whatsapp twilio: baseURL", cmp.Or(cfg.BaseURL, DefaultTwilioBaseURL))
	if err != nil {
		return nil, err
	}
	cfg.AccountSID = strings.TrimSpace(cfg.AccountSID)
	if !accountSIDRE.MatchString(cfg.AccountSID) {
		return nil, fmt.Errorf("whatsapp twilio: accountSID %q must be AC followed by 32 hex digits", cfg.AccountSID)
	}
	user, pass := cfg.AccountSID, cfg.AuthToken
	switch {
	case cfg.APIKeySID != "":
		if !apiKeySIDRE.MatchString(cfg.APIKeySID) {
			return nil, fmt.Errorf("whatsapp twilio: apiKeySID %q must be SK followed by 32 hex digits", cfg.APIKeySID)
		}
		if cfg.APIKeySecret == "" {
			return nil, errors.New("whatsapp twilio: apiKeySecret is required with apiKeySID")
		}
		user, pass = cfg.APIKeySID, cfg.APIKeySecret
	case cfg.AuthToken == "":
		return nil, errors.New("whatsapp twilio: authToken (or apiKeySID and apiKeySecret) is required")
	}
	fromRaw := strings.TrimPrefix(strings.TrimSpace(cfg.From), "whatsapp:")
	if fromRaw == "" {
		return nil, errors.New("whatsapp twilio: from (the WhatsApp sender number) is required")
	}
	from, err := Normalize(fromRaw, "")
	if err != nil {
		return nil, fmt.Errorf("whatsapp twilio: from: %w", err)
	}
	return &TwilioSender{
		endpoint:      base + "/2010-04-01/Accounts/" + url.PathEscape(cfg.AccountSID) + "/Messages.json",
		user:          user,
		pass:          pass,
		from:          "whatsapp:" + from,
		defaultRegion: cfg.DefaultRegion,
		client:        cfg.HTTPClient,
	}, nil
}

type twilioMessage struct {
	SID string `json:"sid"`
}

type twilioError struct {
	Code     *int   `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// Send delivers msg. A message with a ContentSID goes out as a content
// template (the only kind WhatsApp delivers outside the 24-hour window) with
// TemplateParams as variables "1".."n"; otherwise the text is sent as Body.
// Twilio has no notion of Meta template names, so a TemplateName without a
// ContentSID falls back to the text.
func (s *TwilioSender) Send(ctx context.Context, msg *channel.Message) (channel.Result, error) {
	to, err := recipientPhone(msg, s.defaultRegion)
	if err != nil {
		return channel.Result{}, err
	}
	form := url.Values{}
	form.Set("To", "whatsapp:"+to)
	form.Set("From", s.from)
	if wa := msg.WhatsApp; wa != nil && wa.ContentSID != "" {
		form.Set("ContentSid", wa.ContentSID)
		if len(wa.TemplateParams) > 0 {
			vars := make(map[string]string, len(wa.TemplateParams))
			for i, p := range wa.TemplateParams {
				vars[strconv.Itoa(i+1)] = p
			}
			b, err := json.Marshal(vars)
			if err != nil {
				return channel.Result{}, channel.NewPermanent("", fmt.Errorf("whatsapp twilio: encoding content variables: %w", err))
			}
			form.Set("ContentVariables", string(b))
		}
	} else {
		text := messageText(msg)
		if text == "" {
			return channel.Result{}, channel.NewPermanent("", errors.New("whatsapp twilio: message has neither text nor a content template (contentSID)"))
		}
		form.Set("Body", text)
	}

	header := apiHeader("application/x-www-form-urlencoded")
	header.Set("Authorization", basicAuth(s.user, s.pass))
	body, err := exchange(ctx, s.client, "whatsapp twilio", s.endpoint, header, []byte(form.Encode()), classifyTwilio)
	if err != nil {
		return channel.Result{}, err
	}
	var m twilioMessage
	_ = json.Unmarshal(body, &m)
	return channel.Result{ProviderMessageID: m.SID}, nil
}

func basicAuth(user, pass string) string {
	r := http.Request{Header: http.Header{}}
	r.SetBasicAuth(user, pass)
	return r.Header.Get("Authorization")
}

// Twilio error codes, from the Twilio error dictionary.
const (
	twilioAuthenticate      = 20003
	twilioAccountInactive   = 20005
	twilioNotFound          = 20404
	twilioTooManyRequests   = 20429
	twilioInvalidTo         = 21211
	twilioFromNotCapable    = 21606
	twilioUnverifiedTrialTo = 21608
	twilioUnsubscribed      = 21610
	twilioToNotOnWhatsApp   = 63003
	twilioNoFromChannel     = 63007
	twilioOutsideWindow     = 63016
	twilioChannelRateLimit  = 63018
	twilioDailyLimit        = 63038
)

// classifyTwilio maps a Twilio REST error to a channel.Error.
func classifyTwilio(r *channel.HTTPResponse) error {
	var te twilioError
	if err := json.Unmarshal(r.Body, &te); err != nil || te.Code == nil {
		return unrecognised("whatsapp twilio", r)
	}
	n := *te.Code
	code := fmt.Sprintf("twilio %d", n)
	f := failure{code: code, said: fmt.Sprintf("whatsapp twilio: HTTP %d", r.Status), ref: token(te.MoreInfo)}

	if ce := twilioCodeError(n, f, retryAfter(r)); ce != nil {
		return ce
	}
	return byStatus(code, r, f.err(""))
}

// twilioCodeError classifies a Twilio error code that means the same
// whatever carried it: an error response to a send, or the ErrorCode of a
// failed or undelivered message's status callback (TwilioReceiptError). It
// returns nil for a code it does not know.
func twilioCodeError(n int, f failure, wait time.Duration) *channel.Error {
	switch n {
	case twilioAuthenticate:
		return f.providerFault("The account SID and auth token (or API key) were rejected")
	case twilioAccountInactive, twilioNotFound:
		return f.providerFault("Check the account SID")
	case twilioTooManyRequests, twilioChannelRateLimit, twilioDailyLimit:
		return channel.NewRateLimited(f.code, wait, f.err(""))
	case twilioOutsideWindow:
		return f.recipientFault("Free-form WhatsApp messages are only allowed within 24 hours of the recipient's last reply: set an approved content template (contentSID) for this notification")
	case twilioInvalidTo, twilioToNotOnWhatsApp:
		ie := channel.NewInvalidAddress(f.err(""))
		ie.Code = f.code
		return ie
	case twilioFromNotCapable, twilioNoFromChannel:
		return f.providerFault("Check that the From number is a WhatsApp sender enabled on this account")
	case twilioUnverifiedTrialTo:
		// A trial account may only send to numbers verified on it: the
		// account works, this one number is not allowed.
		return f.recipientFault("A trial account sends only to verified numbers: verify this number in the Twilio console, or upgrade the account")
	case twilioUnsubscribed:
		return f.recipientFault("The recipient has opted out of messages from this sender")
	}
	return nil
}

// TwilioReceiptError classifies the ErrorCode of a status callback that
// reported a message failed or undelivered, exactly as the same code in an
// answer to the send would be; an unknown code is a permanent failure of
// this message.
func TwilioReceiptError(code int) *channel.Error {
	f := failure{code: fmt.Sprintf("twilio %d", code), said: "whatsapp twilio: status callback: message failed"}
	if ce := twilioCodeError(code, f, 0); ce != nil {
		return ce
	}
	return channel.NewPermanent(f.code, f.err(""))
}
