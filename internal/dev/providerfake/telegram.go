package providerfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Telegram fakes the Bot API method sendMessage
// (POST {BaseURL}/bot<token>/sendMessage).
//
// Errors have the Bot API's shape: {"ok": false, "error_code": N,
// "description": "...", "parameters": {"retry_after": N}}. In an ErrorSpec
// for FailNext, Code is error_code (default 500, or HTTPStatus), Message
// the description, and RetryAfter parameters.retry_after in seconds.
//
// The token is part of the path: the fake never logs it.
type Telegram struct {
	*Server
	// Token is the bot token the fake expects. Change it only before the
	// first request.
	Token string

	mu sync.Mutex
	// chatErrors answers sends to these chats with an error, every time.
	chatErrors map[string]ErrorSpec
}

// NewTelegram starts a fake Bot API with a fixed test token.
func NewTelegram(opts ...Option) *Telegram {
	t := &Telegram{Token: "7000000001:AAHeraldTestTokenForTheFakeBotApi0", chatErrors: map[string]ErrorSpec{}}
	t.Server = newServer(http.HandlerFunc(t.serve), opts)
	return t
}

// BaseURL is what a provider's spec.telegram.baseURL names.
func (t *Telegram) BaseURL() string { return t.URL }

// BlockBy makes every send to chat fail as when the user blocked the bot:
// 403 "Forbidden: bot was blocked by the user".
func (t *Telegram) BlockBy(chat string) {
	t.refuse(chat, ErrorSpec{Code: 403, Message: "Forbidden: bot was blocked by the user"})
}

// ForgetChat makes every send to chat fail with 400 "Bad Request: chat
// not found", as for a chat the bot never saw.
func (t *Telegram) ForgetChat(chat string) {
	t.refuse(chat, ErrorSpec{Code: 400, Message: "Bad Request: chat not found"})
}

func (t *Telegram) refuse(chat string, spec ErrorSpec) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.chatErrors[chat] = spec
}

const telegramTextLimit = 4096

type telegramRequest struct {
	ChatID             json.RawMessage `json:"chat_id"`
	Text               *string         `json:"text"`
	ParseMode          *string         `json:"parse_mode"`
	LinkPreviewOptions *struct {
		IsDisabled *bool `json:"is_disabled"`
	} `json:"link_preview_options"`
	DisableNotification *bool `json:"disable_notification"`
}

func (t *Telegram) serve(w http.ResponseWriter, r *http.Request) {
	t.countRequest()
	// Log and reject with the token taken out of the path.
	shown := r.Clone(r.Context())
	shown.URL.Path = "/bot<token>/" + r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	body, err := readBody(r)
	if err != nil {
		t.reject(shown, "reading body: "+err.Error())
		writeTelegramError(w, ErrorSpec{Code: 400, Message: "Bad Request: request body could not be read"})
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/bot")
	token, method, _ := strings.Cut(rest, "/")
	switch {
	case !ok || token == "" || method == "":
		t.reject(shown, "path is not /bot<token>/<method>")
		writeTelegramError(w, ErrorSpec{Code: 404, Message: "Not Found"})
		return
	case token != t.Token:
		t.reject(shown, "wrong bot token")
		writeTelegramError(w, ErrorSpec{Code: 401, Message: "Unauthorized"})
		return
	case method != "sendMessage":
		t.reject(shown, "method "+method+", want sendMessage")
		writeTelegramError(w, ErrorSpec{Code: 404, Message: "Not Found: method not found"})
		return
	case r.Method != http.MethodPost:
		t.reject(shown, r.Method+", want POST")
		writeTelegramError(w, ErrorSpec{Code: 400, Message: "Bad Request: use POST"})
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		// The Bot API takes form posts too; herald sends JSON and the fake
		// insists on it.
		t.reject(shown, fmt.Sprintf("Content-Type %q, want application/json", r.Header.Get("Content-Type")))
		writeTelegramError(w, ErrorSpec{Code: 400, Message: "Bad Request: message text is empty"})
		return
	}
	msg, description := parseTelegram(body)
	if description != "" {
		t.reject(shown, description)
		writeTelegramError(w, ErrorSpec{Code: 400, Message: description})
		return
	}
	msg.Header, msg.Body = r.Header.Clone(), body

	if t.playScripted(shown, func(spec ErrorSpec) { writeTelegramError(w, spec) }) {
		return
	}
	t.mu.Lock()
	refusal, refused := t.chatErrors[msg.To]
	t.mu.Unlock()
	if refused {
		t.log("%s %s refused chat %s: %s", r.Method, shown.URL.Path, msg.To, refusal.Message)
		writeTelegramError(w, refusal)
		return
	}
	id := t.nextSeq()
	msg.ID = strconv.Itoa(id)
	t.record(shown, msg)
	chatID := any(msg.To)
	if n, err := strconv.ParseInt(msg.To, 10, 64); err == nil {
		chatID = n
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"ok": true,
		"result": map[string]any{
			"message_id": id,
			"from":       map[string]any{"id": 7000000001, "is_bot": true, "first_name": "Herald", "username": "herald_test_bot"},
			"chat":       map[string]any{"id": chatID, "type": "private"},
			"date":       time.Now().Unix(),
			"text":       msg.Text,
		},
	})
}

// parseTelegram validates a sendMessage body and returns the message or
// the Bot API's description of what is wrong.
func parseTelegram(body []byte) (Message, string) {
	var req telegramRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Message{}, "Bad Request: can't parse JSON: " + err.Error()
	}
	var chat string
	var n int64
	var name string
	switch {
	case len(req.ChatID) == 0:
		return Message{}, "Bad Request: chat_id is empty"
	case json.Unmarshal(req.ChatID, &n) == nil:
		chat = strconv.FormatInt(n, 10)
	case json.Unmarshal(req.ChatID, &name) == nil && strings.HasPrefix(name, "@") && len(name) > 5:
		chat = name
	case json.Unmarshal(req.ChatID, &name) == nil:
		// A numeric ID sent as a string is accepted by Telegram; herald
		// sends numbers, and the fake insists on that one form.
		return Message{}, "Bad Request: chat not found"
	default:
		return Message{}, "Bad Request: chat_id is not an Integer or a String"
	}
	if req.Text == nil || strings.TrimSpace(*req.Text) == "" {
		return Message{}, "Bad Request: message text is empty"
	}
	if utf8.RuneCountInString(*req.Text) > telegramTextLimit {
		return Message{}, "Bad Request: message is too long"
	}
	if req.ParseMode != nil {
		switch *req.ParseMode {
		case "HTML", "MarkdownV2", "Markdown":
		default:
			return Message{}, "Bad Request: unsupported parse_mode"
		}
		if *req.ParseMode == "HTML" && strings.Count(*req.Text, "<") != strings.Count(*req.Text, ">") {
			return Message{}, "Bad Request: can't parse entities: Unclosed start tag"
		}
	}
	return Message{To: chat, Text: *req.Text}, ""
}

// writeTelegramError answers in the Bot API's error shape; the HTTP status
// is error_code.
func writeTelegramError(w http.ResponseWriter, spec ErrorSpec) {
	code := spec.Code
	if code == 0 {
		code = spec.HTTPStatus
	}
	if code == 0 {
		code = http.StatusInternalServerError
	}
	status := spec.HTTPStatus
	if status == 0 {
		status = code
	}
	description := spec.Message
	if description == "" {
		description = http.StatusText(code)
		if code == http.StatusTooManyRequests {
			description = "Too Many Requests: retry after " + spec.RetryAfter
		}
	}
	out := map[string]any{"ok": false, "error_code": code, "description": description}
	if spec.RetryAfter != "" {
		if secs, err := strconv.Atoi(spec.RetryAfter); err == nil {
			out["parameters"] = map[string]any{"retry_after": secs}
		}
	}
	writeJSON(w, status, out)
}
