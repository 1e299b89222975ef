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
)

// WAHAIDStyle selects how the fake WAHA reports the sent message's ID; the
// engines differ.
type WAHAIDStyle int

const (
	// WAHAIDString answers "id": "true_<chatId>_<id>" (the documented
	// schema; GOWS).
	WAHAIDString WAHAIDStyle = iota
	// WAHAIDObject answers "id": {"fromMe":..,"remote":..,"id":..,
	// "_serialized":..} (WEBJS).
	WAHAIDObject
	// WAHAIDKey answers a Baileys message with "key": {"id":..} and no top
	// level id (NOWEB). Message.ID is then the key id.
	WAHAIDKey
)

// WAHA fakes a WAHA server's POST /api/sendText.
type WAHA struct {
	*Server
	// APIKey is the expected X-Api-Key; empty disables the check, as on a
	// WAHA started without WAHA_API_KEY. Session is the only session that
	// exists. Change them only before the first request.
	APIKey  string
	Session string

	styleMu sync.Mutex
	style   WAHAIDStyle
}

// NewWAHA starts a fake WAHA with an API key and the "default" session.
func NewWAHA(opts ...Option) *WAHA {
	w := &WAHA{APIKey: "test-waha-api-key", Session: "default"}
	w.Server = newServer(http.HandlerFunc(w.serve), opts)
	return w
}

// SetIDStyle changes the shape of subsequent success answers.
func (w *WAHA) SetIDStyle(s WAHAIDStyle) {
	w.styleMu.Lock()
	defer w.styleMu.Unlock()
	w.style = s
}

func (w *WAHA) idStyle() WAHAIDStyle {
	w.styleMu.Lock()
	defer w.styleMu.Unlock()
	return w.style
}

type wahaRequest struct {
	Session *string `json:"session"`
	ChatID  *string `json:"chatId"`
	Text    *string `json:"text"`
}

// WAHA also accepts group and other chat IDs; herald only sends to people,
// so the fake insists on <digits>@c.us.
var wahaChatIDRE = regexp.MustCompile(`^[1-9][0-9]{6,14}@c\.us$`)

func (w *WAHA) serve(rw http.ResponseWriter, r *http.Request) {
	w.countRequest()
	body, err := readBody(r)
	if err != nil {
		w.reject(r, "reading body: "+err.Error())
		writeWAHAError(rw, ErrorSpec{HTTPStatus: http.StatusBadRequest, Message: err.Error()})
		return
	}

	// WAHA's API key guard runs before routing.
	if w.APIKey != "" && r.Header.Get("X-Api-Key") != w.APIKey {
		w.reject(r, fmt.Sprintf("X-Api-Key %q not accepted", r.Header.Get("X-Api-Key")))
		writeJSON(rw, http.StatusUnauthorized, map[string]any{"message": "Unauthorized", "statusCode": http.StatusUnauthorized})
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/api/sendText" {
		w.reject(r, fmt.Sprintf("%s %s, want POST /api/sendText", r.Method, r.URL.Path))
		writeWAHAError(rw, ErrorSpec{HTTPStatus: http.StatusNotFound, Message: fmt.Sprintf("Cannot %s %s", r.Method, r.URL.Path)})
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		w.reject(r, fmt.Sprintf("Content-Type %q, want application/json", r.Header.Get("Content-Type")))
		writeValidationError(rw, "chatId must be a string", "text must be a string")
		return
	}
	var req wahaRequest
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&req); err != nil {
		w.reject(r, "JSON body: "+err.Error())
		writeWAHAError(rw, ErrorSpec{HTTPStatus: http.StatusBadRequest, Message: "Unexpected token in JSON: " + err.Error()})
		return
	}
	session := "default" // WAHA's DTO default
	if req.Session != nil {
		session = *req.Session
	}
	var problems []string
	if req.ChatID == nil || !wahaChatIDRE.MatchString(*req.ChatID) {
		problems = append(problems, "chatId must be the recipient's number with country code followed by @c.us")
	}
	if req.Text == nil || strings.TrimSpace(*req.Text) == "" {
		problems = append(problems, "text should not be empty")
	}
	if len(problems) > 0 {
		w.reject(r, strings.Join(problems, "; "))
		writeValidationError(rw, problems...)
		return
	}
	if session != w.Session {
		w.reject(r, fmt.Sprintf("session %q does not exist", session))
		writeWAHAError(rw, ErrorSpec{HTTPStatus: http.StatusNotFound, Message: fmt.Sprintf(
			"We didn't find a session with name '%s'.\nPlease start it first by using POST /api/sessions/%s/start request", session, session)})
		return
	}
	msg := Message{
		To:      "+" + strings.TrimSuffix(*req.ChatID, "@c.us"),
		Text:    *req.Text,
		Session: session,
		ChatID:  *req.ChatID,
		Header:  r.Header.Clone(),
		Body:    body,
	}

	if w.playScripted(r, func(spec ErrorSpec) {
		if spec.SessionStatus == "" {
			writeWAHAError(rw, spec)
			return
		}
		if spec.HTTPStatus == 0 {
			spec.HTTPStatus = http.StatusUnprocessableEntity
		}
		if spec.RetryAfter != "" {
			rw.Header().Set("Retry-After", spec.RetryAfter)
		}
		writeJSON(rw, spec.HTTPStatus, map[string]any{
			"error":    "Session status is not as expected. Try again later or restart the session",
			"session":  session,
			"status":   spec.SessionStatus,
			"expected": []string{"WORKING"},
		})
	}) {
		return
	}

	short := fmt.Sprintf("3EB0%016X", w.nextSeq())
	serialized := "true_" + msg.ChatID + "_" + short
	ts := stamp().Unix()
	var answer map[string]any
	switch w.idStyle() {
	case WAHAIDKey:
		msg.ID = short
		answer = map[string]any{
			"key": map[string]any{
				"remoteJid": strings.TrimSuffix(msg.ChatID, "@c.us") + "@s.whatsapp.net",
				"fromMe":    true,
				"id":        short,
			},
			"message":          map[string]any{"extendedTextMessage": map[string]any{"text": msg.Text}},
			"messageTimestamp": fmt.Sprint(ts),
			"status":           "PENDING",
		}
	case WAHAIDObject:
		msg.ID = serialized
		answer = map[string]any{
			"id": map[string]any{
				"fromMe":      true,
				"remote":      msg.ChatID,
				"id":          short,
				"_serialized": serialized,
			},
			"body": msg.Text, "type": "chat", "timestamp": ts,
			"from": msg.ChatID, "to": msg.ChatID, "fromMe": true, "ack": 0, "hasMedia": false,
		}
	default:
		msg.ID = serialized
		answer = map[string]any{
			"id": serialized, "timestamp": ts, "from": msg.ChatID, "fromMe": true,
			"to": msg.ChatID, "body": msg.Text, "hasMedia": false, "ack": 1, "ackName": "SERVER",
		}
	}
	w.record(r, msg)
	writeJSON(rw, http.StatusCreated, answer)
}

// writeWAHAError answers in the shape of NestJS's HttpException, which WAHA
// passes through: {"statusCode", "message", "error"}.
func writeWAHAError(w http.ResponseWriter, spec ErrorSpec) {
	status := spec.HTTPStatus
	if status == 0 {
		status = http.StatusInternalServerError
	}
	message := spec.Message
	if message == "" {
		message = http.StatusText(status)
	}
	if spec.RetryAfter != "" {
		w.Header().Set("Retry-After", spec.RetryAfter)
	}
	writeJSON(w, status, map[string]any{"statusCode": status, "message": message, "error": http.StatusText(status)})
}

// writeValidationError answers like NestJS's ValidationPipe: 400 with the
// list of failed constraints as message.
func writeValidationError(w http.ResponseWriter, problems ...string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"statusCode": http.StatusBadRequest, "message": problems, "error": "Bad Request"})
}
