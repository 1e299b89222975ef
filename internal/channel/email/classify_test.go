package email

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"testing"
	"time"

	mail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
)

// Replies Mailpit cannot be made to send; the live tests cover the rest.
// The scope decides what a refusal reaches: only the provider's own set-up
// (session, AUTH, MAIL FROM) opens its circuit; any refusal at RCPT TO,
// 5.7.x policy replies included, is this recipient's alone.
func TestClassifyReply(t *testing.T) {
	const (
		prov = channel.ScopeProvider
		rcpt = channel.ScopeRecipient
		msg  = channel.ScopeMessage
	)
	for _, tc := range []struct {
		stage    stage
		code     int
		enhanced string
		reason   notifyv1.FailureReason
		scope    channel.Scope
		label    string
	}{
		{stageSession, 421, "4.3.2", notifyv1.ReasonTransient, msg, "smtp 421 4.3.2"},
		{stageSession, 454, "4.7.0", notifyv1.ReasonTransient, msg, "smtp 454 4.7.0"},
		{stageSession, 554, "5.7.1", notifyv1.ReasonPermanent, prov, "smtp 554 5.7.1"},
		{stageSession, 535, "5.7.8", notifyv1.ReasonPermanent, prov, "smtp 535 5.7.8"},
		{stageMailFrom, 451, "4.3.0", notifyv1.ReasonTransient, msg, "smtp 451 4.3.0"},
		{stageMailFrom, 550, "5.7.1", notifyv1.ReasonPermanent, prov, "smtp 550 5.7.1"},
		{stageMailFrom, 553, "5.1.8", notifyv1.ReasonPermanent, prov, "smtp 553 5.1.8"},
		{stageMailFrom, 530, "5.7.0", notifyv1.ReasonPermanent, prov, "smtp 530 5.7.0"},
		{stageRcptTo, 452, "4.2.2", notifyv1.ReasonTransient, rcpt, "smtp 452 4.2.2"},
		{stageRcptTo, 550, "5.1.1", notifyv1.ReasonPermanent, rcpt, "smtp 550 5.1.1"},
		{stageRcptTo, 552, "5.2.2", notifyv1.ReasonPermanent, rcpt, "smtp 552 5.2.2"},
		// A policy refusal of one address (relay denied for its domain,
		// a block list) was once taken for the provider's fault: it
		// opened the circuit for every other recipient.
		{stageRcptTo, 554, "5.7.1", notifyv1.ReasonPermanent, rcpt, "smtp 554 5.7.1"},
		{stageRcptTo, 550, "5.7.606", notifyv1.ReasonPermanent, rcpt, "smtp 550 5.7.606"},
		{stageRcptTo, 550, "", notifyv1.ReasonPermanent, rcpt, "smtp 550"},
		{stageRcptTo, 530, "5.7.0", notifyv1.ReasonPermanent, prov, "smtp 530 5.7.0"},
		{stageData, 554, "5.7.1", notifyv1.ReasonPermanent, msg, "smtp 554 5.7.1"},
		{stageData, 552, "5.3.4", notifyv1.ReasonPermanent, msg, "smtp 552 5.3.4"},
		{stageData, 535, "", notifyv1.ReasonPermanent, prov, "smtp 535"},
		{stageOther, 250, "", notifyv1.ReasonTransient, msg, "smtp 250"},
	} {
		t.Run(fmt.Sprintf("%d/%s", tc.stage, tc.label), func(t *testing.T) {
			ce := classifyReply(tc.stage, tc.code, tc.enhanced, errors.New("reply"))
			if ce.Reason != tc.reason || ce.Scope != tc.scope || ce.Code != tc.label {
				t.Fatalf("got %s/%q/%q, want %s/%q/%q", ce.Reason, ce.Scope, ce.Code, tc.reason, tc.scope, tc.label)
			}
			if ce.ProviderFault() != (tc.scope == prov) {
				t.Fatalf("ProviderFault() = %v for scope %q", ce.ProviderFault(), ce.Scope)
			}
		})
	}
}

// The provider's own TLS and AUTH set-up is its fault, whatever the stage.
func TestClassifyProviderSetup(t *testing.T) {
	for name, tc := range map[string]struct {
		err    error
		reason notifyv1.FailureReason
	}{
		"untrusted certificate": {fmt.Errorf("tls: %w", x509.UnknownAuthorityError{}), notifyv1.ReasonTransient},
		"wrong-name certificate": {fmt.Errorf("tls: %w", x509.HostnameError{Certificate: &x509.Certificate{}, Host: "smtp.example.com"}),
			notifyv1.ReasonTransient},
		"no AUTH mechanism":  {fmt.Errorf("auth: %w", mail.ErrNoSupportedAuthDiscovered), notifyv1.ReasonPermanent},
		"AUTH in clear text": {fmt.Errorf("auth: %w", smtp.ErrUnencrypted), notifyv1.ReasonPermanent},
	} {
		t.Run(name, func(t *testing.T) {
			ce := classify(context.Background(), tc.err)
			if ce.Reason != tc.reason || ce.Scope != channel.ScopeProvider {
				t.Fatalf("got %s/%q, want %s/%q", ce.Reason, ce.Scope, tc.reason, channel.ScopeProvider)
			}
		})
	}
	// A network failure is nobody's fault in particular.
	if ce := classify(context.Background(), errors.New("connection reset by peer")); ce.Scope != channel.ScopeMessage {
		t.Fatalf("network failure scoped %q", ce.Scope)
	}
}

func TestClassifySessionReply(t *testing.T) {
	// Session replies reach classify as a wrapped *textproto.Error.
	err := fmt.Errorf("dial failed: %w", fmt.Errorf("SMTP AUTH failed: %w", &textproto.Error{Code: 535, Msg: "5.7.8 Authentication credentials invalid"}))
	ce := classify(context.Background(), err)
	if ce.Reason != notifyv1.ReasonPermanent || !ce.ProviderFault() || ce.Code != "smtp 535 5.7.8" {
		t.Fatalf("got %+v", ce)
	}
}

func TestClassifyContext(t *testing.T) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if ce := classify(ctx, errors.New("use of closed network connection")); ce.Reason != notifyv1.ReasonTimeout || !errors.Is(ce, context.DeadlineExceeded) {
		t.Fatalf("expired deadline: got %+v", ce)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if ce := classify(ctx, errors.New("x")); ce.Reason != notifyv1.ReasonTransient || ce.Code != "canceled" {
		t.Fatalf("cancelled: got %+v", ce)
	}
}

// checkEach checks f(in) == want for each in and want of cases; call names
// the call in failures, with a %q for in.
func checkEach(t *testing.T, call string, f func(string) string, cases map[string]string) {
	t.Helper()
	for in, want := range cases {
		if got := f(in); got != want {
			t.Errorf(call+" = %q, want %q", in, got, want)
		}
	}
}

func TestEnhancedCode(t *testing.T) {
	checkEach(t, "enhancedCode(550, %q)", func(msg string) string { return enhancedCode(550, msg) }, map[string]string{
		"5.7.8 Authentication credentials invalid": "5.7.8",
		"5.1.10 Null MX":                    "5.1.10",
		"Chaos sender error":                "",
		"4.3.0 wrong class for a 5xx reply": "",
		"see 5.7.1 later in the text":       "",
	})
}

func TestMessageID(t *testing.T) {
	if got := messageID("7c9e6679-7425-40de-944b-e07fc1f90ae7"); got != "7c9e6679-7425-40de-944b-e07fc1f90ae7@herald" {
		t.Errorf("UID: %q", got)
	}
	if got := messageID(""); got != "" {
		t.Errorf("empty: %q", got)
	}
	odd := messageID("has space<and>brackets")
	if odd != messageID("has space<and>brackets") || !strings.HasSuffix(odd, "@herald") || !isDotAtom(strings.TrimSuffix(odd, "@herald")) {
		t.Errorf("non-atom ID must map to a stable valid ID, got %q", odd)
	}
}

func TestQueueID(t *testing.T) {
	checkEach(t, "queueID(%q)", queueID, map[string]string{
		"2.0.0 Ok: queued as 4Fz1abc": "4Fz1abc",
		"2.0.0 Ok: queued as X trail": "X",
		"OK id=1r2s3t-000Abc-4D":      "OK id=1r2s3t-000Abc-4D",
		" 2.0.0 Ok: queued ":          "2.0.0 Ok: queued",
	})
}

func TestNewValidates(t *testing.T) {
	good := Config{Host: "smtp.example.test", Port: 587, From: "Herald <noreply@example.test>"}
	if s, err := New(good); err != nil {
		t.Fatalf("valid config: %v", err)
	} else if s.cfg.TLS != TLSStartTLS {
		t.Errorf("default TLS = %q, want %q", s.cfg.TLS, TLSStartTLS)
	}
	for name, mutate := range map[string]func(*Config){
		"no host":           func(c *Config) { c.Host = "" },
		"host with port":    func(c *Config) { c.Host = "smtp.example.test:587" },
		"host with scheme":  func(c *Config) { c.Host = "smtp://smtp.example.test" },
		"port zero":         func(c *Config) { c.Port = 0 },
		"port too big":      func(c *Config) { c.Port = 70000 },
		"bad TLS mode":      func(c *Config) { c.TLS = "SSL" },
		"no from":           func(c *Config) { c.From = "" },
		"bad from":          func(c *Config) { c.From = "not an address" },
		"bad reply-to":      func(c *Config) { c.ReplyTo = "nope@" },
		"password only":     func(c *Config) { c.Password = "x" },
		"bad CA":            func(c *Config) { c.CAPEM = []byte("not pem") },
		"HELO with a space": func(c *Config) { c.HeloName = "a b" },
	} {
		cfg := good
		mutate(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	v6 := good
	v6.Host = "::1"
	if _, err := New(v6); err != nil {
		t.Errorf("IPv6 host: %v", err)
	}
}

// A server's reply text is the receiver's own words and never reaches
// status or Events: only the reply code, the enhanced code and the stage.
func TestReplyTextStaysOut(t *testing.T) {
	const text = "mailbox jdoe lives on backend-7.internal, ticket 4711"
	ce := classify(context.Background(), fmt.Errorf("rcpt: %w", &textproto.Error{Code: 550, Msg: "5.1.1 " + text}))
	if strings.Contains(ce.Error(), "backend-7") || strings.Contains(ce.Error(), "4711") {
		t.Errorf("the reply's text reached the error: %v", ce)
	}
	if ce.Code != "smtp 550 5.1.1" {
		t.Errorf("code %q, want smtp 550 5.1.1", ce.Code)
	}
}
