// Package whatsapp delivers channel.Messages over WhatsApp through one of
// three provider APIs:
//
//   - CloudSender: Meta's WhatsApp Cloud API (api: cloud)
//   - TwilioSender: Twilio's Programmable Messaging API (api: twilio)
//   - WAHASender: a self-hosted WAHA (WhatsApp HTTP API) instance (api: waha)
//
// Every sender normalises the recipient's phone number to E.164 first, so a
// number that can never be delivered is reported as notifyv1.ReasonInvalidAddress
// without a request reaching the provider, and every provider failure is
// returned as a classified *channel.Error.
//
// The package internal/dev/providerfake holds fake servers that speak each provider's
// wire format, for tests and for a local development sink.
package whatsapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/herald-dev/herald/internal/channel"
)

// API names as they appear in a NotificationProvider's `api:` field.
const (
	APICloud  = "cloud"
	APITwilio = "twilio"
	APIWAHA   = "waha"
)

const userAgent = "herald-whatsapp/1"

// Normalize parses phone and returns it in E.164 form (for example
// +4915112345678). Numbers written without a country code are read as
// national numbers of defaultRegion (an ISO 3166-1 alpha-2 code such as "DE");
// with an empty defaultRegion such numbers are rejected. Spaces, dashes, dots
// and parentheses are accepted. The number must be a valid, assigned-range
// number for its country, not merely the right length.
func Normalize(phone, defaultRegion string) (string, error) {
	raw := strings.TrimSpace(phone)
	if raw == "" {
		return "", errors.New("phone number is empty")
	}
	// Upper-case ASCII letters only: strings.ToUpper would also read "ıt"
	// (dotless ı) as IT and "ſe" (long s) as SE.
	region := strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, strings.TrimSpace(defaultRegion))
	if region != "" && !phonenumbers.GetSupportedRegions()[region] {
		return "", fmt.Errorf("default region %q is not a known ISO 3166-1 country code", defaultRegion)
	}
	// Without a region the library can only read numbers that start with +.
	// Say so directly instead of passing on its "invalid country code".
	if region == "" && !strings.HasPrefix(raw, "+") {
		return "", fmt.Errorf("phone number %q has no country code: write it as +<country code><number> or configure a default region", phone)
	}
	num, err := phonenumbers.Parse(raw, region)
	switch {
	case errors.Is(err, phonenumbers.ErrInvalidCountryCode):
		return "", fmt.Errorf("phone number %q does not start with a known country code", phone)
	case err != nil:
		return "", fmt.Errorf("phone number %q cannot be read: %v", phone, err)
	}
	if num.GetExtension() != "" {
		return "", fmt.Errorf("phone number %q has an extension, which WhatsApp cannot dial", phone)
	}
	if !phonenumbers.IsValidNumber(num) {
		switch phonenumbers.IsPossibleNumberWithReason(num) {
		case phonenumbers.INVALID_COUNTRY_CODE:
			return "", fmt.Errorf("phone number %q has an unknown country code +%d", phone, num.GetCountryCode())
		case phonenumbers.TOO_SHORT:
			return "", fmt.Errorf("phone number %q is too short", phone)
		case phonenumbers.TOO_LONG:
			return "", fmt.Errorf("phone number %q is too long", phone)
		}
		if r := phonenumbers.GetRegionCodeForNumber(num); r != "" {
			return "", fmt.Errorf("phone number %q is not a valid number in %s", phone, r)
		}
		return "", fmt.Errorf("phone number %q is not a valid number for country code +%d", phone, num.GetCountryCode())
	}
	// E.164, which every WhatsApp API expects, allows at most 15 digits,
	// but phonenumbers' metadata accepts longer national numbers in some
	// countries (in Germany up to 15 digits after +49).
	e164 := phonenumbers.Format(num, phonenumbers.E164)
	if len(e164) > len("+")+15 {
		return "", fmt.Errorf("phone number %q is too long", phone)
	}
	return e164, nil
}

// recipientPhone normalises msg's recipient phone, classifying failure as
// InvalidAddress: the delivery is skipped, not retried, because no retry can
// make a malformed number deliverable.
func recipientPhone(msg *channel.Message, defaultRegion string) (string, error) {
	if strings.TrimSpace(msg.Recipient.Phone) == "" {
		return "", channel.NewInvalidAddress(fmt.Errorf("invalid phone: recipient %q has no phone number", msg.Recipient.Name))
	}
	e164, err := Normalize(msg.Recipient.Phone, defaultRegion)
	if err != nil {
		return "", channel.NewInvalidAddress(fmt.Errorf("invalid phone for recipient %q: %w", msg.Recipient.Name, err))
	}
	return e164, nil
}

// messageText is the free-form text of msg: the WhatsApp-specific rendering
// when there is one, otherwise the generic title and body.
func messageText(msg *channel.Message) string {
	if msg.WhatsApp != nil && strings.TrimSpace(msg.WhatsApp.Text) != "" {
		return msg.WhatsApp.Text
	}
	return channel.PlainText(msg)
}

// validateBaseURL checks a configured endpoint early, so a typo shows up when
// the provider is configured rather than as a failed delivery.
func validateBaseURL(field, raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%s %q is not a URL: %v", field, raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%s %q must start with http:// or https://", field, raw)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%s %q has no host", field, raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%s %q must not have a query or fragment", field, raw)
	}
	return strings.TrimRight(raw, "/"), nil
}

// apiHeader returns the headers every request to a WhatsApp API carries,
// with the given Content-Type.
func apiHeader(contentType string) http.Header {
	return http.Header{
		"User-Agent":   {userAgent},
		"Accept":       {"application/json"},
		"Content-Type": {contentType},
	}
}

// exchange POSTs one request to a provider API and returns the body of its
// 2xx JSON answer. A transport failure comes back classified by
// channel.PostHTTP, an error status as classify makes of it, and a 2xx
// answer that is not JSON as unexpectedSuccess.
func exchange(ctx context.Context, client *http.Client, provider, endpoint string, header http.Header, body []byte,
	classify func(*channel.HTTPResponse) error) ([]byte, error) {
	resp, err := channel.PostHTTP(ctx, client, provider, endpoint, header, body)
	if err != nil {
		return nil, err
	}
	if !resp.OK() {
		return nil, classify(resp)
	}
	if !isJSON(resp) {
		return nil, unexpectedSuccess(provider, resp)
	}
	return resp.Body, nil
}

// failure is one error response of a provider API, from which the classify
// functions build their errors: the status, advice on what to do about it
// and a reference for the provider's support. Neither the body nor the
// provider's free-text message is repeated: errors end up in status and
// Events, and a receiver's answer must not (docs/security.md); the
// provider's error code is in code.
type failure struct {
	// code becomes the channel.Error's Code, for example "meta 131047".
	code string
	// said names the provider and the status, for example
	// "whatsapp cloud: HTTP 400".
	said string
	// ref is quoted after the advice, for example "fbtrace_id A1b2".
	ref string
}

// err describes the failure, with advice when it is not empty.
func (f failure) err(advice string) error {
	var b strings.Builder
	b.WriteString(f.said)
	if advice != "" {
		fmt.Fprintf(&b, ". %s", advice)
	}
	if f.ref != "" {
		fmt.Fprintf(&b, " (%s)", f.ref)
	}
	return errors.New(b.String())
}

// token keeps a provider's reference (a trace id, a documentation link)
// only when it is short and made of URL-safe characters, so that a receiver
// cannot put text of its choosing into status through it.
func token(s string) string {
	if len(s) > 100 {
		return "(omitted)"
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./:", c)) {
			return "(omitted)"
		}
	}
	return s
}

// providerFault is a Permanent error that marks the provider's
// configuration or account, not the message, as the problem.
func (f failure) providerFault(advice string) *channel.Error {
	e := channel.NewPermanent(f.code, f.err(advice))
	e.Scope = channel.ScopeProvider
	return e
}

// recipientFault is a Permanent error that marks this recipient's number
// (not on WhatsApp, opted out, outside its 24-hour window, not allowed by
// the account) as the problem: it ends this delivery and opens no circuit.
func (f failure) recipientFault(advice string) *channel.Error {
	e := channel.NewPermanent(f.code, f.err(advice))
	e.Scope = channel.ScopeRecipient
	return e
}

// isJSON reports whether the response claims to be (and is) JSON. A 2xx
// answer that is not JSON almost always means BaseURL points at something
// other than the provider (a proxy login page, a dashboard), which no retry
// fixes.
func isJSON(r *channel.HTTPResponse) bool {
	ct := r.Header.Get("Content-Type")
	if ct != "" && !strings.Contains(strings.ToLower(ct), "json") {
		return false
	}
	return json.Valid(bytes.TrimSpace(r.Body))
}

// unexpectedSuccess classifies a 2xx answer that is not the provider's
// documented success document.
func unexpectedSuccess(provider string, r *channel.HTTPResponse) error {
	e := channel.NewPermanent(fmt.Sprintf("http %d", r.Status),
		fmt.Errorf("%s: HTTP %d response is not the documented JSON (is the base URL right?)", provider, r.Status))
	e.Scope = channel.ScopeProvider
	return e
}

// retryAfter reads the Retry-After header of r.
func retryAfter(r *channel.HTTPResponse) time.Duration {
	return r.RetryAfter(time.Now())
}

// byStatus classifies an error response whose body named no code we know
// from the HTTP status alone, the same way for every HTTP channel.
func byStatus(code string, r *channel.HTTPResponse, err error) *channel.Error {
	return channel.ClassifyHTTPStatus(r.Status, r.Header, time.Now(), code, err)
}

// unrecognised classifies an error response that is not the provider's
// error document (a proxy's error page, say) from its status alone.
func unrecognised(provider string, r *channel.HTTPResponse) *channel.Error {
	return byStatus(fmt.Sprintf("http %d", r.Status), r, fmt.Errorf("%s: HTTP %d %s", provider, r.Status, http.StatusText(r.Status)))
}
