package providerfake

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Twilio fakes POST /2010-04-01/Accounts/{AccountSID}/Messages.json for
// WhatsApp senders.
type Twilio struct {
	*Server
	// Credentials and sender the fake expects. Either AccountSID:AuthToken
	// or APIKeySID:APIKeySecret is accepted as basic auth. Change them only
	// before the first request.
	AccountSID   string
	AuthToken    string
	APIKeySID    string
	APIKeySecret string
	// From is the WhatsApp sender in E.164; requests must send
	// From=whatsapp:<From>.
	From string
}

// NewTwilio starts a fake Twilio Messages API with fixed test credentials.
func NewTwilio(opts ...Option) *Twilio {
	t := &Twilio{
		AccountSID:   "AC" + strings.Repeat("0123456789abcdef", 2),
		AuthToken:    "test-twilio-auth-token",
		APIKeySID:    "SK" + strings.Repeat("fedcba9876543210", 2),
		APIKeySecret: "test-twilio-api-key-secret",
		From:         "+14155238886",
	}
	t.Server = newServer(http.HandlerFunc(t.serve), opts)
	return t
}

// MessagesPath is the path a client posts to.
func (t *Twilio) MessagesPath() string {
	return "/2010-04-01/Accounts/" + t.AccountSID + "/Messages.json"
}

var (
	twilioWhatsAppAddrRE = regexp.MustCompile(`^whatsapp:\+[1-9][0-9]{6,14}$`)
	twilioContentSIDRE   = regexp.MustCompile(`^HX[0-9a-fA-F]{32}$`)
)

const twilioBodyLimit = 1600

func (t *Twilio) serve(w http.ResponseWriter, r *http.Request) {
	t.countRequest()
	body, err := readBody(r)
	if err != nil {
		t.reject(r, "reading body: "+err.Error())
		writeTwilioError(w, ErrorSpec{HTTPStatus: http.StatusBadRequest, Code: 20001, Message: "Unable to read request body"})
		return
	}

	// Twilio authenticates before it looks at the resource.
	user, pass, ok := r.BasicAuth()
	if !ok || !((user == t.AccountSID && pass == t.AuthToken) || (user == t.APIKeySID && pass == t.APIKeySecret)) {
		t.reject(r, fmt.Sprintf("basic auth user %q not accepted", user))
		writeTwilioError(w, ErrorSpec{Code: 20003})
		return
	}
	if r.URL.Path != t.MessagesPath() {
		t.reject(r, fmt.Sprintf("path %s, want %s", r.URL.Path, t.MessagesPath()))
		writeTwilioError(w, ErrorSpec{Code: 20404, Message: fmt.Sprintf("The requested resource %s was not found", r.URL.Path)})
		return
	}
	if r.Method != http.MethodPost {
		t.reject(r, "method "+r.Method)
		writeTwilioError(w, ErrorSpec{HTTPStatus: http.StatusMethodNotAllowed, Code: 20004, Message: "Method not allowed"})
		return
	}
	// Twilio reads parameters only from a form body; a JSON body arrives as
	// no parameters at all, which then fails as "To is required".
	form := url.Values{}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		if form, err = url.ParseQuery(string(body)); err != nil {
			t.reject(r, "form body: "+err.Error())
			writeTwilioError(w, ErrorSpec{HTTPStatus: http.StatusBadRequest, Code: 20001, Message: "Unable to parse request body"})
			return
		}
	} else {
		t.reject(r, fmt.Sprintf("Content-Type %q, want application/x-www-form-urlencoded (Twilio sees no parameters)", r.Header.Get("Content-Type")))
		writeTwilioError(w, ErrorSpec{HTTPStatus: http.StatusBadRequest, Code: 21604, Message: "A 'To' phone number is required."})
		return
	}

	msg, spec, reason := t.parse(form)
	if reason != "" {
		t.reject(r, reason)
		writeTwilioError(w, spec)
		return
	}
	msg.Header, msg.Body = r.Header.Clone(), body

	if t.playScripted(r, func(spec ErrorSpec) { writeTwilioError(w, spec) }) {
		return
	}

	msg.ID = fmt.Sprintf("SM%032x", t.nextSeq())
	t.record(r, msg)
	now := stamp().Format(http.TimeFormat)
	now = strings.Replace(now, "GMT", "+0000", 1) // Twilio dates are RFC 2822
	writeJSON(w, http.StatusCreated, map[string]any{
		"sid":                   msg.ID,
		"account_sid":           t.AccountSID,
		"api_version":           "2010-04-01",
		"body":                  msg.Text,
		"date_created":          now,
		"date_updated":          now,
		"date_sent":             nil,
		"direction":             "outbound-api",
		"error_code":            nil,
		"error_message":         nil,
		"from":                  "whatsapp:" + t.From,
		"messaging_service_sid": nil,
		"num_media":             "0",
		"num_segments":          "1",
		"price":                 nil,
		"price_unit":            nil,
		"status":                "queued",
		"to":                    "whatsapp:" + msg.To,
		"uri":                   "/2010-04-01/Accounts/" + t.AccountSID + "/Messages/" + msg.ID + ".json",
	})
}

func (t *Twilio) parse(form url.Values) (Message, ErrorSpec, string) {
	bad := func(code int, message string) (Message, ErrorSpec, string) {
		return Message{}, ErrorSpec{HTTPStatus: http.StatusBadRequest, Code: code, Message: message}, message
	}
	to := form.Get("To")
	switch {
	case to == "":
		return bad(21604, "A 'To' phone number is required.")
	case !twilioWhatsAppAddrRE.MatchString(to):
		return bad(21211, fmt.Sprintf("Invalid 'To' Phone Number: %s", to))
	}
	from := form.Get("From")
	switch {
	case from == "":
		return bad(21603, "A 'From' phone number is required.")
	case from != "whatsapp:"+t.From:
		return bad(63007, fmt.Sprintf("Twilio could not find a Channel with the specified From address: %s", from))
	}
	msg := Message{To: strings.TrimPrefix(to, "whatsapp:"), From: strings.TrimPrefix(from, "whatsapp:")}

	contentSID, vars := form.Get("ContentSid"), form.Get("ContentVariables")
	if vars != "" && contentSID == "" {
		return bad(21654, "A ContentSid must be specified if ContentVariables are provided in the request.")
	}
	if contentSID != "" {
		if !twilioContentSIDRE.MatchString(contentSID) {
			return bad(21655, "The ContentSid is Invalid.")
		}
		msg.ContentSID = contentSID
		if vars != "" {
			var m map[string]string
			if err := json.Unmarshal([]byte(vars), &m); err != nil {
				return bad(21656, "The ContentVariables Parameter is invalid.")
			}
			for k, v := range m {
				if k == "" || v == "" {
					return bad(21656, "The ContentVariables Parameter is invalid.")
				}
			}
			msg.ContentVariables = m
		}
		return msg, ErrorSpec{}, ""
	}

	text := form.Get("Body")
	switch {
	case strings.TrimSpace(text) == "":
		return bad(21619, "A text message body or media urls must be specified.")
	case utf8.RuneCountInString(text) > twilioBodyLimit:
		return bad(21617, "The concatenated message body exceeds the 1600 character limit.")
	}
	msg.Text = text
	return msg, ErrorSpec{}, ""
}

// Documented statuses and messages of the codes tests script most.
var twilioDefaults = map[int]struct {
	status  int
	message string
}{
	20003: {http.StatusUnauthorized, "Authenticate"},
	20404: {http.StatusNotFound, "The requested resource was not found"},
	20429: {http.StatusTooManyRequests, "Too Many Requests"},
	20500: {http.StatusInternalServerError, "An internal server error has occurred"},
	20503: {http.StatusServiceUnavailable, "Service unavailable"},
	21211: {http.StatusBadRequest, "Invalid 'To' Phone Number"},
	21606: {http.StatusBadRequest, "The 'From' phone number provided is not a valid message-capable Twilio phone number for this destination."},
	21608: {http.StatusBadRequest, "The number is unverified. Trial accounts cannot send messages to unverified numbers; verify it at twilio.com/user/account/phone-numbers/verified, or purchase a Twilio number to send messages to unverified numbers."},
	63007: {http.StatusBadRequest, "Twilio could not find a Channel with the specified From address"},
	63016: {http.StatusBadRequest, "Failed to send freeform message because you are outside the allowed window. If you are using WhatsApp, please use a Message Template."},
}

// writeTwilioError answers in Twilio's REST error shape.
func writeTwilioError(w http.ResponseWriter, spec ErrorSpec) {
	d, known := twilioDefaults[spec.Code]
	status := spec.HTTPStatus
	if status == 0 {
		status = http.StatusBadRequest
		if known {
			status = d.status
		}
	}
	message := spec.Message
	if message == "" {
		message = d.message
		if !known {
			message = http.StatusText(status)
		}
	}
	if spec.RetryAfter != "" {
		w.Header().Set("Retry-After", spec.RetryAfter)
	}
	writeJSON(w, status, map[string]any{
		"code":      spec.Code,
		"message":   message,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", spec.Code),
		"status":    status,
	})
}
