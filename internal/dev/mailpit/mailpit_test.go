package mailpit

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/smtp"
	"strings"
	"testing"
	"time"
)

// TestLifecycle covers what other suites rely on: a message sent over SMTP
// shows up in the API, chaos makes SMTP fail, and Stop/Restart keep the port
// and the stored messages.
func TestLifecycle(t *testing.T) {
	s, err := Start(Options{Chaos: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	send := func() error {
		return smtp.SendMail(s.SMTPAddr(), nil, "a@example.test", []string{"b@example.test"},
			[]byte("Subject: hi\r\nMessage-ID: <lifecycle@test>\r\n\r\nhello\r\n"))
	}
	if err := send(); err != nil {
		t.Fatal(err)
	}
	sum, err := s.WaitForMessage(ctx, func(m MessageSummary) bool { return m.MessageID == "lifecycle@test" })
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Message(ctx, sum.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "hi" || strings.TrimSpace(m.Text) != "hello" || m.Header("message-id") != "<lifecycle@test>" {
		t.Fatalf("unexpected message: %+v", m)
	}

	if err := s.SetChaos(ctx, Chaos{Sender: Always(451)}); err != nil {
		t.Fatal(err)
	}
	if err := send(); err == nil || !strings.HasPrefix(err.Error(), "451") {
		t.Fatalf("want 451 from chaos, got %v", err)
	}
	if err := s.SetChaos(ctx, Chaos{}); err != nil {
		t.Fatal(err)
	}

	port := s.Port()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if conn, err := net.Dial("tcp", s.SMTPAddr()); err == nil {
		conn.Close()
		t.Fatal("SMTP port still accepts connections after Stop")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if s.Port() != port {
		t.Fatalf("port changed across restart: %d -> %d", port, s.Port())
	}
	msgs, err := s.Messages(ctx)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("messages after restart: %d, %v", len(msgs), err)
	}
	if err := s.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := s.Messages(ctx); len(msgs) != 0 {
		t.Fatalf("DeleteAll left %d messages", len(msgs))
	}
}

// TestImplicitTLS checks the generated certificate verifies against CAPEM for
// the loopback address.
func TestImplicitTLS(t *testing.T) {
	s, err := Start(Options{TLS: TLSImplicit, Username: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CAPEM()) {
		t.Fatal("CAPEM does not parse")
	}
	conn, err := tls.Dial("tcp", s.SMTPAddr(), &tls.Config{RootCAs: pool, ServerName: s.Host()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	greeting, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(greeting, "220") {
		t.Fatalf("greeting %q, %v", greeting, err)
	}
}
