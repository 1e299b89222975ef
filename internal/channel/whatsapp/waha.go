package whatsapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/herald-dev/herald/internal/channel"
)

// DefaultWAHASession is the session WAHA Core runs (it supports no other).
const DefaultWAHASession = "default"

// WAHAConfig configures a sender for a self-hosted WAHA instance.
type WAHAConfig struct {
	// BaseURL is where WAHA listens, for example http://waha:3000. Required:
	// WAHA is self-hosted, so there is no sensible default.
	BaseURL string
	// APIKey is sent as X-Api-Key. Optional, because WAHA runs without one
	// when WAHA_API_KEY is unset.
	APIKey string
	// Session names the WAHA session (the paired WhatsApp account).
	// Defaults to DefaultWAHASession.
	Session string
	// DefaultRegion reads recipient numbers written without a country code.
	DefaultRegion string
	// HTTPClient defaults to channel.HTTPClient(), shared by every HTTP
	// channel.
	HTTPClient *http.Client
}

// WAHASender sends through WAHA. It is safe for concurrent use.
//
// WAHA drives an ordinary WhatsApp account, which has neither approved
// templates nor the 24-hour window of the Business Platform. A message that
// only names a template is therefore sent as its rendered text (Text, or
// Title and Body); only when there is no text at all does Send fail, as a
// Permanent error naming the template.
type WAHASender struct {
	endpoint      string
	apiKey        string
	session       string
	defaultRegion string
	client        *http.Client
}

var _ channel.Sender = (*WAHASender)(nil)

// NewWAHA validates cfg and returns a sender.
func NewWAHA(cfg WAHAConfig) (*WAHASender, error) {
	if strings.TrimSpace(cfg.BaseURL) == "" {
		return nil, errors.New("whatsapp waha: baseURL is required (where the WAHA server listens, e.g. http://waha:3000)")
	}
	base, err := validateBaseURL("whatsapp waha: baseURL", strings.TrimSpace(cfg.BaseURL))
	if err != nil {
		return nil, err
	}
	session := strings.TrimSpace(cfg.Session)
	if session == "" {
		session = DefaultWAHASession
	}
	return &WAHASender{
		endpoint:      base + "/api/sendText",
		apiKey:        cfg.APIKey,
		session:       session,
		defaultRegion: cfg.DefaultRegion,
		client:        cfg.HTTPClient,
	}, nil
}

type wahaSendText struct {
	Session string `json:"session"`
	ChatID  string `json:"chatId"`
	Text    string `json:"text"`
}

// wahaMessage covers the shapes of the sent message across WAHA engines:
// WEBJS returns id as an object with _serialized, GOWS and the documented
// schema return it as a string, NOWEB returns the Baileys key.
type wahaMessage struct {
	ID  json.RawMessage `json:"id"`
	Key *struct {
		ID string `json:"id"`
	} `json:"key"`
}

func (m wahaMessage) messageID() string {
	var s string
	if json.Unmarshal(m.ID, &s) == nil && s != "" {
		return s
	}
	var obj struct {
		Serialized string `json:"_serialized"`
		ID         string `json:"id"`
	}
	if json.Unmarshal(m.ID, &obj) == nil {
		if obj.Serialized != "" {
			return obj.Serialized
		}
		if obj.ID != "" {
			return obj.ID
		}
	}
	if m.Key != nil {
		return m.Key.ID
	}
	return ""
}

// wahaError covers NestJS's HttpException body ({statusCode, message,
// error}, message a string or a list of validation failures) and WAHA's
// session-status body ({error, session, status, expected}).
type wahaError struct {
	Message json.RawMessage `json:"message"`
	Error   string          `json:"error"`
	Session string          `json:"session"`
	Status  string          `json:"status"`
}

func (e wahaError) text() string {
	var s string
	if json.Unmarshal(e.Message, &s) == nil && s != "" {
		return s
	}
	var list []string
	if json.Unmarshal(e.Message, &list) == nil && len(list) > 0 {
		return strings.Join(list, "; ")
	}
	return e.Error
}

// Send delivers msg as a text message.
func (s *WAHASender) Send(ctx context.Context, msg *channel.Message) (channel.Result, error) {
	to, err := recipientPhone(msg, s.defaultRegion)
	if err != nil {
		return channel.Result{}, err
	}
	text := messageText(msg)
	if text == "" {
		if msg.WhatsApp != nil && msg.WhatsApp.TemplateName != "" {
			return channel.Result{}, channel.NewPermanent("", fmt.Errorf(
				"whatsapp waha: WAHA cannot send template %q (it has no template support) and the message has no text to send instead", msg.WhatsApp.TemplateName))
		}
		return channel.Result{}, channel.NewPermanent("", errors.New("whatsapp waha: message has no text"))
	}
	payload, err := json.Marshal(wahaSendText{
		Session: s.session,
		// Individual chats are <digits>@c.us in WAHA's chat ID scheme.
		ChatID: strings.TrimPrefix(to, "+") + "@c.us",
		Text:   text,
	})
	if err != nil {
		return channel.Result{}, channel.NewPermanent("", fmt.Errorf("whatsapp waha: encoding request: %w", err))
	}

	header := apiHeader("application/json")
	if s.apiKey != "" {
		header.Set("X-Api-Key", s.apiKey)
	}
	body, err := exchange(ctx, s.client, "whatsapp waha", s.endpoint, header, payload, func(r *channel.HTTPResponse) error {
		return classifyWAHA(r, s.session)
	})
	if err != nil {
		return channel.Result{}, err
	}
	var m wahaMessage
	_ = json.Unmarshal(body, &m)
	return channel.Result{ProviderMessageID: m.messageID()}, nil
}

// classifyWAHA maps a WAHA error response to a channel.Error. WAHA has no
// error codes of its own, so the HTTP status decides: a few statuses mean
// something particular to WAHA (its session), the rest are classified like
// any HTTP answer.
func classifyWAHA(r *channel.HTTPResponse, session string) error {
	var we wahaError
	_ = json.Unmarshal(r.Body, &we)
	code := fmt.Sprintf("waha %d", r.Status)
	f := failure{code: code, said: fmt.Sprintf("whatsapp waha: HTTP %d", r.Status)}
	if t := we.text(); t != "" {
		f.said += ": " + t
	}

	switch {
	case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden:
		return f.providerFault("Check the WAHA API key")
	case r.Status == http.StatusNotFound:
		return f.providerFault(fmt.Sprintf("Check that session %q exists and is started, and that the base URL points at WAHA", session))
	case r.Status == http.StatusUnprocessableEntity && we.Status != "":
		// The session exists but is not WORKING. STARTING clears by itself
		// within seconds; SCAN_QR_CODE, FAILED and STOPPED need a person to
		// pair or restart the session, so retrying only burns attempts.
		if we.Status == "STARTING" {
			te := channel.NewTransient(code, f.err(fmt.Sprintf("Session %q is still starting", session)))
			te.RetryAfter = retryAfter(r)
			return te
		}
		return f.providerFault(fmt.Sprintf("Session %q is %s; pair or restart it in WAHA", session, we.Status))
	}
	// 429, 408 and 5xx are retried; 400, other 422s and anything else: the
	// request itself was refused.
	return byStatus(code, r, f.err(""))
}
