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
// The package whatsapptest holds fake servers that speak each provider's
// wire format, for tests and for a local development sink.
package whatsapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
)

// API names as they appear in a NotificationProvider's `api:` field.
const (
	APICloud  = "cloud"
	APITwilio = "twilio"
	APIWAHA   = "waha"
)

// defaultTimeout bounds a request when the caller's context has no deadline
// and no HTTPClient was configured: a provider that never answers must not
// hold a delivery worker forever.
const defaultTimeout = 30 * time.Second

// maxResponseBody caps how much of a response is read. Provider responses are
// small JSON documents; anything larger is not something we need to parse.
const maxResponseBody = 1 << 20

// snippetLen is how much of a response body goes into an error message: enough
// to recognise the provider's complaint, short enough for a status field.
const snippetLen = 200

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
	region := strings.ToUpper(strings.TrimSpace(defaultRegion))
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
	return phonenumbers.Format(num, phonenumbers.E164), nil
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
	title, body := strings.TrimSpace(msg.Title), strings.TrimSpace(msg.Body)
	switch {
	case title == "":
		return body
	case body == "":
		return title
	}
	return title + "\n\n" + body
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

func httpClientOrDefault(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	return &http.Client{Timeout: defaultTimeout}
}

// response is what a sender needs from an HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

// post sends one request and reads the (bounded) response. A transport
// failure comes back already classified: Timeout when the deadline ran out,
// Transient otherwise. The body is always drained and closed so the
// connection can be reused.
func post(ctx context.Context, client *http.Client, provider, endpoint string, body io.Reader, setHeaders func(http.Header)) (*response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, body)
	if err != nil {
		// Only a malformed endpoint gets here, and New validated it.
		return nil, channel.NewPermanent("", fmt.Errorf("%s: building request: %w", provider, err))
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "application/json")
	setHeaders(req.Header)

	resp, err := client.Do(req)
	if err != nil {
		return nil, transportError(ctx, provider, err)
	}
	defer func() {
		// Drain a bounded amount so keep-alive can reuse the connection, then
		// close; a huge unexpected body is cut off rather than read.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return nil, transportError(ctx, provider, fmt.Errorf("reading response (HTTP %d): %w", resp.StatusCode, err))
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// transportError classifies a failure to get a complete answer. The provider
// may still have accepted the message, but none of these APIs offers an
// idempotency key, so a retry (with the small risk of a duplicate) is better
// than silently dropping a notification.
func transportError(ctx context.Context, provider string, err error) error {
	wrapped := fmt.Errorf("%s: %w", provider, err)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &channel.Error{Reason: notifyv1.ReasonTimeout, Err: wrapped}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		// http.Client.Timeout and dial/TLS timeouts.
		return &channel.Error{Reason: notifyv1.ReasonTimeout, Err: wrapped}
	}
	return channel.NewTransient("", wrapped)
}

// snippet returns the start of a response body for an error message, on one
// line and cut at a rune boundary.
func snippet(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) <= snippetLen {
		return s
	}
	cut := snippetLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// isJSON reports whether the response claims to be (and is) JSON. A 2xx
// answer that is not JSON almost always means BaseURL points at something
// other than the provider (a proxy login page, a dashboard), which no retry
// fixes.
func isJSON(r *response) bool {
	ct := r.header.Get("Content-Type")
	if ct != "" && !strings.Contains(strings.ToLower(ct), "json") {
		return false
	}
	return json.Valid(bytes.TrimSpace(r.body))
}

// unexpectedSuccess classifies a 2xx answer that is not the provider's
// documented success document.
func unexpectedSuccess(provider string, r *response) error {
	e := channel.NewPermanent(fmt.Sprintf("http %d", r.status),
		fmt.Errorf("%s: HTTP %d response is not the documented JSON (is the base URL right?): %s", provider, r.status, snippet(r.body)))
	e.ProviderFault = true
	return e
}

// retryAfter reads the Retry-After header of r.
func retryAfter(r *response) time.Duration {
	return channel.ParseRetryAfter(r.header.Get("Retry-After"), time.Now())
}

// fallbackByStatus classifies an error response whose body named no code we
// know, from the HTTP status alone.
func fallbackByStatus(code string, r *response, err error) *channel.Error {
	switch {
	case r.status == http.StatusTooManyRequests:
		return channel.NewRateLimited(code, retryAfter(r), err)
	case r.status == http.StatusUnauthorized || r.status == http.StatusForbidden:
		e := channel.NewPermanent(code, err)
		e.ProviderFault = true
		return e
	case r.status == http.StatusRequestTimeout:
		return &channel.Error{Reason: notifyv1.ReasonTimeout, Code: code, Err: err}
	case r.status >= 500:
		e := channel.NewTransient(code, err)
		e.RetryAfter = retryAfter(r)
		return e
	}
	return channel.NewPermanent(code, err)
}
