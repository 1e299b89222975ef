// Package mailpit runs a real Mailpit SMTP server (bin/mailpit) as a child
// process for tests and wraps the parts of its REST API that tests need:
// reading received messages and injecting SMTP failures ("chaos").
//
// A real server is used instead of a fake because the email channel's
// behaviour depends on details a fake would have to re-implement: STARTTLS
// and implicit TLS, SMTP AUTH, enhanced status codes and the exact bytes of
// the delivered MIME message.
//
// The binary is built by `make envtest-bins`
// (go install github.com/axllent/mailpit@v1.33.1 into bin/). Set
// HERALD_MAILPIT to use another binary.
package mailpit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	heraldenvtest "github.com/herald-dev/herald/internal/dev/testutil/envtest"
)

// TLSMode selects how the SMTP listener uses TLS.
type TLSMode int

const (
	// TLSOff serves plain SMTP without STARTTLS.
	TLSOff TLSMode = iota
	// TLSStartTLS advertises STARTTLS and refuses mail until the client
	// has used it (--smtp-require-starttls).
	TLSStartTLS
	// TLSImplicit serves SMTP inside TLS from the first byte, as on port
	// 465 (--smtp-require-tls).
	TLSImplicit
)

// Options configure a Mailpit server. The zero value is a plain SMTP server
// without authentication or chaos.
type Options struct {
	// Username and Password, when Username is set, make SMTP AUTH
	// mandatory with exactly these credentials (PLAIN and LOGIN). Mailpit
	// refuses plaintext AUTH, so TLS must be TLSStartTLS or TLSImplicit
	// unless AllowInsecureAuth is set. Neither may contain white space, and
	// the username may not contain ':' (Mailpit's password file format).
	Username string
	Password string
	// AllowInsecureAuth lets clients authenticate without TLS
	// (--smtp-auth-allow-insecure).
	AllowInsecureAuth bool

	// TLS configures the SMTP listener. For any mode other than TLSOff a
	// CA and a server certificate for localhost/127.0.0.1/::1 are generated;
	// the CA is available from Server.CAPEM.
	TLS TLSMode

	// Chaos enables the chaos API (--enable-chaos) so SetChaos can make the
	// SMTP server fail on purpose.
	Chaos bool

	// Verbose turns on Mailpit's debug logging, which includes the SMTP
	// transcript. See Server.Logs.
	Verbose bool

	// StartTimeout bounds how long Start and Restart wait for the server to
	// become ready. Zero means 30 seconds.
	StartTimeout time.Duration
}

// Server is a running (or stopped) Mailpit child process. Its ports, data
// directory and certificates stay the same across Stop and Restart, so a
// client configured once can observe the server going away and coming back.
type Server struct {
	opts     Options
	bin      string
	dir      string
	caPEM    []byte
	smtpPort int
	httpPort int
	http     *http.Client

	mu   sync.Mutex
	proc *process
}

type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	err    error         // result of cmd.Wait, valid after exited is closed
}

const loopback = "127.0.0.1"

// Start launches Mailpit on free loopback ports and waits until both its
// HTTP API and its SMTP listener accept connections. Call Close when done.
func Start(opts Options) (*Server, error) {
	if opts.Username != "" {
		if strings.ContainsAny(opts.Username, ": \t\r\n") || strings.ContainsAny(opts.Password, " \t\r\n") || opts.Password == "" {
			return nil, errors.New("mailpit: username must not contain ':' or white space, and password must be non-empty without white space")
		}
		if opts.TLS == TLSOff && !opts.AllowInsecureAuth {
			return nil, errors.New("mailpit: SMTP AUTH without TLS needs AllowInsecureAuth")
		}
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 30 * time.Second
	}

	bin, err := findBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "herald-mailpit-")
	if err != nil {
		return nil, fmt.Errorf("mailpit: %w", err)
	}
	s := &Server{
		opts: opts,
		bin:  bin,
		dir:  dir,
		// No proxy: the API is on loopback and a developer's HTTP_PROXY
		// must not get in the way.
		http: &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second},
	}
	if err := s.writeConfigFiles(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}

	// Free ports are found by binding to :0 and releasing the port, so
	// another process can take one before Mailpit binds it. That race is
	// rare; a second try with fresh ports makes it harmless.
	for attempt := 1; ; attempt++ {
		s.smtpPort, s.httpPort, err = freePorts()
		if err == nil {
			err = s.launch()
		}
		if err == nil {
			return s, nil
		}
		if attempt == 2 {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
}

// writeConfigFiles writes the password file and TLS material that the
// command line refers to. They live in the server's own directory, so they
// survive Stop/Restart and are removed by Close.
func (s *Server) writeConfigFiles() error {
	if s.opts.Username != "" {
		// Mailpit reads htpasswd-style "user:password" lines; a plain
		// password is accepted as-is.
		line := s.opts.Username + ":" + s.opts.Password + "\n"
		if err := os.WriteFile(s.path("smtp-auth"), []byte(line), 0o600); err != nil {
			return fmt.Errorf("mailpit: write password file: %w", err)
		}
	}
	if s.opts.TLS != TLSOff {
		pki, err := newTestPKI()
		if err != nil {
			return fmt.Errorf("mailpit: %w", err)
		}
		if err := os.WriteFile(s.path("tls.crt"), pki.certPEM, 0o600); err != nil {
			return fmt.Errorf("mailpit: write certificate: %w", err)
		}
		if err := os.WriteFile(s.path("tls.key"), pki.keyPEM, 0o600); err != nil {
			return fmt.Errorf("mailpit: write key: %w", err)
		}
		s.caPEM = pki.caPEM
	}
	return nil
}

func (s *Server) path(name string) string { return filepath.Join(s.dir, name) }

// args is the Mailpit command line. Every flag is from mailpit v1.33.1's
// cmd/root.go.
func (s *Server) args() []string {
	args := []string{
		"--smtp", net.JoinHostPort(loopback, strconv.Itoa(s.smtpPort)),
		"--listen", net.JoinHostPort(loopback, strconv.Itoa(s.httpPort)),
		// An explicit database file (rather than Mailpit's default temp
		// file) keeps messages across Restart and is removed by Close.
		"--database", s.path("mailpit.db"),
		"--disable-version-check", // no network access from tests
		"--smtp-disable-rdns",     // no reverse DNS lookup per connection
	}
	if s.opts.Username != "" {
		args = append(args, "--smtp-auth-file", s.path("smtp-auth"))
	}
	if s.opts.AllowInsecureAuth {
		args = append(args, "--smtp-auth-allow-insecure")
	}
	switch s.opts.TLS {
	case TLSStartTLS:
		args = append(args, "--smtp-tls-cert", s.path("tls.crt"), "--smtp-tls-key", s.path("tls.key"), "--smtp-require-starttls")
	case TLSImplicit:
		args = append(args, "--smtp-tls-cert", s.path("tls.crt"), "--smtp-tls-key", s.path("tls.key"), "--smtp-require-tls")
	}
	if s.opts.Chaos {
		args = append(args, "--enable-chaos")
	}
	if s.opts.Verbose {
		args = append(args, "--verbose")
	}
	return args
}

// launch starts the process on the current ports and waits for readiness.
func (s *Server) launch() error {
	logFile, err := os.OpenFile(s.path("mailpit.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("mailpit: open log: %w", err)
	}
	defer logFile.Close() // the child has its own copy of the descriptor

	cmd := exec.Command(s.bin, s.args()...)
	cmd.Dir = s.dir
	cmd.Env = childEnv()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("mailpit: start %s: %w", s.bin, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()

	if err := s.waitReady(p); err != nil {
		_ = cmd.Process.Kill()
		<-p.exited
		return err
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// childEnv drops MP_* variables: Mailpit reads its whole configuration from
// them as well, and a developer's own settings must not change the tests.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MP_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitReady polls until Mailpit answers /readyz and accepts SMTP
// connections, the process exits, or StartTimeout passes. Both are checked
// because Mailpit starts its HTTP and SMTP listeners independently.
func (s *Server) waitReady(p *process) error {
	deadline := time.Now().Add(s.opts.StartTimeout)
	delay := 10 * time.Millisecond
	var lastErr error
	for {
		if lastErr = s.probe(); lastErr == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mailpit: not ready after %s: %v\n--- mailpit log ---\n%s", s.opts.StartTimeout, lastErr, s.Logs())
		}
		select {
		case <-p.exited:
			return fmt.Errorf("mailpit: exited during start-up (%v)\n--- mailpit log ---\n%s", p.err, s.Logs())
		case <-time.After(delay):
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

func (s *Server) probe() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.APIURL()+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("readyz: %s", resp.Status)
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.SMTPAddr())
	if err != nil {
		return err
	}
	return conn.Close()
}

// Stop kills Mailpit and waits for it to exit, so the SMTP port refuses
// connections when Stop returns. SIGKILL is enough: the database is SQLite
// in WAL mode and recovers on the next start. Stopping a stopped server is a
// no-op.
func (s *Server) Stop() error {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("mailpit: kill: %w", err)
	}
	<-p.exited
	return nil
}

// Restart starts Mailpit again on the same ports, data directory and
// certificate (stopping it first if it is running) and waits until it is
// ready. Chaos triggers are not persisted by Mailpit and start off again.
func (s *Server) Restart() error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.launch()
}

// Close stops Mailpit and removes its directory (database, certificates,
// password file, log).
func (s *Server) Close() error {
	err := s.Stop()
	if rmErr := os.RemoveAll(s.dir); err == nil {
		err = rmErr
	}
	return err
}

// Running reports whether the child process is up (as far as Stop/Restart
// know; it does not probe).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return false
	}
	select {
	case <-s.proc.exited:
		return false
	default:
		return true
	}
}

// Host is the SMTP host, always the IPv4 loopback address.
func (s *Server) Host() string { return loopback }

// Port is the SMTP port.
func (s *Server) Port() int { return s.smtpPort }

// SMTPAddr is host:port of the SMTP listener.
func (s *Server) SMTPAddr() string { return net.JoinHostPort(loopback, strconv.Itoa(s.smtpPort)) }

// APIURL is the base URL of the web UI and REST API, without trailing slash.
func (s *Server) APIURL() string {
	return "http://" + net.JoinHostPort(loopback, strconv.Itoa(s.httpPort))
}

// CAPEM is the PEM-encoded CA that issued the SMTP server certificate, or
// nil when TLS is off.
func (s *Server) CAPEM() []byte { return bytes.Clone(s.caPEM) }

// Logs returns everything Mailpit has written to stdout and stderr so far,
// across restarts. Useful in failure messages.
func (s *Server) Logs() string {
	b, err := os.ReadFile(s.path("mailpit.log"))
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// findBinary locates the Mailpit executable: $HERALD_MAILPIT, else bin/mailpit
// in the module root (the nearest directory upwards that holds go.mod).
func findBinary() (string, error) {
	const hint = "run `make envtest-bins` (or set HERALD_MAILPIT to a mailpit binary)"
	if p := os.Getenv("HERALD_MAILPIT"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("mailpit: HERALD_MAILPIT=%s: %w; %s", p, err, hint)
		}
		return p, nil
	}
	root, err := heraldenvtest.RepoRoot()
	if err != nil {
		return "", fmt.Errorf("mailpit: cannot find bin/mailpit: %w; %s", err, hint)
	}
	name := "mailpit"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	p := filepath.Join(root, "bin", name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("mailpit: %s not found; %s", p, hint)
	}
	return p, nil
}

// freePorts returns two distinct free loopback TCP ports. Both listeners are
// held until both ports are known so the kernel cannot hand out one twice.
func freePorts() (int, int, error) {
	a, err := net.Listen("tcp", net.JoinHostPort(loopback, "0"))
	if err != nil {
		return 0, 0, fmt.Errorf("mailpit: find free port: %w", err)
	}
	defer a.Close()
	b, err := net.Listen("tcp", net.JoinHostPort(loopback, "0"))
	if err != nil {
		return 0, 0, fmt.Errorf("mailpit: find free port: %w", err)
	}
	defer b.Close()
	return a.Addr().(*net.TCPAddr).Port, b.Addr().(*net.TCPAddr).Port, nil
}
