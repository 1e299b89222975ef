// Package providerfake provides contract servers for the providers Herald
// sends to, built on httptest.Server: WhatsApp (Meta Cloud API, Twilio,
// WAHA), Slack (chat.postMessage), Microsoft Teams (Workflows webhooks) and
// Telegram (Bot API sendMessage).
//
// Each fake checks requests the way the real provider documents them:
// method, path, credentials, content type and body fields. A malformed request
// is answered in the provider's own error shape (400 for bad input, 401 for
// bad credentials, 404 for unknown resources), so a client that drifts from
// the wire format fails its tests instead of passing against a lenient stub.
// In a few places the fakes are stricter than the provider and require the
// one canonical form herald's clients send (for example digits-only numbers
// for Meta); those places say so.
//
// Accepted messages are recorded and can be awaited with WaitForMessages.
// FailNext scripts documented error answers and StallNext makes requests hang
// until the client gives up, for timeout tests. The servers are safe for
// concurrent use and can also back a local development sink through
// WithListener and WithLogf.
package providerfake

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// ErrorSpec describes a scripted error answer. Zero fields take
// provider-specific defaults: the documented HTTP status and message for
// Code.
type ErrorSpec struct {
	// HTTPStatus of the answer.
	HTTPStatus int
	// Code is the provider's error code (Meta error.code, Twilio code).
	// WAHA has no codes and ignores it.
	Code int
	// Message is the human-readable message (Meta error.message, Twilio
	// message, WAHA message).
	Message string
	// Details is Meta's error.error_data.details.
	Details string
	// Type is Meta's error.type; default OAuthException.
	Type string
	// RetryAfter, when set, is sent verbatim as the Retry-After header.
	RetryAfter string
	// SessionStatus makes WAHA answer 422 "Session status is not as
	// expected" with this session status (STARTING, SCAN_QR_CODE, FAILED,
	// STOPPED).
	SessionStatus string
}

// Message is one message a fake accepted.
type Message struct {
	// ID is the provider message ID the fake answered with.
	ID string
	// To is the recipient in E.164 (with +), decoded from the provider's
	// own addressing (Meta digits, Twilio whatsapp:+..., WAHA ...@c.us).
	To string
	// Text is the free-form text (Meta text.body, Twilio Body, WAHA text).
	Text string

	// Meta.
	PreviewURL       bool
	TemplateName     string
	TemplateLanguage string
	TemplateParams   []string

	// Twilio.
	From             string
	ContentSID       string
	ContentVariables map[string]string

	// WAHA.
	Session string
	ChatID  string

	// Header and Body are the raw request.
	Header http.Header
	Body   []byte
}

// Option configures a fake server.
type Option func(*options)

type options struct {
	listener net.Listener
	logf     func(format string, args ...any)
}

// WithListener serves on l instead of a random loopback port, so a
// development sink can listen on a fixed address.
func WithListener(l net.Listener) Option {
	return func(o *options) { o.listener = l }
}

// WithLogf logs every request's outcome, for example through t.Logf or
// log.Printf.
func WithLogf(logf func(format string, args ...any)) Option {
	return func(o *options) { o.logf = logf }
}

// Server is the part common to all fakes: the HTTP server, the record of
// accepted messages and the script of failures.
type Server struct {
	*httptest.Server

	logf func(format string, args ...any)

	mu         sync.Mutex
	messages   []Message
	requests   int
	rejections []string
	script     []step
	seq        int
	// changed is closed and replaced whenever a message is recorded, waking
	// every WaitForMessages without polling.
	changed chan struct{}

	stop     chan struct{}
	stopOnce sync.Once
}

type step struct {
	stall bool
	err   ErrorSpec
}

func newServer(h http.Handler, opts []Option) *Server {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	s := &Server{
		logf:    o.logf,
		changed: make(chan struct{}),
		stop:    make(chan struct{}),
	}
	s.Server = httptest.NewUnstartedServer(h)
	if o.listener != nil {
		_ = s.Server.Listener.Close()
		s.Server.Listener = o.listener
	}
	s.Server.Start()
	return s
}

// Close releases stalled requests and shuts the server down.
func (s *Server) Close() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.Server.Close()
}

// Messages returns the messages accepted so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// WaitForMessages blocks until at least n messages were accepted and returns
// them, or returns ctx's error together with the messages so far.
func (s *Server) WaitForMessages(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		if len(s.messages) >= n {
			out := append([]Message(nil), s.messages...)
			s.mu.Unlock()
			return out, nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return s.Messages(), ctx.Err()
		}
	}
}

// Requests counts every HTTP request that reached the server, accepted,
// rejected or scripted.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Rejections lists why malformed requests were refused, oldest first. A
// test that expects a clean exchange can assert it is empty.
func (s *Server) Rejections() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.rejections...)
}

// FailNext answers the next k well-formed requests with spec instead of
// accepting them. Malformed requests are still refused as malformed and do
// not use up the script. Calls queue behind earlier FailNext and StallNext
// calls.
func (s *Server) FailNext(k int, spec ErrorSpec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range k {
		s.script = append(s.script, step{err: spec})
	}
}

// StallNext makes the next k well-formed requests hang without an answer
// until the client gives up or the server is closed.
func (s *Server) StallNext(k int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range k {
		s.script = append(s.script, step{stall: true})
	}
}

func (s *Server) countRequest() {
	s.mu.Lock()
	s.requests++
	s.mu.Unlock()
}

func (s *Server) reject(r *http.Request, reason string) {
	s.mu.Lock()
	s.rejections = append(s.rejections, reason)
	s.mu.Unlock()
	s.log("%s %s rejected: %s", r.Method, r.URL.Path, reason)
}

// next pops the next scripted step, if any.
func (s *Server) next() (step, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.script) == 0 {
		return step{}, false
	}
	st := s.script[0]
	s.script = s.script[1:]
	return st, true
}

// playScripted plays the next scripted step, if there is one: it stalls r,
// or answers with the scripted error through answer, which writes it in
// the provider's own shape. It reports whether a step was played, after
// which the handler is done. r is the request as logs may show it: fakes
// whose path carries a credential pass a redacted copy.
func (s *Server) playScripted(r *http.Request, answer func(ErrorSpec)) bool {
	st, ok := s.next()
	if !ok {
		return false
	}
	if st.stall {
		s.stall(r)
	}
	s.log("%s %s answered scripted error (HTTP %d, code %d %s)", r.Method, r.URL.Path, st.err.HTTPStatus, st.err.Code, st.err.Message)
	answer(st.err)
	return true
}

// stall holds the request until the client disconnects or Close is called,
// then aborts the connection: returning normally would send an empty 200,
// which a client could mistake for an accepted message.
func (s *Server) stall(r *http.Request) {
	s.log("%s %s stalled", r.Method, r.URL.Path)
	select {
	case <-r.Context().Done():
	case <-s.stop:
	}
	panic(http.ErrAbortHandler)
}

// nextSeq returns a per-server sequence number for message IDs.
func (s *Server) nextSeq() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return s.seq
}

func (s *Server) record(r *http.Request, m Message) {
	s.mu.Lock()
	s.messages = append(s.messages, m)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	s.log("%s %s accepted message %s to %s", r.Method, r.URL.Path, m.ID, m.To)
}

func (s *Server) log(format string, args ...any) {
	if s.logf != nil {
		s.logf("providerfake: "+format, args...)
	}
}

// readBody reads a request body with a bound: no provider accepts more than
// a few kilobytes of message, and a runaway client must not exhaust memory.
func readBody(r *http.Request) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r.Body, 1<<20))
}

// stamp is the time used in fake responses.
func stamp() time.Time { return time.Now().UTC() }
