package mailpit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Address is a mailbox as Mailpit reports it.
type Address struct {
	Name    string
	Address string
}

// MessageSummary is one entry of the message list (GET /api/v1/messages).
type MessageSummary struct {
	// ID is Mailpit's database ID, used with Message. It is also what the
	// SMTP server returns in "250 2.0.0 Ok: queued as <ID>".
	ID string
	// MessageID is the Message-ID header without angle brackets.
	MessageID string
	From      *Address
	To        []Address
	Cc        []Address
	Bcc       []Address
	ReplyTo   []Address
	Subject   string
	Created   time.Time
	// Username is the SMTP AUTH user that submitted the message, if any.
	Username string
	Snippet  string
	Size     uint64
}

// Message is a received message in full (GET /api/v1/message/{id}) plus its
// raw headers (GET /api/v1/message/{id}/headers).
type Message struct {
	ID         string
	MessageID  string
	From       *Address
	To         []Address
	Cc         []Address
	Bcc        []Address
	ReplyTo    []Address
	ReturnPath string
	Subject    string
	Date       time.Time
	Username   string
	Text       string
	HTML       string
	Size       uint64
	// Headers are the message's header fields, keyed by canonical MIME
	// name (for example "Message-Id", "X-Herald-Delivery"), values as sent.
	Headers map[string][]string `json:"-"`
}

// Header returns the first value of the named header field (any case), or "".
func (m *Message) Header(name string) string {
	return textproto.MIMEHeader(m.Headers).Get(name)
}

// Messages lists received messages, newest first (at most 1000).
func (s *Server) Messages(ctx context.Context) ([]MessageSummary, error) {
	var out struct {
		Messages []MessageSummary `json:"messages"`
	}
	if err := s.do(ctx, http.MethodGet, "/api/v1/messages?limit=1000", nil, &out); err != nil {
		return nil, err
	}
	return out.Messages, nil
}

// Message fetches one message with its bodies and headers.
func (s *Server) Message(ctx context.Context, id string) (*Message, error) {
	var m Message
	path := "/api/v1/message/" + url.PathEscape(id)
	if err := s.do(ctx, http.MethodGet, path, nil, &m); err != nil {
		return nil, err
	}
	if err := s.do(ctx, http.MethodGet, path+"/headers", nil, &m.Headers); err != nil {
		return nil, err
	}
	return &m, nil
}

// WaitForMessage polls the message list until a message satisfies match and
// returns it. It gives up when ctx ends, so callers bound the wait with a
// context deadline. SMTP delivery is synchronous (the message is stored
// before "250 queued"), so the first poll normally succeeds; polling just
// keeps tests independent of that detail.
func (s *Server) WaitForMessage(ctx context.Context, match func(MessageSummary) bool) (MessageSummary, error) {
	var found MessageSummary
	var last error
	err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		msgs, err := s.Messages(ctx)
		if err != nil {
			last = err
			return false, nil
		}
		for _, m := range msgs {
			if match(m) {
				found = m
				return true, nil
			}
		}
		last = fmt.Errorf("%d messages, none matched", len(msgs))
		return false, nil
	})
	if err != nil {
		return MessageSummary{}, fmt.Errorf("mailpit: waiting for message: %w (last: %v)", ctx.Err(), last)
	}
	return found, nil
}

// DeleteAll deletes every stored message.
func (s *Server) DeleteAll(ctx context.Context) error {
	return s.do(ctx, http.MethodDelete, "/api/v1/messages", nil, nil)
}

// Trigger makes one SMTP stage fail with ErrorCode (400-599) in Probability
// percent (0-100) of attempts. The zero value is "never".
type Trigger struct {
	ErrorCode   int
	Probability int
}

// Always returns a trigger that fails every attempt with code.
func Always(code int) Trigger { return Trigger{ErrorCode: code, Probability: 100} }

// Chaos is Mailpit's set of failure triggers (PUT /api/v1/chaos). Mailpit
// answers the SMTP command with just "<code> Chaos ... error", without an
// enhanced status code.
type Chaos struct {
	// Sender fails MAIL FROM.
	Sender Trigger
	// Recipient fails RCPT TO.
	Recipient Trigger
	// Authentication fails AUTH (only when the server requires AUTH).
	Authentication Trigger
}

// SetChaos replaces all chaos triggers; triggers left zero are switched off,
// so SetChaos(ctx, Chaos{}) turns chaos off. The server must have been
// started with Options.Chaos.
func (s *Server) SetChaos(ctx context.Context, c Chaos) error {
	return s.do(ctx, http.MethodPut, "/api/v1/chaos", c, nil)
}

// do sends a JSON request to the API and decodes a JSON response into out
// (when out is non-nil). Mailpit reports API errors as plain text with a
// non-2xx status; that text is included in the error.
func (s *Server) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.APIURL()+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("mailpit: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("mailpit: %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(msg))
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("mailpit: %s %s: decode response: %w", method, path, err)
	}
	return nil
}
