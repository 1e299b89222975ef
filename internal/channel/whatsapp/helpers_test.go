package whatsapp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/dev/providerfake"
)

// alicePhone is a valid German mobile number; aliceE164 its E.164 form.
const (
	alicePhone = "+49 151 1234 5678"
	aliceE164  = "+4915112345678"
	aliceWire  = "4915112345678"
)

func textMessage() *channel.Message {
	return &channel.Message{
		ID:        "7d1c6b8e-uid",
		Title:     "Disk almost full",
		Body:      "node-1 is at 91%",
		Recipient: channel.Recipient{Name: "alice", Phone: alicePhone},
	}
}

const wantText = "Disk almost full\n\nnode-1 is at 91%"

// classified asserts err is a *channel.Error with the given reason.
func classified(t *testing.T, err error, reason notifyv1.FailureReason) *channel.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("Send succeeded, want a %s error", reason)
	}
	var ce *channel.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *channel.Error", err, err)
	}
	if ce.Reason != reason {
		t.Fatalf("reason = %s, want %s (error: %v)", ce.Reason, reason, err)
	}
	return ce
}

// waitCtx bounds waiting for a fake: generous, because it only matters when
// the test is already failing.
func waitCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func noRejections(t *testing.T, s *providerfake.Server) {
	t.Helper()
	if r := s.Rejections(); len(r) > 0 {
		t.Fatalf("fake rejected requests as malformed: %q", r)
	}
}

// onlyMessage waits for the single message a fake should have accepted.
func onlyMessage(t *testing.T, s *providerfake.Server) providerfake.Message {
	t.Helper()
	msgs, err := s.WaitForMessages(waitCtx(t), 1)
	if err != nil {
		t.Fatalf("waiting for the message: %v", err)
	}
	if len(msgs) != 1 {
		t.Fatalf("fake accepted %d messages, want 1", len(msgs))
	}
	return msgs[0]
}

// jsonEqual compares a JSON document with the expected value.
func jsonEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("request body is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("request body\n got %s\nwant %s", got, want)
	}
}

func contains(t *testing.T, err error, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

// omits fails t if err repeats any of parts: what a receiver answers
// never reaches status or Events (docs/security.md).
func omits(t *testing.T, err error, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if strings.Contains(err.Error(), p) {
			t.Errorf("error %q repeats the receiver's answer %q", err, p)
		}
	}
}

// rawServer answers every request with a fixed response, for the cases no
// provider produces on purpose (a proxy's HTML error page, a wrong base URL).
func rawServer(t *testing.T, status int, contentType, body string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(s.Close)
	return s
}

// closedURL is the address of a server that is no longer listening.
func closedURL(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.NotFoundHandler())
	u := s.URL
	s.Close()
	return u
}

// newFake starts a provider fake that logs to the test and closes with it.
func newFake[F interface{ Close() }](t *testing.T, start func(...providerfake.Option) F) F {
	f := start(providerfake.WithLogf(t.Logf))
	t.Cleanup(f.Close)
	return f
}

// buildSender applies edits to cfg and builds a sender from it, failing the
// test if the config is refused.
func buildSender[C, S any](t *testing.T, build func(C) (S, error), cfg C, edits []func(*C)) S {
	t.Helper()
	for _, e := range edits {
		e(&cfg)
	}
	s, err := build(cfg)
	if err != nil {
		t.Fatalf("building a sender from %T: %v", cfg, err)
	}
	return s
}

// sendOne sends msg through s and checks that srv accepted it, well-formed,
// as its only message under the ID s returns. It returns s's result and the
// fake's record of the message.
func sendOne(t *testing.T, s channel.Sender, srv *providerfake.Server, msg *channel.Message) (channel.Result, providerfake.Message) {
	t.Helper()
	res, err := s.Send(t.Context(), msg)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	noRejections(t, srv)
	got := onlyMessage(t, srv)
	if res.ProviderMessageID == "" || res.ProviderMessageID != got.ID {
		t.Errorf("ProviderMessageID = %q, want the fake's %q", res.ProviderMessageID, got.ID)
	}
	return res, got
}

// sendRefused sends msg through s and checks that it fails with reason and
// mentions each of mention, without a request reaching srv.
func sendRefused(t *testing.T, s channel.Sender, srv *providerfake.Server, msg *channel.Message, reason notifyv1.FailureReason, mention ...string) {
	t.Helper()
	_, err := s.Send(t.Context(), msg)
	classified(t, err, reason)
	contains(t, err, mention...)
	if n := srv.Requests(); n != 0 {
		t.Fatalf("%d requests reached the server", n)
	}
}

// providerFault sends a text message through s and checks that it fails as
// a Permanent provider fault with the given code that mentions each of
// mention. It returns the error.
func providerFault(t *testing.T, s channel.Sender, code string, mention ...string) *channel.Error {
	t.Helper()
	_, err := s.Send(t.Context(), textMessage())
	ce := classified(t, err, notifyv1.ReasonPermanent)
	if !ce.ProviderFault() || ce.Code != code {
		t.Fatalf("got %+v, want a provider fault with code %s", ce, code)
	}
	contains(t, err, mention...)
	return ce
}

// timedOut sends a text message through s with a 200ms deadline while srv
// stalls, and checks that it fails as a Timeout. It returns the error.
func timedOut(t *testing.T, s channel.Sender, srv *providerfake.Server) error {
	t.Helper()
	srv.StallNext(1)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := s.Send(ctx, textMessage())
	classified(t, err, notifyv1.ReasonTimeout)
	return err
}

// errorCase is an error a provider fake answers with, and what the sender
// must make of it.
type errorCase struct {
	name       string
	spec       providerfake.ErrorSpec
	reason     notifyv1.FailureReason
	code       string
	retryAfter time.Duration
	fault      bool
	// recipient marks a refusal of this recipient's number: it must
	// never be taken for the provider's fault (which opens a circuit).
	recipient bool
	// mention are parts of the error message.
	mention []string
}

// checkErrors sends a text message for each case through a sender that
// start returns, whose fake answers with the case's error. Besides the
// case's own mentions, every error must mention each of always.
func checkErrors(t *testing.T, start func(*testing.T) (channel.Sender, *providerfake.Server), always []string, cases []errorCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, srv := start(t)
			srv.FailNext(1, tc.spec)
			_, err := s.Send(t.Context(), textMessage())
			ce := classified(t, err, tc.reason)
			if ce.Code != tc.code {
				t.Errorf("code = %q, want %q", ce.Code, tc.code)
			}
			if ce.RetryAfter != tc.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", ce.RetryAfter, tc.retryAfter)
			}
			if ce.ProviderFault() != tc.fault {
				t.Errorf("ProviderFault = %v, want %v", ce.ProviderFault(), tc.fault)
			}
			if ce.RecipientFault() != tc.recipient {
				t.Errorf("RecipientFault = %v (scope %q), want %v", ce.RecipientFault(), ce.Scope, tc.recipient)
			}
			contains(t, err, slices.Concat(tc.mention, always)...)
			noRejections(t, srv)
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("fake accepted %d messages", n)
			}
		})
	}
}

// configCase is an edit that makes a valid config invalid, and what the
// error must mention.
type configCase[C any] struct {
	name    string
	edit    func(*C)
	wantErr string
}

// checkValidation checks that build accepts valid and refuses each case's
// edit of it with an error that mentions the case's wantErr.
func checkValidation[C, S any](t *testing.T, build func(C) (S, error), valid C, cases []configCase[C]) {
	t.Helper()
	if _, err := build(valid); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.edit(&cfg)
			_, err := build(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("building from %T: error = %v, want one mentioning %q", cfg, err, tc.wantErr)
			}
		})
	}
}
