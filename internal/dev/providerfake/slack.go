package providerfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Slack fakes the Web API method chat.postMessage
// (POST {BaseURL}/chat.postMessage with a bot token).
//
// Like Slack it answers nearly everything with HTTP 200 and tells failure
// apart in the body: {"ok": false, "error": "<code>"}. In an ErrorSpec for
// FailNext, Message is that error code (default "internal_error"),
// HTTPStatus the status (default 200; 429 answers "ratelimited" with
// Retry-After as Slack does), and RetryAfter the Retry-After header.
//
// Stricter than Slack: the body must be JSON (Slack also takes form
// posts), and unknown top-level fields are refused.
type Slack struct {
	*Server
	// Token is the bot token the fake expects. Change it only before the
	// first request.
	Token string

	mu sync.Mutex
	// conversationErrors answers posts to these conversations with an
	// error code, every time: an unknown or archived channel stays so.
	conversationErrors map[string]string
}

// NewSlack starts a fake Slack Web API with a fixed test bot token.
func NewSlack(opts ...Option) *Slack {
	s := &Slack{Token: "xoxb-1111111111-2222222222222-herald-test-token", conversationErrors: map[string]string{}}
	s.Server = newServer(http.HandlerFunc(s.serve), opts)
	return s
}

// BaseURL is what a provider's spec.slack.baseURL names: the fake's
// counterpart of https://slack.com/api.
func (s *Slack) BaseURL() string { return s.URL + "/api" }

// RefuseConversation makes every post to the conversation (or user) id
// fail with Slack's error code, e.g. channel_not_found, not_in_channel,
// is_archived or user_not_found.
func (s *Slack) RefuseConversation(id, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conversationErrors[id] = code
}

var slackIDRE = regexp.MustCompile(`^[CGDUW][A-Z0-9]{2,}$`)

const (
	slackTextLimit = 40000
	slackMaxBlocks = 50
)

type slackRequest struct {
	Channel     *string           `json:"channel"`
	Text        *string           `json:"text"`
	Blocks      []json.RawMessage `json:"blocks"`
	UnfurlLinks *bool             `json:"unfurl_links"`
	UnfurlMedia *bool             `json:"unfurl_media"`
	Mrkdwn      *bool             `json:"mrkdwn"`
	ThreadTS    *string           `json:"thread_ts"`
}

func (s *Slack) serve(w http.ResponseWriter, r *http.Request) {
	s.countRequest()
	body, err := readBody(r)
	if err != nil {
		s.reject(r, "reading body: "+err.Error())
		writeSlackError(w, http.StatusOK, "invalid_form_data", "")
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/api/chat.postMessage" {
		s.reject(r, fmt.Sprintf("%s %s, want POST /api/chat.postMessage", r.Method, r.URL.Path))
		// Slack answers an unknown method with 404 and unknown_method.
		writeSlackError(w, http.StatusNotFound, "unknown_method", "")
		return
	}
	auth := r.Header.Get("Authorization")
	switch {
	case auth == "":
		s.reject(r, "no Authorization header")
		writeSlackError(w, http.StatusOK, "not_authed", "")
		return
	case auth != "Bearer "+s.Token:
		s.reject(r, "Authorization is not the bot token")
		writeSlackError(w, http.StatusOK, "invalid_auth", "")
		return
	}
	if mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		s.reject(r, fmt.Sprintf("Content-Type %q, want application/json", r.Header.Get("Content-Type")))
		writeSlackError(w, http.StatusOK, "invalid_form_data", "")
		return
	} else if cs := params["charset"]; cs != "" && !strings.EqualFold(cs, "utf-8") {
		s.reject(r, "charset "+cs+", want utf-8")
		writeSlackError(w, http.StatusOK, "invalid_charset", "")
		return
	}
	msg, code := parseSlack(body)
	if code != "" {
		s.reject(r, "chat.postMessage: "+code)
		writeSlackError(w, http.StatusOK, code, "")
		return
	}
	msg.Header, msg.Body = r.Header.Clone(), body

	if s.playScripted(r, func(spec ErrorSpec) {
		status, code := spec.HTTPStatus, spec.Message
		if status == 0 {
			status = http.StatusOK
		}
		if code == "" {
			code = "internal_error"
			if status == http.StatusTooManyRequests {
				code = "ratelimited"
			}
		}
		writeSlackError(w, status, code, spec.RetryAfter)
	}) {
		return
	}
	s.mu.Lock()
	refusal := s.conversationErrors[msg.To]
	s.mu.Unlock()
	if refusal != "" {
		s.log("%s %s refused conversation %s: %s", r.Method, r.URL.Path, msg.To, refusal)
		writeSlackError(w, http.StatusOK, refusal, "")
		return
	}
	now := time.Now()
	msg.ID = fmt.Sprintf("%d.%06d", now.Unix(), s.nextSeq())
	s.record(r, msg)
	writeJSON(w, http.StatusOK, map[string]any{
		"ok":      true,
		"channel": msg.To,
		"ts":      msg.ID,
		"message": map[string]any{"type": "message", "bot_id": "B0HERALD", "text": msg.Text, "ts": msg.ID},
	})
}

// parseSlack validates a chat.postMessage body and returns the message
// or Slack's error code for it.
func parseSlack(body []byte) (Message, string) {
	var req slackRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Message{}, "invalid_json"
	}
	if req.Channel == nil || *req.Channel == "" {
		return Message{}, "channel_not_found"
	}
	if !slackIDRE.MatchString(*req.Channel) {
		// Slack resolves #names too; herald sends IDs only, and the fake
		// insists on that one form.
		return Message{}, "channel_not_found"
	}
	msg := Message{To: *req.Channel}
	if req.Text != nil {
		msg.Text = *req.Text
	}
	if strings.TrimSpace(msg.Text) == "" && len(req.Blocks) == 0 {
		return Message{}, "no_text"
	}
	if utf8.RuneCountInString(msg.Text) > slackTextLimit {
		return Message{}, "msg_too_long"
	}
	if req.Blocks != nil {
		if len(req.Blocks) == 0 || len(req.Blocks) > slackMaxBlocks {
			return Message{}, "invalid_blocks"
		}
		for _, b := range req.Blocks {
			var typed struct {
				Type string `json:"type"`
			}
			if json.Unmarshal(b, &typed) != nil || typed.Type == "" {
				return Message{}, "invalid_blocks"
			}
		}
	}
	return msg, ""
}

// writeSlackError answers {"ok": false, "error": code}; a 429 carries
// Retry-After, which Slack always sends with it.
func writeSlackError(w http.ResponseWriter, status int, code, retryAfter string) {
	if status == http.StatusTooManyRequests && retryAfter == "" {
		retryAfter = "1"
	}
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeJSON(w, status, map[string]any{"ok": false, "error": code})
}
