// Package email delivers channel messages over SMTP.
//
// Each Send opens its own SMTP connection, sends one message and quits.
// Notifications are infrequent compared with what a pooled connection would
// save, and a fresh connection keeps every attempt independent: no state
// leaks from a failed transaction into the next one, a server restart or a
// changed DNS record is picked up at once, idle connections are never
// dropped under us, and concurrent Sends need no locking.
package email

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"strconv"
	"strings"
	"sync"
	"time"

	mail "github.com/wneessen/go-mail"

	"github.com/herald-dev/herald/internal/channel"
)

// TLSMode is how the connection to the SMTP server is secured.
type TLSMode string

const (
	// TLSNone sends in clear text. Only for relays on a trusted network.
	TLSNone TLSMode = "None"
	// TLSStartTLS connects in clear text and upgrades with STARTTLS before
	// anything else is sent; a server that does not offer STARTTLS is an
	// error (no silent downgrade). Usually port 587.
	TLSStartTLS TLSMode = "STARTTLS"
	// TLSImplicit speaks TLS from the first byte. Usually port 465.
	TLSImplicit TLSMode = "ImplicitTLS"
)

// Config configures a Sender for one SMTP provider.
type Config struct {
	Host string
	Port int
	// TLS defaults to TLSStartTLS when empty.
	TLS TLSMode
	// Username and Password enable SMTP AUTH. The mechanism is chosen from
	// what the server offers (SCRAM, CRAM-MD5, PLAIN, LOGIN); PLAIN and
	// LOGIN are only used inside TLS (or to localhost), so credentials with
	// TLSNone usually fail with a Permanent, ProviderFault error.
	Username string
	Password string
	// CAPEM holds extra PEM CA certificates to trust besides the system
	// roots, for servers with a private CA.
	CAPEM []byte
	// InsecureSkipVerify disables certificate verification. For testing.
	InsecureSkipVerify bool
	// From is the sender, "addr@example.com" or "Name <addr@example.com>".
	// It is also the envelope sender (MAIL FROM).
	From string
	// ReplyTo is an optional Reply-To address in the same format.
	ReplyTo string
	// HeloName is the name sent in EHLO; empty means this host's name.
	HeloName string
	// Dial opens the TCP connection to the server. Nil means a plain
	// net.Dialer; the factory passes the egress policy's dialer, which
	// refuses addresses the policy does not allow.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Sender is a channel.Sender over SMTP. It is safe for concurrent use.
type Sender struct {
	cfg       Config
	from      *netmail.Address
	replyTo   *netmail.Address
	tlsConfig *tls.Config

	// dialContext opens the TCP connection; tests replace it to prove that
	// a Send did no network I/O.
	dialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

var _ channel.Sender = (*Sender)(nil)

// defaultIOTimeout bounds each SMTP read and write when the caller's context
// has no deadline. With a deadline, the deadline bounds the whole attempt.
const defaultIOTimeout = 60 * time.Second

// messageIDDomain is the right-hand side of generated Message-IDs.
const messageIDDomain = "herald"

// New validates cfg and returns a Sender. It does not contact the server.
func New(cfg Config) (*Sender, error) {
	if cfg.TLS == "" {
		cfg.TLS = TLSStartTLS
	}
	switch cfg.TLS {
	case TLSNone, TLSStartTLS, TLSImplicit:
	default:
		return nil, fmt.Errorf("email: unknown TLS mode %q (want %s, %s or %s)", cfg.TLS, TLSNone, TLSStartTLS, TLSImplicit)
	}
	cfg.Host = strings.TrimSpace(cfg.Host)
	if cfg.Host == "" {
		return nil, errors.New("email: host is required")
	}
	if strings.ContainsAny(cfg.Host, "/: \t\r\n") && net.ParseIP(cfg.Host) == nil {
		return nil, fmt.Errorf("email: host %q must be a host name or IP address, without scheme or port", cfg.Host)
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("email: port %d out of range 1-65535", cfg.Port)
	}
	if cfg.Password != "" && cfg.Username == "" {
		return nil, errors.New("email: password set without username")
	}
	if strings.ContainsAny(cfg.HeloName, " \t\r\n") {
		return nil, fmt.Errorf("email: HELO name %q must not contain white space", cfg.HeloName)
	}
	from, err := netmail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("email: from address %q: %w", cfg.From, err)
	}
	s := &Sender{cfg: cfg, from: from, dialContext: cfg.Dial}
	if s.dialContext == nil {
		s.dialContext = (&net.Dialer{}).DialContext
	}
	if cfg.ReplyTo != "" {
		if s.replyTo, err = netmail.ParseAddress(cfg.ReplyTo); err != nil {
			return nil, fmt.Errorf("email: reply-to address %q: %w", cfg.ReplyTo, err)
		}
	}

	s.tlsConfig = &tls.Config{
		ServerName:         cfg.Host,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: cfg.InsecureSkipVerify, //nolint:gosec // explicit opt-in, documented as for testing
	}
	if len(cfg.CAPEM) > 0 {
		// Extend, not replace, the system roots: adding a private CA must
		// not break a provider that later moves to a public certificate.
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(cfg.CAPEM) {
			return nil, errors.New("email: CA PEM contains no certificate")
		}
		s.tlsConfig.RootCAs = pool
	}
	return s, nil
}

// Send delivers msg to msg.Recipient.Email.
//
// Errors are *channel.Error (see classify.go). The recipient address is
// checked before any network I/O, so an unusable address costs nothing and
// is reported as InvalidAddress.
//
// A message counts as sent once the server has accepted the DATA; a failure
// after that (RSET, QUIT, a dropped connection) does not turn it into an
// error, because a retry would deliver it twice. The reverse case (the
// connection breaks before the acceptance reaches us) can cause a duplicate
// on retry; the Message-ID is derived from msg.ID so receivers can spot it.
func (s *Sender) Send(ctx context.Context, msg *channel.Message) (channel.Result, error) {
	if msg == nil {
		return channel.Result{}, channel.NewPermanent("", errors.New("email: nil message"))
	}
	rcpt, err := recipientAddress(msg.Recipient)
	if err != nil {
		return channel.Result{}, channel.NewInvalidAddress(err)
	}
	m := s.buildMessage(msg, rcpt)
	if ctx.Err() != nil {
		return channel.Result{}, classify(ctx, ctx.Err())
	}

	d := &dialer{sendCtx: ctx, dial: s.dialContext, addr: net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))}
	if s.cfg.TLS == TLSImplicit {
		d.tlsConfig = s.tlsConfig
	}
	defer d.closeAll()

	client, err := mail.NewClient(s.cfg.Host, s.clientOptions(ctx, d)...)
	if err != nil {
		// Only invalid options get here, which New should have caught.
		return channel.Result{}, channel.NewPermanent("", fmt.Errorf("email: configure client: %w", err))
	}
	sendErr := client.DialAndSendWithContext(ctx, m)
	if m.IsDelivered() {
		return channel.Result{ProviderMessageID: queueID(m.ServerResponse())}, nil
	}
	if sendErr == nil {
		// Not reachable with go-mail v0.8.1; be safe rather than claim success.
		sendErr = errors.New("email: server did not confirm delivery")
	}
	return channel.Result{}, classify(ctx, fmt.Errorf("email: send to %s via %s: %w", rcpt.Address, net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port)), sendErr))
}

func (s *Sender) clientOptions(ctx context.Context, d *dialer) []mail.Option {
	// go-mail applies this timeout to the dial and then afresh to every
	// SMTP command, so it cannot enforce an overall deadline by itself; the
	// dialer closes the connection when ctx ends. Using the time left as
	// the per-command timeout as well makes a silent server time out at the
	// deadline even if ctx were not cancelled promptly.
	timeout := defaultIOTimeout
	if deadline, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(deadline), time.Millisecond)
	}
	opts := []mail.Option{
		mail.WithPort(s.cfg.Port),
		mail.WithTimeout(timeout),
		mail.WithDialContextFunc(d.dialContext),
		mail.WithTLSConfig(s.tlsConfig),
		// The connection is brand new; go-mail's NOOP liveness check
		// before MAIL FROM would only add a round trip.
		mail.WithoutNoop(),
	}
	switch s.cfg.TLS {
	case TLSStartTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	default:
		// TLSNone, and TLSImplicit where the dialer already did the TLS
		// handshake and STARTTLS must not be attempted inside it.
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	}
	if s.cfg.HeloName != "" {
		opts = append(opts, mail.WithHELO(s.cfg.HeloName))
	}
	if s.cfg.Username != "" {
		// Opportunistic with an explicit preference list rather than
		// go-mail's auto-discovery: auto-discovery decides "is the session
		// encrypted" from its own dialling and so would refuse PLAIN/LOGIN
		// over our implicit-TLS connection. PLAIN and LOGIN still check the
		// connection really is TLS (smtp.ErrUnencrypted otherwise).
		opts = append(opts,
			mail.WithOpportunisticSMTPAuth(
				mail.SMTPAuthSCRAMSHA256PLUS, mail.SMTPAuthSCRAMSHA256,
				mail.SMTPAuthSCRAMSHA1PLUS, mail.SMTPAuthSCRAMSHA1,
				mail.SMTPAuthCramMD5, mail.SMTPAuthPlain, mail.SMTPAuthLogin,
			),
			mail.WithUsername(s.cfg.Username),
			mail.WithPassword(s.cfg.Password),
		)
	}
	return opts
}

// recipientAddress parses the recipient's address. A display name in the
// address itself is tolerated; Recipient.DisplayName wins when set.
func recipientAddress(r channel.Recipient) (*netmail.Address, error) {
	raw := strings.TrimSpace(r.Email)
	if raw == "" {
		return nil, fmt.Errorf("recipient %q has no email address", r.Name)
	}
	addr, err := netmail.ParseAddress(raw)
	if err != nil {
		return nil, fmt.Errorf("recipient %q email address %q is not valid: %w", r.Name, raw, err)
	}
	if r.DisplayName != "" {
		addr.Name = r.DisplayName
	}
	return addr, nil
}

func (s *Sender) buildMessage(msg *channel.Message, rcpt *netmail.Address) *mail.Msg {
	m := mail.NewMsg()
	m.FromMailAddress(s.from)
	m.ToMailAddress(rcpt)
	if s.replyTo != nil {
		m.ReplyToMailAddress(s.replyTo)
	}

	subject, text, html := msg.Title, msg.Body, ""
	if e := msg.Email; e != nil {
		if e.Subject != "" {
			subject = e.Subject
		}
		if e.Text != "" {
			text = e.Text
		}
		html = e.HTML
	}
	m.Subject(headerValue(subject))
	switch {
	case html != "" && text != "":
		m.SetBodyString(mail.TypeTextPlain, text)
		m.AddAlternativeString(mail.TypeTextHTML, html)
	case html != "":
		m.SetBodyString(mail.TypeTextHTML, html)
	default:
		m.SetBodyString(mail.TypeTextPlain, text)
	}

	if id := messageID(msg.ID); id != "" {
		m.SetMessageIDWithValue(id)
	}
	if msg.Delivery != "" {
		m.SetGenHeader("X-Herald-Delivery", headerValue(qualified(msg.Namespace, msg.Delivery)))
	}
	if msg.Notification != "" {
		m.SetGenHeader("X-Herald-Notification", headerValue(msg.Notification))
	}
	if msg.Category != "" {
		m.SetGenHeader("X-Herald-Category", headerValue(msg.Category))
	}
	// RFC 3834: tell auto-responders (vacation replies) not to answer.
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	m.SetUserAgent("herald")
	return m
}

func qualified(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// headerValue removes line breaks, which would otherwise start a new header
// field (header injection); go-mail does not strip them.
func headerValue(v string) string {
	return strings.Join(strings.FieldsFunc(v, func(r rune) bool { return r == '\r' || r == '\n' }), " ")
}

// messageID turns msg.ID into the left part of a Message-ID, "<id@herald>".
// The same ID on every attempt lets receivers recognise a repeat. IDs that
// are not a dot-atom (RFC 5322 3.6.4; Kubernetes UIDs always are) are
// replaced by a hash so the result stays stable and valid. Empty means
// "let go-mail generate a random one".
func messageID(id string) string {
	if id == "" {
		return ""
	}
	if !isDotAtom(id) {
		sum := sha256.Sum256([]byte(id))
		id = hex.EncodeToString(sum[:16])
	}
	return id + "@" + messageIDDomain
}

func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// queueID extracts the server's identifier from its reply to DATA, for
// example "2.0.0 Ok: queued as 4Fz1" (Postfix, Mailpit) -> "4Fz1". Servers
// that do not follow that convention get the whole reply text, which is
// still what an operator needs to find the message in the server's logs.
func queueID(reply string) string {
	reply = strings.TrimSpace(reply)
	if _, after, ok := strings.Cut(reply, "queued as "); ok {
		if f := strings.Fields(after); len(f) > 0 {
			return f[0]
		}
	}
	return reply
}

// dialer opens the connection for one Send. It ties the connection to the
// Send's context: go-mail only uses the context for dialling and bounds
// later reads and writes by its own timeout, so without this a cancelled
// attempt would keep waiting on a silent server. It also closes connections
// go-mail leaves open when the session set-up (EHLO, STARTTLS, AUTH) fails.
type dialer struct {
	sendCtx   context.Context
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)
	addr      string      // host:port, bracketed for IPv6 (go-mail's own is not)
	tlsConfig *tls.Config // non-nil for implicit TLS

	mu    sync.Mutex
	conns []net.Conn
	stops []func() bool
}

func (d *dialer) dialContext(ctx context.Context, network, _ string) (net.Conn, error) {
	raw, err := d.dial(ctx, network, d.addr)
	if err != nil {
		return nil, err
	}
	// Closing the socket is the only way to interrupt a blocked read.
	stop := context.AfterFunc(d.sendCtx, func() { _ = raw.Close() })
	d.mu.Lock()
	d.conns = append(d.conns, raw)
	d.stops = append(d.stops, stop)
	d.mu.Unlock()

	if d.tlsConfig == nil {
		return raw, nil
	}
	// Return the *tls.Conn itself: go-mail's SMTP client recognises a TLS
	// session by that type and only then allows PLAIN/LOGIN.
	tc := tls.Client(raw, d.tlsConfig)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, err
	}
	return tc, nil
}

func (d *dialer) closeAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, stop := range d.stops {
		stop()
	}
	for _, c := range d.conns {
		_ = c.Close() // usually already closed by QUIT
	}
}
