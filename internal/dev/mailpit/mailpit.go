// Package mailpit runs a real Mailpit SMTP server (bin/mailpit) as a child
// process and wraps the parts of its REST API that callers need: reading
// received messages and injecting SMTP failures ("chaos"). It is the one
// Mailpit starter of the repository: herald dev runs its email sink with
// it, on fixed ports with the messages kept in its state directory, and the
// tests run throw-away servers on free ports.
//
// A real server is used instead of a fake because the email channel's
// behaviour depends on details a fake would have to re-implement: STARTTLS
// and implicit TLS, SMTP AUTH, enhanced status codes and the exact bytes of
// the delivered MIME message.
//
// The binary is built by `make envtest-bins`
// (go install github.com/axllent/mailpit@v1.33.1 into bin/). Set
// HERALD_MAILPIT or Options.Binary to use another binary.
//
// Like everything under internal/dev it is dev-only: production code never
// imports it.
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

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
// on free ports, without authentication or chaos, whose data is removed by
// Close.
type Options struct {
	// Username and Password, when Username is set, make SMTP AUTH
	// mandatory with exactly these credentials (PLAIN and LOGIN). Mailpit
	// refuses plaintext AUTH, so TLS must be TLSStartTLS or TLSImplicit
	// unless AllowInsecureAuth is set. Neither may contain white space, and
	// the username may not contain ':' (Mailpit's password file format).
	Username string
	Password string
	// AcceptAnyAuth accepts whatever credentials a client sends
	// (--smtp-auth-accept-any), as a local sink should; clients that do not
	// authenticate are accepted too. It excludes Username.
	AcceptAnyAuth bool
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

	// Binary is the Mailpit executable. Empty means $HERALD_MAILPIT, else
	// bin/mailpit in the repository.
	Binary string

	// Dir holds the database, the certificates, the password file and, by
	// default, the log. Empty means a new temporary directory that Close
	// removes; a given directory is created when missing and kept, so that
	// the next server on it has the same messages.
	Dir string
	// LogFile receives Mailpit's standard output and error, appended to
	// across restarts. Empty means mailpit.log in Dir.
	LogFile string
	// PIDFile, when set, holds the process id while Mailpit runs (written
	// at start, removed once it has stopped), so that a supervisor that
	// dies without stopping it can find it later.
	PIDFile string

	// SMTPPort and HTTPPort are loopback ports to listen on. Zero picks
	// free ports; Restart keeps whatever ports the server has.
	SMTPPort int
	HTTPPort int

	// StartTimeout bounds how long Start and Restart wait for the server to
	// become ready. Zero means 30 seconds.
	StartTimeout time.Duration
	// StopGrace is how long Stop waits after SIGTERM before it kills
	// Mailpit. Zero kills at once (SIGKILL), which is safe: the database is
	// SQLite in WAL mode and recovers on the next start.
	StopGrace time.Duration

	// OwnProcessGroup starts Mailpit in a process group of its own, so
	// that a terminal's Ctrl-C reaches only the caller, which then stops
	// it in order (herald dev). On Linux Mailpit is killed when the caller
	// dies either way (parent-death signal).
	OwnProcessGroup bool

	// DropEnv lists prefixes of environment variables Mailpit does not
	// inherit, besides MP_* (Mailpit reads its whole configuration from
	// those as well, and a developer's own settings must not change a test
	// or the dev sink).
	DropEnv []string
}

// Server is a running (or stopped) Mailpit child process. Its ports, data
// directory and certificates stay the same across Stop and Restart, so a
// client configured once can observe the server going away and coming back.
type Server struct {
	opts     Options
	bin      string
	dir      string
	ownDir   bool // dir was made by Start and is removed by Close
	logFile  string
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

// Start launches Mailpit and waits until both its HTTP API and its SMTP
// listener accept connections. Call Close when done.
func Start(opts Options) (*Server, error) {
	return StartContext(context.Background(), opts)
}

// StartContext is Start that gives up, stopping Mailpit again, when ctx
// ends before Mailpit is ready.
func StartContext(ctx context.Context, opts Options) (*Server, error) {
	if opts.Username != "" {
		if opts.AcceptAnyAuth {
			return nil, errors.New("mailpit: Username and AcceptAnyAuth exclude each other")
		}
		if strings.ContainsAny(opts.Username, ": \t\r\n") || strings.ContainsAny(opts.Password, " \t\r\n") || opts.Password == "" {
			return nil, errors.New("mailpit: username must not contain ':' or white space, and password must be non-empty without white space")
		}
	}
	if (opts.Username != "" || opts.AcceptAnyAuth) && opts.TLS == TLSOff && !opts.AllowInsecureAuth {
		return nil, errors.New("mailpit: SMTP AUTH without TLS needs AllowInsecureAuth")
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 30 * time.Second
	}

	bin := opts.Binary
	if bin == "" {
		var err error
		if bin, err = findBinary(); err != nil {
			return nil, err
		}
	}
	s := &Server{
		opts:     opts,
		bin:      bin,
		dir:      opts.Dir,
		logFile:  opts.LogFile,
		smtpPort: opts.SMTPPort,
		httpPort: opts.HTTPPort,
		// No proxy: the API is on loopback and a developer's HTTP_PROXY
		// must not get in the way.
		http: &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second},
	}
	if s.dir == "" {
		dir, err := os.MkdirTemp("", "herald-mailpit-")
		if err != nil {
			return nil, fmt.Errorf("mailpit: %w", err)
		}
		s.dir, s.ownDir = dir, true
	} else if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("mailpit: %w", err)
	}
	if s.logFile == "" {
		s.logFile = s.path("mailpit.log")
	}
	if err := s.writeConfigFiles(); err != nil {
		s.removeDir()
		return nil, err
	}

	// Free ports are found by binding to :0 and releasing the port, so
	// another process can take one before Mailpit binds it. That race is
	// rare; a second try with fresh ports makes it harmless. Ports the
	// caller chose get one try.
	pick := s.smtpPort == 0 || s.httpPort == 0
	for attempt := 1; ; attempt++ {
		var err error
		if pick {
			err = s.pickPorts()
		}
		if err == nil {
			err = s.launch(ctx)
		}
		if err == nil {
			return s, nil
		}
		if !pick || attempt == 2 || ctx.Err() != nil {
			s.removeDir()
			return nil, err
		}
	}
}

// pickPorts chooses free ports for the SMTP and HTTP listeners the caller
// left open.
func (s *Server) pickPorts() error {
	a, b, err := freePorts()
	if err != nil {
		return err
	}
	if s.opts.SMTPPort == 0 {
		s.smtpPort = a
	}
	if s.opts.HTTPPort == 0 {
		s.httpPort = b
	}
	return nil
}

// writeConfigFiles writes the password file and TLS material that the
// command line refers to. They live in the server's own directory, so they
// survive Stop/Restart.
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
		// file) keeps messages across Restart, and across herald dev runs
		// in its state directory.
		"--database", s.path("mailpit.db"),
		"--disable-version-check", // no network access
		"--smtp-disable-rdns",     // no reverse DNS lookup per connection
	}
	if s.opts.Username != "" {
		args = append(args, "--smtp-auth-file", s.path("smtp-auth"))
	}
	if s.opts.AcceptAnyAuth {
		args = append(args, "--smtp-auth-accept-any")
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
func (s *Server) launch(ctx context.Context) error {
	logFile, err := os.OpenFile(s.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("mailpit: open log: %w", err)
	}
	defer logFile.Close() // the child has its own copy of the descriptor

	cmd := exec.Command(s.bin, s.args()...)
	cmd.Dir = s.dir
	cmd.Env = childEnv(s.opts.DropEnv)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	setProcAttr(cmd, s.opts.OwnProcessGroup)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("mailpit: start %s: %w", s.bin, err)
	}
	if s.opts.PIDFile != "" {
		_ = os.WriteFile(s.opts.PIDFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()

	if err := s.waitReady(ctx, p); err != nil {
		_ = cmd.Process.Kill()
		<-p.exited
		s.forgetPID()
		return err
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

func (s *Server) forgetPID() {
	if s.opts.PIDFile != "" {
		_ = os.Remove(s.opts.PIDFile)
	}
}

// childEnv is this process's environment without MP_* variables and those
// with the dropped prefixes.
func childEnv(drop []string) []string {
	drop = append([]string{"MP_"}, drop...)
	var env []string
	for _, kv := range os.Environ() {
		if !slices.ContainsFunc(drop, func(prefix string) bool { return strings.HasPrefix(kv, prefix) }) {
			env = append(env, kv)
		}
	}
	return env
}

// waitReady polls until Mailpit answers /readyz and accepts SMTP
// connections, the process exits, ctx ends or StartTimeout passes. Both are
// checked because Mailpit starts its HTTP and SMTP listeners independently.
func (s *Server) waitReady(ctx context.Context, p *process) error {
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, s.opts.StartTimeout, true, func(ctx context.Context) (bool, error) {
		select {
		case <-p.exited:
			return false, fmt.Errorf("mailpit: exited during start-up (%v); log %s:\n%s", p.err, s.logFile, s.logTail())
		default:
		}
		lastErr = s.probe(ctx)
		return lastErr == nil, nil
	})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil: // the caller gave up
		return fmt.Errorf("mailpit: start-up interrupted: %w", ctx.Err())
	case wait.Interrupted(err):
		return fmt.Errorf("mailpit: not ready after %s: %v; log %s:\n%s", s.opts.StartTimeout, lastErr, s.logFile, s.logTail())
	}
	return err
}

func (s *Server) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
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

// Stop ends Mailpit and waits for it to exit, so the SMTP port refuses
// connections when Stop returns: SIGKILL at once, or SIGTERM first when
// Options.StopGrace is set. Stopping a stopped server is a no-op.
func (s *Server) Stop() error {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	defer s.forgetPID()
	if s.opts.StopGrace > 0 {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err == nil {
			select {
			case <-p.exited:
				return nil
			case <-time.After(s.opts.StopGrace):
			}
		}
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
	return s.launch(context.Background())
}

// Close stops Mailpit and removes its directory (database, certificates,
// password file, log) when Start made it; a directory from Options.Dir
// stays.
func (s *Server) Close() error {
	err := s.Stop()
	if rmErr := s.removeDir(); err == nil {
		err = rmErr
	}
	return err
}

func (s *Server) removeDir() error {
	if !s.ownDir {
		return nil
	}
	return os.RemoveAll(s.dir)
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

// Exited is closed when the running Mailpit exits, stopped or not; nil when
// none runs.
func (s *Server) Exited() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return nil
	}
	return s.proc.exited
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
	b, err := os.ReadFile(s.logFile)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// logTail is the end of the log, for errors: a log kept across herald dev
// runs may be long.
func (s *Server) logTail() string {
	const max = 8 << 10
	l := s.Logs()
	if len(l) > max {
		l = "..." + l[len(l)-max:]
	}
	return l
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
