package providerfake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Meta fakes the WhatsApp Cloud API endpoint
// POST /{APIVersion}/{PhoneNumberID}/messages.
type Meta struct {
	*Server
	// AccessToken, PhoneNumberID and APIVersion are what the fake expects.
	// Change them only before the first request.
	AccessToken   string
	PhoneNumberID string
	APIVersion    string
	// AppSecret signs the status webhooks the fake sends (SendStatus).
	AppSecret string
}

// NewMeta starts a fake Cloud API with fixed test credentials.
func NewMeta(opts ...Option) *Meta {
	m := &Meta{
		AccessToken:   "EAAtest-meta-access-token",
		PhoneNumberID: "106540352242922",
		APIVersion:    "v21.0",
		AppSecret:     "test-meta-app-secret",
	}
	m.Server = newServer(http.HandlerFunc(m.serve), opts)
	return m
}

// MessagesURL is the full URL a client posts to.
func (m *Meta) MessagesURL() string {
	return m.URL + "/" + m.APIVersion + "/" + m.PhoneNumberID + "/messages"
}

// Request body of POST /messages. Every field is a pointer or a struct that
// rejects unknown keys, so missing and misspelled fields are both caught.
type metaRequest struct {
	MessagingProduct *string `json:"messaging_product"`
	RecipientType    *string `json:"recipient_type"`
	To               *string `json:"to"`
	Type             *string `json:"type"`
	Text             *struct {
		PreviewURL *bool   `json:"preview_url"`
		Body       *string `json:"body"`
	} `json:"text"`
	Template *struct {
		Name     *string `json:"name"`
		Language *struct {
			Code   *string `json:"code"`
			Policy *string `json:"policy"`
		} `json:"language"`
		Components []struct {
			Type       *string `json:"type"`
			Parameters []struct {
				Type *string `json:"type"`
				Text *string `json:"text"`
			} `json:"parameters"`
		} `json:"components"`
	} `json:"template"`
}

// Meta accepts a leading + in "to"; herald's client sends digits only and the
// fake insists on that one form.
var metaToRE = regexp.MustCompile(`^[1-9][0-9]{6,14}$`)

const metaTextLimit = 4096

func (m *Meta) serve(w http.ResponseWriter, r *http.Request) {
	m.countRequest()
	body, err := readBody(r)
	if err != nil {
		m.reject(r, "reading body: "+err.Error())
		writeMetaError(w, ErrorSpec{HTTPStatus: http.StatusBadRequest, Code: 100, Message: "(#100) Invalid parameter"})
		return
	}

	wantPath := "/" + m.APIVersion + "/" + m.PhoneNumberID + "/messages"
	if r.Method != http.MethodPost || r.URL.Path != wantPath {
		m.reject(r, fmt.Sprintf("%s %s, want POST %s", r.Method, r.URL.Path, wantPath))
		writeMetaError(w, ErrorSpec{
			HTTPStatus: http.StatusBadRequest, Code: 100, Type: "GraphMethodException",
			Message: fmt.Sprintf("Unsupported %s request. Object with ID '%s' does not exist, cannot be loaded due to missing permissions, or does not support this operation.",
				strings.ToLower(r.Method), strings.Trim(strings.TrimPrefix(r.URL.Path, "/"+m.APIVersion), "/")),
		})
		return
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+m.AccessToken {
		m.reject(r, fmt.Sprintf("Authorization %q, want Bearer token", got))
		writeMetaError(w, ErrorSpec{
			HTTPStatus: http.StatusUnauthorized, Code: 190,
			Message: "Invalid OAuth access token - Cannot parse access token",
		})
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		m.reject(r, fmt.Sprintf("Content-Type %q, want application/json", r.Header.Get("Content-Type")))
		writeMetaParamError(w, "(#100) The parameter messaging_product is required.", "The request body must be JSON (Content-Type: application/json).")
		return
	}

	msg, spec, reason := m.parse(body)
	if reason != "" {
		m.reject(r, reason)
		writeMetaError(w, spec)
		return
	}
	msg.Header, msg.Body = r.Header.Clone(), body

	if m.playScripted(r, func(spec ErrorSpec) { writeMetaError(w, spec) }) {
		return
	}

	digits := strings.TrimPrefix(msg.To, "+")
	msg.ID = "wamid.HBgL" + base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%s%06d", digits, m.nextSeq()))
	m.record(r, msg)
	writeJSON(w, http.StatusOK, map[string]any{
		"messaging_product": "whatsapp",
		"contacts":          []map[string]string{{"input": digits, "wa_id": digits}},
		"messages":          []map[string]string{{"id": msg.ID}},
	})
}

// parse validates the request body. On failure it returns the error answer
// and a reason for Rejections.
func (m *Meta) parse(body []byte) (Message, ErrorSpec, string) {
	bad := func(code int, message, details string) (Message, ErrorSpec, string) {
		return Message{}, ErrorSpec{HTTPStatus: http.StatusBadRequest, Code: code, Message: message, Details: details}, message + " " + details
	}
	var req metaRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return bad(100, "(#100) Invalid parameter", "Request body is not a valid message object: "+err.Error())
	}
	if req.MessagingProduct == nil || *req.MessagingProduct != "whatsapp" {
		return bad(100, "(#100) The parameter messaging_product is required.", `messaging_product must be "whatsapp".`)
	}
	if req.RecipientType != nil && *req.RecipientType != "individual" {
		return bad(100, "(#100) Invalid parameter", `recipient_type must be "individual".`)
	}
	if req.To == nil || !metaToRE.MatchString(*req.To) {
		got := "<missing>"
		if req.To != nil {
			got = *req.To
		}
		return bad(131009, "(#131009) Parameter value is not valid", fmt.Sprintf("to %q must be the recipient's number with country code, digits only.", got))
	}
	msg := Message{To: "+" + *req.To}
	if req.Type == nil {
		return bad(100, "(#100) The parameter type is required.", "")
	}
	switch *req.Type {
	case "text":
		if req.Template != nil {
			return bad(100, "(#100) Invalid parameter", "A text message must not carry a template object.")
		}
		if req.Text == nil || req.Text.Body == nil || strings.TrimSpace(*req.Text.Body) == "" {
			return bad(100, "(#100) The parameter text['body'] is required.", "")
		}
		if utf8.RuneCountInString(*req.Text.Body) > metaTextLimit {
			return bad(100, "(#100) Param text['body'] must be at most 4096 characters long.", "")
		}
		msg.Text = *req.Text.Body
		if req.Text.PreviewURL != nil {
			msg.PreviewURL = *req.Text.PreviewURL
		}
	case "template":
		if req.Text != nil {
			return bad(100, "(#100) Invalid parameter", "A template message must not carry a text object.")
		}
		t := req.Template
		if t == nil || t.Name == nil || *t.Name == "" {
			return bad(100, "(#100) The parameter template['name'] is required.", "")
		}
		if t.Language == nil || t.Language.Code == nil || *t.Language.Code == "" {
			return bad(100, "(#100) The parameter template['language'] is required.", "")
		}
		msg.TemplateName, msg.TemplateLanguage = *t.Name, *t.Language.Code
		for _, c := range t.Components {
			// This fake supports body text parameters only, the one kind
			// herald sends.
			if c.Type == nil || *c.Type != "body" {
				return bad(100, "(#100) Invalid parameter", "components[].type must be \"body\" (the only component this fake supports).")
			}
			if len(c.Parameters) == 0 {
				return bad(131008, "(#131008) Required parameter is missing", "A body component needs parameters.")
			}
			for _, p := range c.Parameters {
				if p.Type == nil || *p.Type != "text" || p.Text == nil {
					return bad(131009, "(#131009) Parameter value is not valid", `Body parameters must be {"type":"text","text":...}.`)
				}
				msg.TemplateParams = append(msg.TemplateParams, *p.Text)
			}
		}
	default:
		return bad(131009, "(#131009) Parameter value is not valid", fmt.Sprintf("type %q is not supported by this fake (text, template).", *req.Type))
	}
	return msg, ErrorSpec{}, ""
}

// Documented titles and HTTP statuses of the codes tests script most.
var metaDefaults = map[int]struct {
	status  int
	title   string
	details string
}{
	0:      {http.StatusUnauthorized, "AuthException", "We were unable to authenticate the app user."},
	1:      {http.StatusBadRequest, "API Unknown", "Invalid request or possible server error."},
	2:      {http.StatusServiceUnavailable, "API Service", "Temporary due to downtime or due to being overloaded."},
	4:      {http.StatusBadRequest, "Application request limit reached", "The app has reached its API call rate limit."},
	10:     {http.StatusForbidden, "Permission Denied", "Permission is either not granted or has been removed."},
	100:    {http.StatusBadRequest, "Invalid parameter", "The request included one or more unsupported or misspelled parameters."},
	190:    {http.StatusUnauthorized, "Access token has expired", "Your access token has expired."},
	200:    {http.StatusForbidden, "API Permission", "Permission is either not granted or has been removed."},
	80007:  {http.StatusBadRequest, "Rate limit issues", "The WhatsApp Business Account has reached its rate limit."},
	130429: {http.StatusBadRequest, "Rate limit hit", "Message failed to send because there were too many messages sent from this phone number in a short period of time"},
	131000: {http.StatusInternalServerError, "Something went wrong", "Message failed to send due to an unknown error."},
	131016: {http.StatusServiceUnavailable, "Service unavailable", "A service is temporarily unavailable."},
	131026: {http.StatusBadRequest, "Message Undeliverable", "Unable to deliver message."},
	131030: {http.StatusBadRequest, "Recipient phone number not in allowed list", "Recipient phone number not in allowed list: Add recipient phone number to recipient list and try again."},
	131047: {http.StatusBadRequest, "Re-engagement message", "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
	131048: {http.StatusBadRequest, "Spam rate limit hit", "Message failed to send because there are restrictions on how many messages can be sent from this phone number."},
	131056: {http.StatusBadRequest, "(Business Account, Consumer Account) pair rate limit hit", "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time."},
}

// writeMetaError answers in the Graph API error shape.
func writeMetaError(w http.ResponseWriter, spec ErrorSpec) {
	d, known := metaDefaults[spec.Code]
	status := spec.HTTPStatus
	if status == 0 {
		status = http.StatusBadRequest
		if known {
			status = d.status
		}
	}
	message := spec.Message
	if message == "" {
		message = fmt.Sprintf("(#%d) %s", spec.Code, d.title)
		if !known {
			message = fmt.Sprintf("(#%d) Error", spec.Code)
		}
	}
	details := spec.Details
	if details == "" && known {
		details = d.details
	}
	typ := spec.Type
	if typ == "" {
		typ = "OAuthException"
	}
	if spec.RetryAfter != "" {
		w.Header().Set("Retry-After", spec.RetryAfter)
	}
	e := map[string]any{
		"message":    message,
		"type":       typ,
		"code":       spec.Code,
		"fbtrace_id": "AbCdEfGhIjKlMnOpQrStUvW",
	}
	if details != "" {
		e["error_data"] = map[string]string{"messaging_product": "whatsapp", "details": details}
	}
	writeJSON(w, status, map[string]any{"error": e})
}

func writeMetaParamError(w http.ResponseWriter, message, details string) {
	writeMetaError(w, ErrorSpec{HTTPStatus: http.StatusBadRequest, Code: 100, Message: message, Details: details})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
