package mailpit

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/smtp"
	"os"
	"path/filepath"
	"strconv"
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

// TestKeptDirectory is Mailpit as herald dev runs it: fixed ports, a
// directory that outlives the server, a pid file, any credentials accepted
// over plain SMTP, SIGTERM first on Stop.
func TestKeptDirectory(t *testing.T) {
	dir := t.TempDir()
	smtpPort, httpPort, err := freePorts()
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Dir: filepath.Join(dir, "mailpit"), LogFile: filepath.Join(dir, "mailpit.log"), PIDFile: filepath.Join(dir, "mailpit.pid"),
		SMTPPort: smtpPort, HTTPPort: httpPort,
		AcceptAnyAuth: true, AllowInsecureAuth: true, OwnProcessGroup: true, StopGrace: 5 * time.Second,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := StartContext(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Port() != smtpPort || s.APIURL() != "http://"+net.JoinHostPort(loopback, strconv.Itoa(httpPort)) {
		t.Fatalf("ports: SMTP %d, API %s; asked for %d and %d", s.Port(), s.APIURL(), smtpPort, httpPort)
	}
	pid, err := os.ReadFile(opts.PIDFile)
	if err != nil || strings.TrimSpace(string(pid)) == "" {
		t.Fatalf("pid file: %q %v", pid, err)
	}
	auth := smtp.PlainAuth("", "anyone", "anything", s.Host())
	if err := smtp.SendMail(s.SMTPAddr(), auth, "a@example.test", []string{"b@example.test"},
		[]byte("Subject: kept\r\nMessage-ID: <kept@test>\r\n\r\nhello\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(opts.PIDFile); !os.IsNotExist(err) {
		t.Errorf("pid file after Close: %v", err)
	}
	if _, err := os.Stat(filepath.Join(opts.Dir, "mailpit.db")); err != nil {
		t.Fatalf("Close removed the given directory's database: %v", err)
	}

	// A second server on the directory has the message.
	s2, err := StartContext(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.WaitForMessage(ctx, func(m MessageSummary) bool { return m.MessageID == "kept@test" && m.Username == "anyone" }); err != nil {
		t.Fatal(err)
	}
	if s2.Logs() == "" {
		t.Errorf("no log in %s", opts.LogFile)
	}
}
