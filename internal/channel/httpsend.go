package channel

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel/egress"
)

// This file holds what every HTTP-based channel (webhook, the WhatsApp
// APIs) does the same way: one shared client, posting with the attempt's
// context, reading a bounded answer, and classifying transport failures and
// response statuses. Provider-specific error bodies are parsed by the
// channel packages on top of ClassifyHTTPStatus.

const (
	// MaxResponseBody bounds how much of a response PostHTTP reads.
	// Provider answers are small JSON documents; a larger body is nothing a
	// sender needs to parse.
	MaxResponseBody = 1 << 20
	// drainLimit bounds how much of an unread body is discarded so the
	// connection can be reused; beyond it closing is cheaper than reading.
	drainLimit = 64 << 10
)

// BaseURL returns raw, or def when raw is empty, without surrounding spaces
// and trailing slashes, after checking that it is an http or https URL with
// a host and no query or fragment: the shape of an API's base address to
// which a sender appends paths. The error quotes raw and says what is
// wrong, for a provider's Ready condition.
func BaseURL(raw, def string) (string, error) {
	base := strings.TrimRight(strings.TrimSpace(cmp.Or(raw, def)), "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q must be an http or https URL without query or fragment", raw)
	}
	return base, nil
}

// HTTPClient returns the client HTTP channels use when they are configured
// with none. It is shared so that all senders share one connection pool. It
// does not follow redirects: Go's client would turn a 301/302 POST into a
// GET and carry signature, idempotency and credential headers to wherever
// the answer points; an endpoint that moved should be reconfigured. Dial,
// TLS handshake and response headers have bounded times, and a total
// timeout backs up callers without a deadline (the delivery reconciler's
// attempt timeout normally ends a request much earlier).
//
// HTTPClient itself applies no egress policy; senders built by the
// factory use NewHTTPClient with the controller's policy.
func HTTPClient() *http.Client { return sharedClient() }

var sharedClient = sync.OnceValue(func() *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return newHTTPClient(dialer.DialContext, http.ProxyFromEnvironment)
})

// NewHTTPClient returns a client like HTTPClient's whose connections are
// dialled under the egress policy: every address is checked after DNS
// resolution, when the socket is about to connect. It uses no proxy, so
// the address checked is the receiver's own. Build one per policy and
// share it, for its connection pool.
func NewHTTPClient(p *egress.Policy) *http.Client {
	d := &egress.Dialer{Policy: p, Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return newHTTPClient(d.DialContext, nil)
}

func newHTTPClient(dial func(context.Context, string, string) (net.Conn, error), proxy func(*http.Request) (*url.URL, error)) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 proxy,
			DialContext:           dial,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   10,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       2 * time.Minute,
	}
}

// HTTPResponse is an answer read by PostHTTP.
type HTTPResponse struct {
	Status int
	Header http.Header
	// Body is at most MaxResponseBody bytes of the response body.
	Body []byte
}

// OK reports whether the status is 2xx.
func (r *HTTPResponse) OK() bool { return r.Status >= 200 && r.Status < 300 }

// RetryAfter is the wait the response's Retry-After header asks for, zero
// when it has none.
func (r *HTTPResponse) RetryAfter(now time.Time) time.Duration {
	return ParseRetryAfter(r.Header.Get("Retry-After"), now)
}

// PostHTTP POSTs body to rawURL with header, bounded by ctx, and reads the
// answer. label names the endpoint in error messages (for example
// "whatsapp cloud" or "POST https://hooks.example.com"); the URL itself is
// never repeated, because URLs often carry tokens and errors end up in
// object status. A failure to get an answer comes back classified by
// TransportError. Whatever the outcome, the body is drained (up to a bound)
// and closed so the connection can be reused.
func PostHTTP(ctx context.Context, client *http.Client, label, rawURL string, header http.Header, body []byte) (*HTTPResponse, error) {
	if client == nil {
		client = HTTPClient()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		// Senders validate their endpoints up front, so this is a bug or
		// a malformed recipient URL; neither improves with retries.
		return nil, NewPermanent("request", fmt.Errorf("%s: building request: %w", label, withoutURL(err)))
	}
	for name, values := range header {
		req.Header[name] = append([]string(nil), values...)
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, egress.ErrNotAllowed) {
			return nil, NewDestinationNotAllowed(fmt.Errorf("%s: %w", label, withoutURL(err)))
		}
		return nil, TransportError(ctx, label, err)
	}
	defer func() {
		_, _ = io.CopyN(io.Discard, resp.Body, drainLimit)
		_ = resp.Body.Close()
	}()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody))
	if err != nil {
		return nil, TransportError(ctx, label, fmt.Errorf("reading response (HTTP %d): %w", resp.StatusCode, err))
	}
	return &HTTPResponse{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// TransportError classifies a failure to get a complete HTTP answer: Timeout
// when the deadline ran out or the transport timed out (dial, TLS
// handshake, response headers, client timeout), Transient otherwise
// (refused, reset, DNS failure, cancellation): endpoints restart, DNS
// recovers, and a cancelled attempt never reached a verdict. The receiver
// may still have accepted the message, so a retry risks a duplicate; that
// is better than silently dropping a notification. The error keeps its
// cause for errors.Is and errors.As, but not the URL.
func TransportError(ctx context.Context, label string, err error) *Error {
	err = withoutURL(err)
	wrapped := fmt.Errorf("%s: %w", label, err)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		if !errors.Is(wrapped, context.DeadlineExceeded) {
			wrapped = fmt.Errorf("%w (%w)", wrapped, context.DeadlineExceeded)
		}
		return &Error{Reason: notifyv1.ReasonTimeout, Code: "timeout", Err: wrapped}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &Error{Reason: notifyv1.ReasonTimeout, Code: "timeout", Err: wrapped}
	}
	return NewTransient("network", wrapped)
}

// withoutURL replaces a *url.Error, whose message contains the whole URL,
// with its cause.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// ClassifyHTTPStatus classifies an HTTP answer by its status alone, for
// responses whose body names no provider error code the sender knows:
//
//   - 2xx: no error (nil).
//   - 429 Too Many Requests: RateLimited, after Retry-After when given.
//   - 408 Request Timeout, 425 Too Early and 5xx: Transient, honouring
//     Retry-After (503 often carries one). The receiver gave up on this
//     request, not on the message; the next attempt may well succeed.
//   - 401 Unauthorized, 403 Forbidden: Permanent with ScopeProvider. The
//     receiver refuses the provider's credentials, which no retry of this
//     message changes; another provider might succeed. A caller that
//     posted to an endpoint of the recipient's own (a webhook recipient's
//     webhookURL) rescopes it to the recipient: see webhook.Sender.
//   - anything else (other 4xx, and 3xx, which only arrive because
//     redirects are not followed): Permanent. The receiver rejected the
//     request as such.
//
// code and err become the Error's Code and Err; now reads an HTTP-date
// Retry-After.
func ClassifyHTTPStatus(status int, header http.Header, now time.Time, code string, err error) *Error {
	retryAfter := ParseRetryAfter(header.Get("Retry-After"), now)
	switch {
	case status >= 200 && status < 300:
		return nil
	case status == http.StatusTooManyRequests:
		return NewRateLimited(code, retryAfter, err)
	case status == http.StatusRequestTimeout, status == http.StatusTooEarly, status >= 500:
		e := NewTransient(code, err)
		e.RetryAfter = retryAfter
		return e
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		e := NewPermanent(code, err)
		e.Scope = ScopeProvider
		return e
	}
	return NewPermanent(code, err)
}
