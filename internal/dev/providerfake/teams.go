package providerfake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// Teams fakes Power Automate Workflows webhooks, the trigger "When a Teams
// webhook request is received" that posts an Adaptive Card to a room:
// POST /workflows/{id}/triggers/manual/paths/invoke?api-version=...&sp=...&sv=1.0&sig=...
//
// Each room has its own URL, signed by sig; WebhookURL makes one. A flow
// answers 202 Accepted with no body. Errors have the shape {"error":
// {"code": "...", "message": "..."}}. In an ErrorSpec for FailNext,
// HTTPStatus is the status (default 500), Message the error code and
// RetryAfter the Retry-After header.
//
// Stricter than Teams: a flow accepts any JSON and fails later, inside
// Power Automate, when the card is malformed; the fake answers 400 at
// once, so a client that drifts from the documented message fails its
// tests.
type Teams struct {
	*Server
	key []byte
}

// NewTeams starts a fake Workflows endpoint.
func NewTeams(opts ...Option) *Teams {
	t := &Teams{key: []byte("herald-teams-fake")}
	t.Server = newServer(http.HandlerFunc(t.serve), opts)
	return t
}

// WebhookURL is the signed webhook URL of room; messages to it are
// recorded with To set to room.
func (t *Teams) WebhookURL(room string) string {
	q := url.Values{"api-version": {"2016-06-01"}, "sp": {"/triggers/manual/run"}, "sv": {"1.0"}, "sig": {t.sig(room)}}
	return t.URL + "/workflows/" + url.PathEscape(room) + "/triggers/manual/paths/invoke?" + q.Encode()
}

func (t *Teams) sig(room string) string {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(room))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

const teamsCardType = "application/vnd.microsoft.card.adaptive"

type teamsRequest struct {
	Type        *string `json:"type"`
	Attachments []struct {
		ContentType *string         `json:"contentType"`
		ContentURL  *string         `json:"contentUrl"`
		Content     json.RawMessage `json:"content"`
	} `json:"attachments"`
}

func (t *Teams) serve(w http.ResponseWriter, r *http.Request) {
	t.countRequest()
	// The query holds the signature: log the path only.
	shown := r.Clone(r.Context())
	shown.URL.RawQuery = ""
	body, err := readBody(r)
	if err != nil {
		t.reject(shown, "reading body: "+err.Error())
		writeTeamsError(w, http.StatusBadRequest, "InvalidRequestContent", "The request body could not be read.", "")
		return
	}
	room, ok := strings.CutPrefix(r.URL.Path, "/workflows/")
	room, ok2 := strings.CutSuffix(room, "/triggers/manual/paths/invoke")
	if !ok || !ok2 || room == "" || strings.Contains(room, "/") {
		t.reject(shown, "path is not /workflows/{id}/triggers/manual/paths/invoke")
		writeTeamsError(w, http.StatusNotFound, "WorkflowNotFound", "The workflow could not be found.", "")
		return
	}
	q := r.URL.Query()
	if q.Get("api-version") == "" {
		t.reject(shown, "no api-version")
		writeTeamsError(w, http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.", "")
		return
	}
	if !hmac.Equal([]byte(q.Get("sig")), []byte(t.sig(room))) || q.Get("sp") == "" || q.Get("sv") == "" {
		t.reject(shown, "missing or wrong signature")
		writeTeamsError(w, http.StatusUnauthorized, "DirectApiAuthorizationRequired", "The request must be authenticated only by Shared Access scheme.", "")
		return
	}
	if r.Method != http.MethodPost {
		t.reject(shown, r.Method+", want POST")
		writeTeamsError(w, http.StatusMethodNotAllowed, "TriggerRequestMethodNotValid", "The HTTP method for this request is not valid: expected 'Post'.", "")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		t.reject(shown, fmt.Sprintf("Content-Type %q, want application/json", r.Header.Get("Content-Type")))
		writeTeamsError(w, http.StatusUnsupportedMediaType, "InvalidRequestContent", "The request content type must be application/json.", "")
		return
	}
	msg, reason := parseTeams(body)
	if reason != "" {
		t.reject(shown, reason)
		writeTeamsError(w, http.StatusBadRequest, "InvalidRequestContent", reason, "")
		return
	}
	msg.To = room
	msg.Header, msg.Body = r.Header.Clone(), body

	if t.playScripted(shown, func(spec ErrorSpec) {
		status, code := spec.HTTPStatus, spec.Message
		if status == 0 {
			status = http.StatusInternalServerError
		}
		if code == "" {
			code = http.StatusText(status)
		}
		writeTeamsError(w, status, strings.ReplaceAll(code, " ", ""), code, spec.RetryAfter)
	}) {
		return
	}
	msg.ID = fmt.Sprintf("run-%08d", t.nextSeq())
	t.record(shown, msg)
	w.Header().Set("x-ms-workflow-run-id", msg.ID)
	w.WriteHeader(http.StatusAccepted)
}

// parseTeams validates the message a Workflows webhook takes for "Post
// card in a chat or channel": type message and Adaptive Card attachments.
// Text is the card's TextBlocks, one per line.
func parseTeams(body []byte) (Message, string) {
	var req teamsRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Message{}, "The request body is not a message object: " + err.Error()
	}
	if req.Type == nil || *req.Type != "message" {
		return Message{}, `"type" must be "message".`
	}
	if len(req.Attachments) == 0 {
		return Message{}, "The message has no attachments."
	}
	var texts []string
	for i, a := range req.Attachments {
		if a.ContentType == nil || *a.ContentType != teamsCardType {
			return Message{}, fmt.Sprintf("attachments[%d].contentType must be %q.", i, teamsCardType)
		}
		var card map[string]any
		if err := json.Unmarshal(a.Content, &card); err != nil {
			return Message{}, fmt.Sprintf("attachments[%d].content must be an Adaptive Card object.", i)
		}
		if card["type"] != "AdaptiveCard" {
			return Message{}, fmt.Sprintf(`attachments[%d].content.type must be "AdaptiveCard".`, i)
		}
		if _, ok := card["version"].(string); !ok {
			return Message{}, fmt.Sprintf("attachments[%d].content.version is required.", i)
		}
		blocks, _ := card["body"].([]any)
		actions, _ := card["actions"].([]any)
		if len(blocks) == 0 && len(actions) == 0 {
			return Message{}, fmt.Sprintf("attachments[%d].content has neither body nor actions.", i)
		}
		for _, b := range blocks {
			if m, ok := b.(map[string]any); ok && m["type"] == "TextBlock" {
				if s, ok := m["text"].(string); ok {
					texts = append(texts, s)
				}
			}
		}
		for _, a := range actions {
			if m, ok := a.(map[string]any); ok && m["type"] == "Action.OpenUrl" {
				if s, _ := m["url"].(string); s == "" {
					return Message{}, fmt.Sprintf("attachments[%d]: an Action.OpenUrl needs a url.", i)
				}
			}
		}
	}
	return Message{Text: strings.Join(texts, "\n")}, ""
}

func writeTeamsError(w http.ResponseWriter, status int, code, message, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}
