package email

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/dev/mailpit"
)

// Servers shared by the package's tests, one per SMTP set-up. Tests that
// change server state (chaos) reset it in a cleanup, and tests do not run in
// parallel, so sharing is safe. Tests find their own message by Message-ID
// rather than relying on an empty mailbox.
var (
	plainSMTP    *mailpit.Server // no TLS, no AUTH, chaos enabled
	startTLSSMTP *mailpit.Server // STARTTLS required, AUTH required
	implicitSMTP *mailpit.Server // implicit TLS, AUTH required
)

const (
	testUser     = "herald"
	testPassword = "s3cret-pass"
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	opts := []mailpit.Options{
		{Chaos: true},
		{TLS: mailpit.TLSStartTLS, Username: testUser, Password: testPassword},
		{TLS: mailpit.TLSImplicit, Username: testUser, Password: testPassword},
	}
	servers := make([]*mailpit.Server, len(opts))
	errs := make([]error, len(opts))
	var wg sync.WaitGroup
	for i := range opts {
		wg.Go(func() { servers[i], errs[i] = mailpit.Start(opts[i]) })
	}
	wg.Wait()
	defer func() {
		for _, s := range servers {
			if s != nil {
				_ = s.Close()
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	plainSMTP, startTLSSMTP, implicitSMTP = servers[0], servers[1], servers[2]
	return m.Run()
}

func newSender(t *testing.T, cfg Config) *Sender {
	t.Helper()
	if cfg.From == "" {
		cfg.From = "Herald <noreply@herald.test>"
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func plainConfig(srv *mailpit.Server) Config {
	return Config{Host: srv.Host(), Port: srv.Port(), TLS: TLSNone}
}

func authConfig(srv *mailpit.Server, mode TLSMode) Config {
	return Config{
		Host: srv.Host(), Port: srv.Port(), TLS: mode,
		Username: testUser, Password: testPassword, CAPEM: srv.CAPEM(),
	}
}

// testMessage returns a message whose ID is unique to the test, so the
// test's mail can be told apart in a shared mailbox.
func testMessage(t *testing.T) *channel.Message {
	// Like a Kubernetes UID, the ID is a dot-atom and used verbatim in the
	// Message-ID; the test name in it helps when reading Mailpit's log.
	name := strings.Map(func(r rune) rune {
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return r
		}
		return '-'
	}, t.Name())
	id := fmt.Sprintf("uid-%s-%d", name, time.Now().UnixNano())
	return &channel.Message{
		ID:           id,
		Namespace:    "team-a",
		Delivery:     "deploy-done-email-alice",
		Notification: "deploy-done",
		Attempt:      1,
		Category:     "deployments",
		Title:        "Deploy finished",
		Body:         "The deploy finished.",
		Recipient: channel.Recipient{
			Name: "alice", DisplayName: "Alice Example", Email: "alice@example.test",
		},
		Email: &channel.EmailContent{
			Subject: "Deploy of web finished",
			Text:    "Plain: the deploy of web finished.",
			HTML:    "<p>HTML: the deploy of <b>web</b> finished.</p>",
		},
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// received waits (bounded) for the message with msg's Message-ID and
// returns it in full.
func received(t *testing.T, srv *mailpit.Server, msg *channel.Message) *mailpit.Message {
	t.Helper()
	ctx := ctxTimeout(t, 10*time.Second)
	want := messageID(msg.ID)
	sum, err := srv.WaitForMessage(ctx, func(m mailpit.MessageSummary) bool { return m.MessageID == want })
	if err != nil {
		t.Fatal(err)
	}
	full, err := srv.Message(ctx, sum.ID)
	if err != nil {
		t.Fatal(err)
	}
	return full
}

func mustSend(t *testing.T, s *Sender, msg *channel.Message) channel.Result {
	t.Helper()
	res, err := s.Send(ctxTimeout(t, 10*time.Second), msg)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	return res
}

// sendErr sends and returns the classified error, failing if there is none.
func sendErr(t *testing.T, s *Sender, ctx context.Context, msg *channel.Message) *channel.Error {
	t.Helper()
	_, err := s.Send(ctx, msg)
	if err == nil {
		t.Fatal("Send succeeded, want an error")
	}
	var ce *channel.Error
	if !errors.As(err, &ce) {
		t.Fatalf("Send error %T is not a *channel.Error: %v", err, err)
	}
	t.Logf("Send error: %v", ce)
	return ce
}

func TestSendDeliversMessage(t *testing.T) {
	cfg := plainConfig(plainSMTP)
	cfg.ReplyTo = "Support <support@herald.test>"
	s := newSender(t, cfg)
	msg := testMessage(t)

	res := mustSend(t, s, msg)
	got := received(t, plainSMTP, msg)

	if res.ProviderMessageID != got.ID {
		t.Errorf("ProviderMessageID = %q, want Mailpit's ID %q", res.ProviderMessageID, got.ID)
	}
	if got.Subject != "Deploy of web finished" {
		t.Errorf("Subject = %q", got.Subject)
	}
	if strings.TrimSpace(got.Text) != msg.Email.Text {
		t.Errorf("Text = %q", got.Text)
	}
	if strings.TrimSpace(got.HTML) != msg.Email.HTML {
		t.Errorf("HTML = %q", got.HTML)
	}
	if got.From == nil || got.From.Address != "noreply@herald.test" || got.From.Name != "Herald" {
		t.Errorf("From = %+v", got.From)
	}
	if len(got.To) != 1 || got.To[0].Address != "alice@example.test" || got.To[0].Name != "Alice Example" {
		t.Errorf("To = %+v", got.To)
	}
	if len(got.ReplyTo) != 1 || got.ReplyTo[0].Address != "support@herald.test" {
		t.Errorf("ReplyTo = %+v", got.ReplyTo)
	}
	if got.ReturnPath != "noreply@herald.test" {
		t.Errorf("Return-Path (envelope sender) = %q", got.ReturnPath)
	}
	if want := msg.ID + "@herald"; got.MessageID != want || got.Header("Message-ID") != "<"+want+">" {
		t.Errorf("Message-ID = %q / header %q, want %q", got.MessageID, got.Header("Message-ID"), want)
	}
	for name, want := range map[string]string{
		"X-Herald-Delivery":     "team-a/deploy-done-email-alice",
		"X-Herald-Notification": "deploy-done",
		"X-Herald-Category":     "deployments",
		"Auto-Submitted":        "auto-generated",
	} {
		if v := got.Header(name); v != want {
			t.Errorf("%s = %q, want %q", name, v, want)
		}
	}
	if ct := got.Header("Content-Type"); !strings.HasPrefix(ct, "multipart/alternative") {
		t.Errorf("Content-Type = %q, want multipart/alternative", ct)
	}
}

func TestSendFallsBackToTitleAndBody(t *testing.T) {
	s := newSender(t, plainConfig(plainSMTP))
	msg := testMessage(t)
	msg.Email = nil
	msg.Title = "Title with\r\nBcc: injected@example.test"

	mustSend(t, s, msg)
	got := received(t, plainSMTP, msg)

	if got.Subject != "Title with Bcc: injected@example.test" {
		t.Errorf("Subject = %q (line breaks must be folded away)", got.Subject)
	}
	if len(got.Bcc) != 0 {
		t.Errorf("header injection produced Bcc %+v", got.Bcc)
	}
	if strings.TrimSpace(got.Text) != msg.Body || got.HTML != "" {
		t.Errorf("Text = %q, HTML = %q", got.Text, got.HTML)
	}
}

// eachTLSServer runs f as a subtest for each server that requires TLS and
// AUTH, with a config that logs in to it.
func eachTLSServer(t *testing.T, f func(t *testing.T, srv *mailpit.Server, cfg Config)) {
	for _, tc := range []struct {
		name string
		srv  *mailpit.Server
		mode TLSMode
	}{
		{"starttls", startTLSSMTP, TLSStartTLS},
		{"implicit", implicitSMTP, TLSImplicit},
	} {
		t.Run(tc.name, func(t *testing.T) { f(t, tc.srv, authConfig(tc.srv, tc.mode)) })
	}
}

func TestSendTLSWithAuth(t *testing.T) {
	eachTLSServer(t, func(t *testing.T, srv *mailpit.Server, cfg Config) {
		msg := testMessage(t)
		mustSend(t, newSender(t, cfg), msg)
		if got := received(t, srv, msg); got.Username != testUser {
			t.Errorf("authenticated as %q, want %q", got.Username, testUser)
		}
	})
}

func TestSendWrongPassword(t *testing.T) {
	eachTLSServer(t, func(t *testing.T, _ *mailpit.Server, cfg Config) {
		cfg.Password = "wrong"
		ce := sendErr(t, newSender(t, cfg), ctxTimeout(t, 10*time.Second), testMessage(t))
		if ce.Reason != notifyv1.ReasonPermanent || !ce.ProviderFault() || ce.Code != "smtp 535 5.7.8" {
			t.Fatalf("got %+v, want Permanent, ProviderFault, smtp 535 5.7.8", ce)
		}
	})
}

func TestSendMissingCredentials(t *testing.T) {
	// Mailpit answers MAIL FROM without AUTH with "530 5.7.0 Authentication
	// required": a provider set-up problem.
	cfg := authConfig(startTLSSMTP, TLSStartTLS)
	cfg.Username, cfg.Password = "", ""
	ce := sendErr(t, newSender(t, cfg), ctxTimeout(t, 10*time.Second), testMessage(t))
	if ce.Reason != notifyv1.ReasonPermanent || !ce.ProviderFault() || ce.Code != "smtp 530 5.7.0" {
		t.Fatalf("got %+v, want Permanent, ProviderFault, smtp 530 5.7.0", ce)
	}
}

func TestSendUntrustedCertificate(t *testing.T) {
	eachTLSServer(t, func(t *testing.T, _ *mailpit.Server, cfg Config) {
		cfg.CAPEM = nil // the test CA is not a system root
		ce := sendErr(t, newSender(t, cfg), ctxTimeout(t, 10*time.Second), testMessage(t))
		if ce.Reason != notifyv1.ReasonTransient || !ce.ProviderFault() || ce.Code != "tls certificate" {
			t.Fatalf("got %+v, want Transient, ProviderFault, tls certificate", ce)
		}
	})
}

func TestSendInsecureSkipVerify(t *testing.T) {
	cfg := authConfig(startTLSSMTP, TLSStartTLS)
	cfg.CAPEM, cfg.InsecureSkipVerify = nil, true
	msg := testMessage(t)
	mustSend(t, newSender(t, cfg), msg)
	received(t, startTLSSMTP, msg)
}

func TestSendStartTLSRequiredButNotOffered(t *testing.T) {
	// The plain server offers no STARTTLS; STARTTLS mode must not fall back
	// to clear text.
	cfg := plainConfig(plainSMTP)
	cfg.TLS = TLSStartTLS
	msg := testMessage(t)
	ce := sendErr(t, newSender(t, cfg), ctxTimeout(t, 10*time.Second), msg)
	if ce.Reason != notifyv1.ReasonTransient {
		t.Fatalf("got %+v, want Transient", ce)
	}
	ctx := ctxTimeout(t, time.Second)
	if msgs, err := plainSMTP.Messages(ctx); err != nil {
		t.Fatal(err)
	} else {
		for _, m := range msgs {
			if m.MessageID == messageID(msg.ID) {
				t.Fatal("message was sent in clear text")
			}
		}
	}
}

func TestSendChaos(t *testing.T) {
	t.Cleanup(func() {
		if err := plainSMTP.SetChaos(context.Background(), mailpit.Chaos{}); err != nil {
			t.Error(err)
		}
	})
	s := newSender(t, plainConfig(plainSMTP))
	ctx := ctxTimeout(t, 20*time.Second)

	t.Run("451 on MAIL FROM is transient, then succeeds", func(t *testing.T) {
		if err := plainSMTP.SetChaos(ctx, mailpit.Chaos{Sender: mailpit.Always(451)}); err != nil {
			t.Fatal(err)
		}
		msg := testMessage(t)
		ce := sendErr(t, s, ctx, msg)
		if ce.Reason != notifyv1.ReasonTransient || ce.ProviderFault() || ce.Code != "smtp 451" || !ce.Retryable() {
			t.Fatalf("got %+v, want retryable Transient smtp 451", ce)
		}

		if err := plainSMTP.SetChaos(ctx, mailpit.Chaos{}); err != nil {
			t.Fatal(err)
		}
		msg.Attempt = 2
		mustSend(t, s, msg)
		// The retry carries the same Message-ID as the failed attempt.
		if got := received(t, plainSMTP, msg); got.MessageID != msg.ID+"@herald" {
			t.Fatalf("Message-ID %q", got.MessageID)
		}
	})

	t.Run("550 on RCPT TO is permanent", func(t *testing.T) {
		if err := plainSMTP.SetChaos(ctx, mailpit.Chaos{Recipient: mailpit.Always(550)}); err != nil {
			t.Fatal(err)
		}
		ce := sendErr(t, s, ctx, testMessage(t))
		if ce.Reason != notifyv1.ReasonPermanent || ce.ProviderFault() || ce.Code != "smtp 550" || ce.Retryable() {
			t.Fatalf("got %+v, want Permanent smtp 550 without ProviderFault", ce)
		}
	})

	t.Run("553 on MAIL FROM is a provider fault", func(t *testing.T) {
		if err := plainSMTP.SetChaos(ctx, mailpit.Chaos{Sender: mailpit.Always(553)}); err != nil {
			t.Fatal(err)
		}
		ce := sendErr(t, s, ctx, testMessage(t))
		if ce.Reason != notifyv1.ReasonPermanent || !ce.ProviderFault() || ce.Code != "smtp 553" {
			t.Fatalf("got %+v, want Permanent smtp 553 with ProviderFault", ce)
		}
	})
}

func TestSendServerDownThenUp(t *testing.T) {
	// A server of its own: stopping a shared one would break other tests.
	srv, err := mailpit.Start(mailpit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	s := newSender(t, plainConfig(srv))
	msg := testMessage(t)

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	ce := sendErr(t, s, ctxTimeout(t, 10*time.Second), msg)
	if ce.Reason != notifyv1.ReasonTransient || ce.ProviderFault() || !ce.Retryable() {
		t.Fatalf("server down: got %+v, want retryable Transient", ce)
	}
	var opErr *net.OpError
	if !errors.As(ce, &opErr) || opErr.Op != "dial" {
		t.Errorf("want the dial error preserved, got %v", ce.Err)
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	mustSend(t, s, msg)
	received(t, srv, msg)
}

func TestSendInvalidAddress(t *testing.T) {
	s := newSender(t, plainConfig(plainSMTP))
	s.dialContext = func(context.Context, string, string) (net.Conn, error) {
		t.Error("Send dialled the server for an invalid address")
		return nil, errors.New("no dialling in this test")
	}
	for _, addr := range []string{"", "   ", "alice", "alice@", "@example.test", "alice@example.test, bob@example.test", "alice@exa mple.test"} {
		msg := testMessage(t)
		msg.Recipient.Email = addr
		ce := sendErr(t, s, context.Background(), msg)
		if ce.Reason != notifyv1.ReasonInvalidAddress || ce.Retryable() {
			t.Errorf("%q: got %+v, want InvalidAddress", addr, ce)
		}
		if !strings.Contains(ce.Error(), "alice") {
			t.Errorf("%q: error should name the recipient: %v", addr, ce)
		}
	}
}

func TestSendTimeout(t *testing.T) {
	// A server that accepts connections and never says anything, so go-mail
	// blocks reading the greeting. The attempt must end at ctx's deadline,
	// not after go-mail's own timeout.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})

	port := ln.Addr().(*net.TCPAddr).Port
	for _, mode := range []TLSMode{TLSNone, TLSImplicit} {
		t.Run(string(mode), func(t *testing.T) {
			s := newSender(t, Config{Host: "127.0.0.1", Port: port, TLS: mode})
			start := time.Now()
			ce := sendErr(t, s, ctxTimeout(t, 300*time.Millisecond), testMessage(t))
			elapsed := time.Since(start)
			if ce.Reason != notifyv1.ReasonTimeout || !ce.Retryable() {
				t.Fatalf("got %+v, want Timeout", ce)
			}
			if elapsed > 5*time.Second {
				t.Fatalf("Send took %s, the 300ms deadline was not honoured", elapsed)
			}
		})
	}

	t.Run("cancel", func(t *testing.T) {
		s := newSender(t, Config{Host: "127.0.0.1", Port: port, TLS: TLSNone})
		ctx, cancel := context.WithCancel(context.Background())
		// Cancel once the connection is open and Send is blocked reading.
		s.dialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			cancel()
			return c, err
		}
		ce := sendErr(t, s, ctx, testMessage(t))
		if ce.Reason != notifyv1.ReasonTransient || ce.Code != "canceled" {
			t.Fatalf("got %+v, want Transient canceled", ce)
		}
	})
}
