// Package webhook delivers messages by POSTing JSON to an HTTP endpoint,
// either one configured for the provider or the recipient's own.
//
// Every request carries an Idempotency-Key equal to the message ID, which
// stays the same across attempts, so receivers can safely drop duplicates
// caused by retries after lost responses.
//
// # Signatures
//
// When the Sender has a secret, every request carries X-Herald-Timestamp
// and X-Herald-Signature: v2=<hex HMAC-SHA256>, computed by
// github.com/herald-dev/herald/pkg/webhook over the timestamp, the
// delivery, the attempt, the Idempotency-Key and the exact body. The
// Sender signs the header values it sends, so what it signs is what the
// receiver reads. Receivers verify with that package's Verify (or
// reimplement the documented scheme). Each attempt is signed afresh, so
// retries of an old delivery still verify; the Idempotency-Key, which the
// signature binds to the request, lets receivers drop duplicates.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/herald-dev/herald/internal/channel"
	hook "github.com/herald-dev/herald/pkg/webhook"
)

// Header names the Sender sets. They are reserved: Config.Headers may not
// override them, so a misconfiguration cannot break de-duplication or
// signatures.
const (
	IdempotencyKeyHeader = hook.IdempotencyKeyHeader
	DeliveryHeader       = hook.DeliveryHeader
	AttemptHeader        = hook.AttemptHeader
	SignatureHeader      = hook.SignatureHeader
	TimestampHeader      = hook.TimestampHeader
	// MessageIDHeader is read from the response as the provider message ID.
	MessageIDHeader = "X-Message-Id"

	// UserAgent identifies Herald to receivers, unless Config.Headers sets
	// its own User-Agent.
	UserAgent = "herald-webhook/1"
)

// reservedHeaders may not appear in Config.Headers: they are owned by the
// protocol (signature, idempotency) or by the HTTP client itself.
var reservedHeaders = map[string]bool{
	IdempotencyKeyHeader: true,
	DeliveryHeader:       true,
	AttemptHeader:        true,
	SignatureHeader:      true,
	TimestampHeader:      true,
	"Host":               true,
	"Content-Length":     true,
	"Transfer-Encoding":  true,
	"Connection":         true,
}

// Config configures a Sender.
type Config struct {
	// URL is the endpoint to POST to. When empty, each message goes to its
	// recipient's WebhookURL instead.
	URL string
	// Secret is the HMAC key used to sign requests. Optional; without it
	// requests carry no signature headers.
	Secret []byte
	// Headers are added to every request, for example an Authorization
	// token. They may set Content-Type and User-Agent but not the headers
	// the Sender owns (see reservedHeaders).
	Headers map[string]string
	// SecretHeaders are added like Headers, but hold credentials (values
	// read from Secrets): they need URL, are sent only to it, never to a
	// recipient's WebhookURL, and their values never appear in errors. A
	// name may not be in both Headers and SecretHeaders.
	SecretHeaders map[string]string
	// Client sends the requests. Nil means channel.HTTPClient(), shared by
	// every HTTP channel, which does not follow redirects and has bounded
	// dial and TLS handshake times.
	Client *http.Client
}

// Sender is a channel.Sender for webhooks. It is safe for concurrent use.
type Sender struct {
	url     string
	secret  []byte
	headers http.Header
	client  *http.Client
	now     func() time.Time
}

var _ channel.Sender = (*Sender)(nil)

// New validates cfg and returns a Sender.
func New(cfg Config) (*Sender, error) {
	if cfg.URL != "" {
		if _, err := parseEndpoint(cfg.URL); err != nil {
			return nil, fmt.Errorf("webhook: url: %w", err)
		}
	}
	if len(cfg.SecretHeaders) > 0 && cfg.URL == "" {
		return nil, errors.New("webhook: header values from Secrets need the provider's url; they are never sent to recipients' webhook URLs")
	}
	headers := make(http.Header, len(cfg.Headers)+len(cfg.SecretHeaders))
	add := func(name, value string) error {
		if !validHeaderName(name) {
			return fmt.Errorf("webhook: header name %q is not a valid HTTP token", name)
		}
		canon := http.CanonicalHeaderKey(name)
		if reservedHeaders[canon] {
			return fmt.Errorf("webhook: header %q is set by the sender and cannot be configured", canon)
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			return fmt.Errorf("webhook: header %q value contains a line break or NUL", canon)
		}
		if _, dup := headers[canon]; dup {
			return fmt.Errorf("webhook: header %q is set both in headers and from a Secret", canon)
		}
		headers.Set(canon, value)
		return nil
	}
	for name, value := range cfg.Headers {
		if err := add(name, value); err != nil {
			return nil, err
		}
	}
	for name, value := range cfg.SecretHeaders {
		if err := add(name, value); err != nil {
			return nil, err
		}
	}
	client := cfg.Client
	if client == nil {
		client = channel.HTTPClient()
	}
	return &Sender{
		url:     cfg.URL,
		secret:  bytes.Clone(cfg.Secret),
		headers: headers,
		client:  client,
		now:     time.Now,
	}, nil
}

// parseEndpoint accepts only absolute http and https URLs with a host.
func parseEndpoint(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, which may embed a token.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("not a valid URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("scheme must be http or https, got %q", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("URL must be absolute with a host")
	}
	return u, nil
}

// redact reduces a URL to scheme and host for error messages. Webhook URLs
// often carry a secret token in their path or query (Slack, Teams, ...),
// and errors end up in object status that many people can read.
func redact(u *url.URL) string {
	return u.Scheme + "://" + u.Host
}

// Send POSTs msg and classifies the outcome.
func (s *Sender) Send(ctx context.Context, msg *channel.Message) (channel.Result, error) {
	raw := s.url
	if raw == "" {
		raw = msg.Recipient.WebhookURL
	}
	if raw == "" {
		return channel.Result{}, channel.NewInvalidAddress(errors.New("no webhook URL configured for the provider or the recipient"))
	}
	endpoint, err := parseEndpoint(raw)
	if err != nil {
		// Only a recipient URL can be bad here; New checked the provider's.
		return channel.Result{}, channel.NewInvalidAddress(fmt.Errorf("recipient webhook URL: %w", err))
	}

	body := msg.WebhookPayload
	if body == nil {
		body, err = json.Marshal(NewPayload(msg))
		if err != nil {
			return channel.Result{}, channel.NewPermanent("encode", fmt.Errorf("encoding webhook payload: %w", err))
		}
	}

	header := make(http.Header, len(s.headers)+8)
	s.setHeaders(header, msg, body)
	label := "POST " + redact(endpoint)
	resp, err := channel.PostHTTP(ctx, s.client, label, endpoint.String(), header, body)
	if err != nil {
		return channel.Result{}, err
	}
	if resp.OK() {
		return channel.Result{ProviderMessageID: resp.Header.Get(MessageIDHeader)}, nil
	}
	// The receiver's body is not repeated: errors end up in status and
	// Events, and what an endpoint answers must not (docs/security.md).
	text := fmt.Sprintf("%s: %d %s", label, resp.Status, http.StatusText(resp.Status))
	code := "http " + strconv.Itoa(resp.Status)
	ce := channel.ClassifyHTTPStatus(resp.Status, resp.Header, s.now(), code, errors.New(text))
	if s.url == "" {
		// The endpoint is the recipient's own webhookURL: whatever it
		// answers, a 401 or 403 included, concerns this recipient only.
		// The provider's configuration (signing secret, headers) is the
		// same for every recipient, and the others' endpoints accept it.
		ce.Scope = channel.ScopeRecipient
	}
	return channel.Result{}, ce
}

func (s *Sender) setHeaders(h http.Header, msg *channel.Message, body []byte) {
	for name, values := range s.headers {
		h[name] = append([]string(nil), values...)
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	if h.Get("User-Agent") == "" {
		h.Set("User-Agent", UserAgent)
	}
	if msg.ID != "" {
		h.Set(IdempotencyKeyHeader, msg.ID)
	}
	if msg.Delivery != "" {
		h.Set(DeliveryHeader, msg.Namespace+"/"+msg.Delivery)
	}
	attempt := msg.Attempt
	if attempt < 1 {
		attempt = 1
	}
	h.Set(AttemptHeader, strconv.Itoa(attempt))
	if len(s.secret) > 0 {
		ts := s.now().Unix()
		h.Set(TimestampHeader, strconv.FormatInt(ts, 10))
		h.Set(SignatureHeader, hook.Sign(s.secret, hook.FieldsFromHeader(h), body))
	}
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
