package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	hook "github.com/herald-dev/herald/pkg/webhook"
)

// captured is what a test server saw of one request.
type captured struct {
	method string
	path   string
	header http.Header
	body   []byte
}

// recorder starts a server that records each request and answers with
// respond (200 when nil).
func recorder(t *testing.T, respond func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, <-chan captured) {
	t.Helper()
	reqs := make(chan captured, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("server: reading body: %v", err)
		}
		reqs <- captured{method: r.Method, path: r.URL.RequestURI(), header: r.Header.Clone(), body: body}
		if respond != nil {
			respond(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, reqs
}

func testMessage() *channel.Message {
	return &channel.Message{
		ID:           "5f0c6c8e-1d1b-4c43-9d7b-3a9f0b7c1e11",
		Namespace:    "team-a",
		Delivery:     "deploy-approval-alice-webhook",
		Notification: "deploy-approval",
		Attempt:      1,
		Type:         "approval",
		Category:     "deployments",
		Title:        "Approve deploy",
		Body:         "Deploy v1.2.3 to prod?",
		Actions:      []channel.Action{{ID: "approve", Label: "Approve"}, {ID: "reject", Label: "Reject"}},
		Recipient: channel.Recipient{
			Name: "alice", Username: "alice", DisplayName: "Alice A.", Email: "alice@example.com",
			Phone: "+4915112345678",
		},
		CreatedAt: time.Date(2026, 11, 29, 12, 0, 0, 0, time.FixedZone("CET", 3600)),
	}
}

func mustNew(t *testing.T, cfg Config) *Sender {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func asChannelError(t *testing.T, err error) *channel.Error {
	t.Helper()
	if err == nil {
		t.Fatal("Send succeeded, want an error")
	}
	var ce *channel.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *channel.Error", err, err)
	}
	return ce
}

func TestSendSuccess(t *testing.T) {
	srv, reqs := recorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Message-Id", "rcv-42")
		w.WriteHeader(http.StatusAccepted)
	})
	s := mustNew(t, Config{URL: srv.URL + "/hooks/herald?team=a", Headers: map[string]string{"authorization": "Bearer t0ken"}})

	res, err := s.Send(t.Context(), testMessage())
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if res.ProviderMessageID != "rcv-42" {
		t.Errorf("ProviderMessageID = %q, want rcv-42", res.ProviderMessageID)
	}

	got := <-reqs
	if got.method != http.MethodPost || got.path != "/hooks/herald?team=a" {
		t.Errorf("request = %s %s, want POST /hooks/herald?team=a", got.method, got.path)
	}
	wantHeaders := map[string]string{
		"Content-Type":      "application/json",
		"User-Agent":        UserAgent,
		"Idempotency-Key":   "5f0c6c8e-1d1b-4c43-9d7b-3a9f0b7c1e11",
		"X-Herald-Delivery": "team-a/deploy-approval-alice-webhook",
		"X-Herald-Attempt":  "1",
		"Authorization":     "Bearer t0ken",
	}
	for name, want := range wantHeaders {
		if v := got.header.Values(name); len(v) != 1 || v[0] != want {
			t.Errorf("header %s = %q, want [%q]", name, v, want)
		}
	}
	for _, name := range []string{SignatureHeader, TimestampHeader} {
		if v := got.header.Get(name); v != "" {
			t.Errorf("header %s = %q without a secret, want none", name, v)
		}
	}

	var p Payload
	dec := json.NewDecoder(strings.NewReader(string(got.body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("decoding body %s: %v", got.body, err)
	}
	want := Payload{
		ID:           "5f0c6c8e-1d1b-4c43-9d7b-3a9f0b7c1e11",
		Namespace:    "team-a",
		Notification: "deploy-approval",
		Delivery:     "deploy-approval-alice-webhook",
		Attempt:      1,
		Type:         "approval",
		Category:     "deployments",
		Title:        "Approve deploy",
		Message:      "Deploy v1.2.3 to prod?",
		Actions:      []PayloadAction{{ID: "approve", Label: "Approve"}, {ID: "reject", Label: "Reject"}},
		Recipient:    PayloadRecipient{Name: "alice", Username: "alice", DisplayName: "Alice A.", Email: "alice@example.com"},
		CreatedAt:    time.Date(2026, 11, 29, 11, 0, 0, 0, time.UTC),
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("payload = %+v\nwant      %+v", p, want)
	}
	if strings.Contains(string(got.body), "+4915112345678") {
		t.Errorf("payload leaks the recipient's phone number: %s", got.body)
	}
	if !strings.Contains(string(got.body), `"createdAt":"2026-11-29T11:00:00Z"`) {
		t.Errorf("createdAt not in UTC RFC 3339: %s", got.body)
	}
}

func TestPayloadOmitsEmptyFields(t *testing.T) {
	srv, reqs := recorder(t, nil)
	s := mustNew(t, Config{URL: srv.URL})
	if _, err := s.Send(t.Context(), &channel.Message{ID: "x"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := <-reqs
	if want := `{"id":"x","message":""}`; string(got.body) != want {
		t.Errorf("body = %s, want %s", got.body, want)
	}
	// Without a delivery name there is nothing to correlate with; a
	// header like "/" would only mislead.
	if v := got.header.Get(DeliveryHeader); v != "" {
		t.Errorf("header %s = %q, want none", DeliveryHeader, v)
	}
	if v := got.header.Get(AttemptHeader); v != "1" {
		t.Errorf("attempt 0 sent as %q, want 1", v)
	}
}

// sendSigned sends the test message with a signing secret at a fixed
// time and returns the request as the receiver got it.
func sendSigned(t *testing.T) (got captured, secret []byte, signedAt time.Time) {
	t.Helper()
	srv, reqs := recorder(t, nil)
	secret = []byte("s3cr3t")
	s := mustNew(t, Config{URL: srv.URL, Secret: secret})
	signedAt = time.Unix(1_800_000_000, 0)
	s.now = func() time.Time { return signedAt }
	if _, err := s.Send(t.Context(), testMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	return <-reqs, secret, signedAt
}

func TestSignature(t *testing.T) {
	got, secret, signedAt := sendSigned(t)
	ts, sig := got.header.Get(TimestampHeader), got.header.Get(SignatureHeader)
	if ts != "1800000000" {
		t.Errorf("%s = %q, want 1800000000", TimestampHeader, ts)
	}
	if !strings.HasPrefix(sig, "v2=") || len(sig) != len("v2=")+64 {
		t.Errorf("%s = %q, want v2=<64 hex>", SignatureHeader, sig)
	}

	cases := []struct {
		name    string
		secret  []byte
		ts, sig string
		body    []byte
		now     time.Time
		want    error
	}{
		{"valid", secret, ts, sig, got.body, signedAt.Add(time.Minute), nil},
		{"valid slightly in future", secret, ts, sig, got.body, signedAt.Add(-time.Minute), nil},
		{"wrong secret", []byte("other"), ts, sig, got.body, signedAt, hook.ErrSignatureMismatch},
		{"tampered body", secret, ts, sig, append(bytes.Clone(got.body), ' '), signedAt, hook.ErrSignatureMismatch},
		{"timestamp swapped", secret, "1800000001", sig, got.body, signedAt, hook.ErrSignatureMismatch},
		{"old timestamp (replay)", secret, ts, sig, got.body, signedAt.Add(6 * time.Minute), hook.ErrTimestampExpired},
		{"future timestamp", secret, ts, sig, got.body, signedAt.Add(-6 * time.Minute), hook.ErrTimestampExpired},
		{"no secret", nil, ts, sig, got.body, signedAt, hook.ErrNoSecret},
		{"missing prefix", secret, ts, strings.TrimPrefix(sig, "v2="), got.body, signedAt, hook.ErrMalformed},
		{"not hex", secret, ts, "v2=zz", got.body, signedAt, hook.ErrMalformed},
		{"short digest", secret, ts, sig[:20], got.body, signedAt, hook.ErrMalformed},
		{"bad timestamp", secret, "yesterday", sig, got.body, signedAt, hook.ErrMalformed},
		{"empty headers", secret, "", "", got.body, signedAt, hook.ErrMalformed},
		{"absurd timestamp", secret, "-9223372036854775808", sig, got.body, signedAt, hook.ErrTimestampExpired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := hook.FieldsFromHeader(got.header)
			f.Timestamp = c.ts
			err := hook.VerifySignature(c.secret, f, c.sig, c.body, c.now, 5*time.Minute)
			if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
				t.Errorf("Verify = %v, want %v", err, c.want)
			}
		})
	}

	// A non-positive tolerance falls back to hook.DefaultTolerance instead of
	// rejecting everything or accepting everything.
	fields := hook.FieldsFromHeader(got.header)
	if err := hook.VerifySignature(secret, fields, sig, got.body, signedAt.Add(hook.DefaultTolerance-time.Second), 0); err != nil {
		t.Errorf("Verify with default tolerance inside window = %v", err)
	}
	if err := hook.VerifySignature(secret, fields, sig, got.body, signedAt.Add(hook.DefaultTolerance+time.Second), 0); !errors.Is(err, hook.ErrTimestampExpired) {
		t.Errorf("Verify with default tolerance outside window = %v", err)
	}
	if want := hook.Sign(secret, hook.Fields{Timestamp: "1800000000", Delivery: "team-a/deploy-approval-alice-webhook", Attempt: "1", IdempotencyKey: testMessage().ID}, got.body); sig != want {
		t.Errorf("signature %q != Sign() %q", sig, want)
	}
}

func TestIdempotencyKeyStableAcrossAttempts(t *testing.T) {
	srv, reqs := recorder(t, nil)
	s := mustNew(t, Config{URL: srv.URL, Secret: []byte("k")})
	msg := testMessage()
	for attempt := 1; attempt <= 2; attempt++ {
		msg.Attempt = attempt
		if _, err := s.Send(t.Context(), msg); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
	}
	first, second := <-reqs, <-reqs
	k1, k2 := first.header.Get(IdempotencyKeyHeader), second.header.Get(IdempotencyKeyHeader)
	if k1 == "" || k1 != k2 || k1 != msg.ID {
		t.Errorf("Idempotency-Key %q then %q, want %q both times", k1, k2, msg.ID)
	}
	if a1, a2 := first.header.Get(AttemptHeader), second.header.Get(AttemptHeader); a1 != "1" || a2 != "2" {
		t.Errorf("X-Herald-Attempt %q then %q, want 1 then 2", a1, a2)
	}
}

func TestStatusClassification(t *testing.T) {
	long := strings.Repeat("x", 1000)
	cases := []struct {
		name          string
		status        int
		retryAfter    string
		body          string
		reason        notifyv1.FailureReason
		code          string
		wantAfter     time.Duration
		providerFault bool
		snippet       string
	}{
		{"503", 503, "", "upstream down", notifyv1.ReasonTransient, "http 503", 0, false, `"upstream down"`},
		{"503 with retry-after", 503, "3", "", notifyv1.ReasonTransient, "http 503", 3 * time.Second, false, ""},
		{"500", 500, "", "", notifyv1.ReasonTransient, "http 500", 0, false, ""},
		{"502", 502, "", "", notifyv1.ReasonTransient, "http 502", 0, false, ""},
		{"408", 408, "", "", notifyv1.ReasonTransient, "http 408", 0, false, ""},
		{"425", 425, "", "", notifyv1.ReasonTransient, "http 425", 0, false, ""},
		{"429 with retry-after", 429, "7", "slow down", notifyv1.ReasonRateLimited, "http 429", 7 * time.Second, false, `"slow down"`},
		{"429 without retry-after", 429, "", "", notifyv1.ReasonRateLimited, "http 429", 0, false, ""},
		{"429 with garbage retry-after", 429, "later", "", notifyv1.ReasonRateLimited, "http 429", 0, false, ""},
		{"400", 400, "", `{"error":"bad field"}`, notifyv1.ReasonPermanent, "http 400", 0, false, `"{\"error\":\"bad field\"}"`},
		{"404", 404, "", "", notifyv1.ReasonPermanent, "http 404", 0, false, ""},
		{"410", 410, "", "", notifyv1.ReasonPermanent, "http 410", 0, false, ""},
		{"401", 401, "", "bad token", notifyv1.ReasonPermanent, "http 401", 0, true, `"bad token"`},
		{"403", 403, "", "", notifyv1.ReasonPermanent, "http 403", 0, true, ""},
		{"redirect not followed", 302, "", "", notifyv1.ReasonPermanent, "http 302", 0, false, ""},
		{"multi-line body flattened", 500, "", "line one\r\n\tline two\n", notifyv1.ReasonTransient, "http 500", 0, false, `"line one line two"`},
		{"long body truncated", 500, "", long, notifyv1.ReasonTransient, "http 500", 0, false, strconv.Quote(long[:256])},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, _ := recorder(t, func(w http.ResponseWriter, r *http.Request) {
				if c.retryAfter != "" {
					w.Header().Set("Retry-After", c.retryAfter)
				}
				if c.status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(c.status)
				_, _ = io.WriteString(w, c.body)
			})
			s := mustNew(t, Config{URL: srv.URL + "/hook/T0KEN-IN-PATH"})
			_, err := s.Send(t.Context(), testMessage())
			ce := asChannelError(t, err)
			if ce.Reason != c.reason || ce.Code != c.code || ce.RetryAfter != c.wantAfter || ce.ProviderFault() != c.providerFault {
				t.Errorf("got reason=%s code=%q retryAfter=%v providerFault=%v; want %s %q %v %v",
					ce.Reason, ce.Code, ce.RetryAfter, ce.ProviderFault(), c.reason, c.code, c.wantAfter, c.providerFault)
			}
			if want := c.reason != notifyv1.ReasonPermanent; ce.Retryable() != want {
				t.Errorf("Retryable() = %v, want %v", ce.Retryable(), want)
			}
			msg := err.Error()
			// The receiver's answer never reaches status or Events
			// (docs/security.md): the message ends with the status.
			if c.snippet != "" {
				if s, _ := strconv.Unquote(c.snippet); strings.Contains(msg, s) {
					t.Errorf("error %q repeats the body %s", msg, c.snippet)
				}
			}
			if want := fmt.Sprintf(": %d %s", c.status, http.StatusText(c.status)); !strings.HasSuffix(msg, want) {
				t.Errorf("error %q does not end with %q", msg, want)
			}
			if strings.Contains(msg, "T0KEN") {
				t.Errorf("error %q leaks the URL path", msg)
			}
		})
	}
}

func TestConnectionRefusedIsTransient(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	target := srv.URL + "/hook/T0KEN-IN-PATH"
	srv.Close()

	s := mustNew(t, Config{URL: target})
	_, err := s.Send(t.Context(), testMessage())
	ce := asChannelError(t, err)
	if ce.Reason != notifyv1.ReasonTransient || !ce.Retryable() || ce.ProviderFault() {
		t.Errorf("got %+v, want a retryable Transient error", ce)
	}
	if strings.Contains(err.Error(), "T0KEN") {
		t.Errorf("error %q leaks the URL path", err)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("error %v does not keep the network cause", err)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server only notices the client hanging up once the body has
		// been consumed, so read it before blocking.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	// Cleanups run last-in first-out: release a stuck handler before
	// Close waits for it.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	s := mustNew(t, Config{URL: srv.URL})

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := s.Send(ctx, testMessage())
	ce := asChannelError(t, err)
	if ce.Reason != notifyv1.ReasonTimeout || !ce.Retryable() {
		t.Errorf("got reason %s, want Timeout", ce.Reason)
	}
	if got := channel.Classify(err); got.Reason != notifyv1.ReasonTimeout {
		t.Errorf("Classify reason = %s, want Timeout", got.Reason)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
}

func TestCancelledIsTransient(t *testing.T) {
	srv, _ := recorder(t, nil)
	s := mustNew(t, Config{URL: srv.URL})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Send(ctx, testMessage())
	if ce := asChannelError(t, err); ce.Reason != notifyv1.ReasonTransient {
		t.Errorf("cancelled send: reason %s, want Transient", ce.Reason)
	}
}

func TestRecipientURLFallback(t *testing.T) {
	srv, reqs := recorder(t, nil)
	s := mustNew(t, Config{})
	msg := testMessage()
	msg.Recipient.WebhookURL = srv.URL + "/alice"
	if _, err := s.Send(t.Context(), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := <-reqs; got.path != "/alice" {
		t.Errorf("request went to %q, want /alice", got.path)
	}

	// The provider's URL takes precedence over the recipient's.
	provider, preqs := recorder(t, nil)
	s = mustNew(t, Config{URL: provider.URL + "/provider"})
	if _, err := s.Send(t.Context(), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := <-preqs; got.path != "/provider" {
		t.Errorf("request went to %q, want /provider", got.path)
	}
	if len(reqs) != 0 {
		t.Errorf("recipient endpoint was called although the provider has a URL")
	}
}

func TestInvalidAddress(t *testing.T) {
	s := mustNew(t, Config{})
	cases := []struct{ name, url string }{
		{"missing", ""},
		{"relative", "/hooks/x"},
		{"wrong scheme", "ftp://example.com/x"},
		{"no host", "https:///x"},
		{"unparsable", "http://exa mple.com/%zz"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := testMessage()
			msg.Recipient.WebhookURL = c.url
			_, err := s.Send(t.Context(), msg)
			ce := asChannelError(t, err)
			if ce.Reason != notifyv1.ReasonInvalidAddress || ce.Retryable() {
				t.Errorf("got %v, want InvalidAddress", err)
			}
		})
	}
}

func TestWebhookPayloadVerbatim(t *testing.T) {
	srv, reqs := recorder(t, nil)
	secret := []byte("k")
	s := mustNew(t, Config{URL: srv.URL, Secret: secret})
	msg := testMessage()
	// Deliberately not what json.Marshal would produce, to prove no
	// re-encoding happens.
	msg.WebhookPayload = []byte("{ \"text\" : \"<b>hi</b>\" ,\n \"n\":1.50 }")
	if _, err := s.Send(t.Context(), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := <-reqs
	if string(got.body) != string(msg.WebhookPayload) {
		t.Errorf("body = %q, want %q verbatim", got.body, msg.WebhookPayload)
	}
	if err := verifyRequest(secret, got.header, got.body, time.Now()); err != nil {
		t.Errorf("custom payload signature does not verify: %v", err)
	}
	if got.header.Get(IdempotencyKeyHeader) != msg.ID {
		t.Errorf("custom payload lost the Idempotency-Key")
	}
}

func TestHeaderOverrides(t *testing.T) {
	srv, reqs := recorder(t, nil)
	s := mustNew(t, Config{URL: srv.URL, Headers: map[string]string{
		"Content-Type": "application/vnd.acme+json",
		"User-Agent":   "acme-relay",
	}})
	if _, err := s.Send(t.Context(), testMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := <-reqs
	if ct := got.header.Get("Content-Type"); ct != "application/vnd.acme+json" {
		t.Errorf("Content-Type = %q, want the configured one", ct)
	}
	if ua := got.header.Get("User-Agent"); ua != "acme-relay" {
		t.Errorf("User-Agent = %q, want the configured one", ua)
	}
}

// TestSecretHeadersArrive: header values from Secrets are sent with each
// request to the provider's URL.
func TestSecretHeadersArrive(t *testing.T) {
	srv, reqs := recorder(t, nil)
	s := mustNew(t, Config{URL: srv.URL, Headers: map[string]string{"X-Team": "platform"},
		SecretHeaders: map[string]string{"authorization": "Bearer t0ken", "X-Api-Key": "k3y"}})
	if _, err := s.Send(t.Context(), testMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := <-reqs
	for name, want := range map[string]string{"Authorization": "Bearer t0ken", "X-Api-Key": "k3y", "X-Team": "platform"} {
		if v := got.header.Get(name); v != want {
			t.Errorf("%s = %q, want %q", name, v, want)
		}
	}
}

func TestNewValidation(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string // substring of the error; empty means valid
	}{
		{"empty config is valid", Config{}, ""},
		{"https", Config{URL: "https://hooks.example.com/x"}, ""},
		{"http with port", Config{URL: "http://10.0.0.1:8080/x"}, ""},
		{"relative", Config{URL: "/x"}, "scheme must be http or https"},
		{"no scheme", Config{URL: "hooks.example.com/x"}, "scheme must be http or https"},
		{"ftp", Config{URL: "ftp://example.com"}, `got "ftp"`},
		{"no host", Config{URL: "http://"}, "absolute with a host"},
		{"port only", Config{URL: "http://:80/x"}, "absolute with a host"},
		{"unparsable hides url", Config{URL: "http://example.com/%zzSECRET"}, "not a valid URL"},
		{"bad header name", Config{Headers: map[string]string{"X Bad": "v"}}, "not a valid HTTP token"},
		{"empty header name", Config{Headers: map[string]string{"": "v"}}, "not a valid HTTP token"},
		{"header injection", Config{Headers: map[string]string{"X-Ok": "v\r\nX-Evil: 1"}}, "line break"},
		{"reserved idempotency", Config{Headers: map[string]string{"idempotency-key": "v"}}, `"Idempotency-Key" is set by the sender`},
		{"reserved signature", Config{Headers: map[string]string{"X-Herald-Signature": "v"}}, "set by the sender"},
		{"reserved host", Config{Headers: map[string]string{"Host": "v"}}, "set by the sender"},
		{"secret headers", Config{URL: "https://hooks.example.com/x", SecretHeaders: map[string]string{"Authorization": "Bearer SECRET"}}, ""},
		{"secret headers without url", Config{SecretHeaders: map[string]string{"Authorization": "Bearer SECRET"}}, "need the provider's url"},
		{"secret header also in headers", Config{URL: "https://hooks.example.com/x", Headers: map[string]string{"authorization": "x"},
			SecretHeaders: map[string]string{"Authorization": "Bearer SECRET"}}, `"Authorization" is set both in headers and from a Secret`},
		{"secret header reserved", Config{URL: "https://hooks.example.com/x", SecretHeaders: map[string]string{"X-Herald-Signature": "SECRET"}}, "set by the sender"},
		{"secret header injection hides value", Config{URL: "https://hooks.example.com/x", SecretHeaders: map[string]string{"X-Token": "SECRET\r\nX-Evil: 1"}}, "line break"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := New(c.cfg)
			if c.want == "" {
				if err != nil || s == nil {
					t.Fatalf("New = %v, %v; want a Sender", s, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New error = %v, want it to contain %q", err, c.want)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error %q repeats the URL", err)
			}
		})
	}
}

func TestConfigIsCopied(t *testing.T) {
	srv, reqs := recorder(t, nil)
	secret := []byte("k1")
	headers := map[string]string{"X-Team": "a"}
	s := mustNew(t, Config{URL: srv.URL, Secret: secret, Headers: headers})
	secret[0] = 'X'
	headers["X-Team"] = "b"
	s.now = func() time.Time { return time.Unix(1000, 0) }
	if _, err := s.Send(t.Context(), testMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := <-reqs
	if got.header.Get("X-Team") != "a" {
		t.Errorf("later change to Config.Headers leaked into the Sender")
	}
	if err := verifyRequest([]byte("k1"), got.header, got.body, time.Unix(1000, 0)); err != nil {
		t.Errorf("later change to Config.Secret leaked into the Sender: %v", err)
	}
}

func TestErrorResponsesKeepConnectionReusable(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, strings.Repeat("z", 32<<10))
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	s := mustNew(t, Config{URL: srv.URL})
	for i := 0; i < 3; i++ {
		if _, err := s.Send(t.Context(), testMessage()); err == nil {
			t.Fatal("Send succeeded against a 503")
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("server saw %d connections for 3 sends, want 1 (bodies not drained?)", n)
	}
}

// verifyRequest verifies a captured request as a receiver would.
func verifyRequest(secret []byte, h http.Header, body []byte, now time.Time) error {
	return hook.VerifySignature(secret, hook.FieldsFromHeader(h), h.Get(SignatureHeader), body, now, time.Minute)
}

// A captured request replayed with another Idempotency-Key, delivery or
// attempt (so that a receiver deduplicating by key processes it again)
// must not verify: the signature covers those headers.
func TestSignatureCoversReplayHeaders(t *testing.T) {
	got, secret, signedAt := sendSigned(t)
	if err := verifyRequest(secret, got.header, got.body, signedAt); err != nil {
		t.Fatalf("the request as sent does not verify: %v", err)
	}
	for _, c := range []struct{ header, value string }{
		{IdempotencyKeyHeader, "5f0c6c8e-1d1b-4c43-9d7b-3a9f0b7c1e12"},
		{IdempotencyKeyHeader, ""},
		{DeliveryHeader, "team-a/another-delivery"},
		{AttemptHeader, "2"},
	} {
		h := got.header.Clone()
		if c.value == "" {
			h.Del(c.header)
		} else {
			h.Set(c.header, c.value)
		}
		if err := verifyRequest(secret, h, got.body, signedAt); !errors.Is(err, hook.ErrSignatureMismatch) {
			t.Errorf("replayed with %s: %q, Verify = %v, want hook.ErrSignatureMismatch", c.header, c.value, err)
		}
	}
}

// TestEndpointScope: who owns the endpoint decides whose fault its refusal
// is. A 401 or 403 from the provider's configured URL refuses the
// provider's credentials (and opens its circuit); the same answer from a
// recipient's own webhookURL concerns that recipient alone, and must not
// stop the provider for everyone else.
func TestEndpointScope(t *testing.T) {
	cases := []struct {
		status    int
		recipient channel.Scope // the recipient's own webhookURL answered
		provider  channel.Scope // the provider's configured URL answered
	}{
		{401, channel.ScopeRecipient, channel.ScopeProvider},
		{403, channel.ScopeRecipient, channel.ScopeProvider},
		{404, channel.ScopeRecipient, channel.ScopeMessage},
		{410, channel.ScopeRecipient, channel.ScopeMessage},
		{429, channel.ScopeRecipient, channel.ScopeMessage},
		{503, channel.ScopeRecipient, channel.ScopeMessage},
	}
	for _, c := range cases {
		t.Run(strconv.Itoa(c.status), func(t *testing.T) {
			srv, _ := recorder(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(c.status) })

			msg := testMessage()
			msg.Recipient.WebhookURL = srv.URL + "/mine"
			_, err := mustNew(t, Config{}).Send(t.Context(), msg)
			if ce := asChannelError(t, err); ce.Scope != c.recipient || ce.ProviderFault() {
				t.Errorf("recipient's endpoint: scope %q (ProviderFault %v), want %q", ce.Scope, ce.ProviderFault(), c.recipient)
			}

			_, err = mustNew(t, Config{URL: srv.URL + "/hook"}).Send(t.Context(), testMessage())
			if ce := asChannelError(t, err); ce.Scope != c.provider {
				t.Errorf("provider's endpoint: scope %q, want %q", ce.Scope, c.provider)
			}
		})
	}
}
