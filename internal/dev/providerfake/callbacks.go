package providerfake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Status callbacks: after accepting a message, both providers report what
// became of it by calling the business back. The fakes send those calls the
// way the providers document them, signed with their secret, so a receiver
// is tested against the wire format and not against itself. The signing
// code here is written apart from Herald's verifier on purpose.

// CallbackResult is the receiver's answer to one callback.
type CallbackResult struct {
	Status int
	Body   string
}

func post(ctx context.Context, method, target, contentType string, body []byte, header http.Header) (CallbackResult, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return CallbackResult{}, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return CallbackResult{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return CallbackResult{Status: resp.StatusCode, Body: string(b)}, nil
}

// MetaStatus is one entry of a Meta status webhook.
type MetaStatus struct {
	// MessageID is the wamid the send answered with.
	MessageID string
	// Status is sent, delivered, read or failed (or any word, to test
	// what a receiver does with others).
	Status string
	// Time defaults to now.
	Time time.Time
	// RecipientID is the recipient's number, digits only; defaults to
	// the recorded message's.
	RecipientID string
	// ErrorCode, for failed: e.g. 131047 (re-engagement), 131026
	// (undeliverable).
	ErrorCode int
}

// metaErrorTitles are the titles Meta documents for the codes tests use.
var metaErrorTitles = map[int]string{
	131047: "Re-engagement message",
	131026: "Message undeliverable",
	131000: "Something went wrong",
	130429: "Rate limit hit",
}

// StatusWebhook is the body Meta POSTs for statuses: a
// whatsapp_business_account notification with one change of field
// "messages" whose value lists the statuses, for the fake's phone number.
func (m *Meta) StatusWebhook(statuses ...MetaStatus) []byte {
	var list []map[string]any
	for _, st := range statuses {
		at := st.Time
		if at.IsZero() {
			at = stamp()
		}
		rcpt := st.RecipientID
		if rcpt == "" {
			for _, msg := range m.Messages() {
				if msg.ID == st.MessageID {
					rcpt = strings.TrimPrefix(msg.To, "+")
				}
			}
		}
		entry := map[string]any{
			"id":           st.MessageID,
			"status":       st.Status,
			"timestamp":    strconv.FormatInt(at.Unix(), 10),
			"recipient_id": rcpt,
		}
		if st.Status == "failed" {
			title := metaErrorTitles[st.ErrorCode]
			if title == "" {
				title = "Message failed to send"
			}
			entry["errors"] = []map[string]any{{
				"code": st.ErrorCode, "title": title, "message": title,
				"error_data": map[string]string{"details": title},
				"href":       "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
			}}
		} else {
			entry["conversation"] = map[string]any{"id": "CONVERSATION_ID", "origin": map[string]string{"type": "utility"}}
			entry["pricing"] = map[string]any{"billable": true, "pricing_model": "CBP", "category": "utility"}
		}
		list = append(list, entry)
	}
	b, _ := json.Marshal(map[string]any{
		"object": "whatsapp_business_account",
		"entry": []map[string]any{{
			"id": "102290129340398",
			"changes": []map[string]any{{
				"field": "messages",
				"value": map[string]any{
					"messaging_product": "whatsapp",
					"metadata":          map[string]string{"display_phone_number": "15550783881", "phone_number_id": m.PhoneNumberID},
					"statuses":          list,
				},
			}},
		}},
	})
	return b
}

// SignWebhook is the X-Hub-Signature-256 Meta sends with body: "sha256="
// and the hex HMAC-SHA256 of the body under the app secret.
func (m *Meta) SignWebhook(body []byte) string {
	mac := hmac.New(sha256.New, []byte(m.AppSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// SendStatus POSTs a signed status webhook to callbackURL, as Meta does.
func (m *Meta) SendStatus(ctx context.Context, callbackURL string, statuses ...MetaStatus) (CallbackResult, error) {
	body := m.StatusWebhook(statuses...)
	return m.PostWebhook(ctx, callbackURL, body, m.SignWebhook(body))
}

// PostWebhook POSTs body with the given X-Hub-Signature-256 (none when
// empty), for tests of unsigned and forged callbacks.
func (m *Meta) PostWebhook(ctx context.Context, callbackURL string, body []byte, signature string) (CallbackResult, error) {
	h := http.Header{"User-Agent": {"facebookexternalua"}}
	if signature != "" {
		h.Set("X-Hub-Signature-256", signature)
	}
	return post(ctx, http.MethodPost, callbackURL, "application/json", body, h)
}

// Subscribe performs Meta's verification request, the GET it sends when a
// callback URL is saved in the app dashboard, with verifyToken and a
// random challenge. It reports whether the receiver echoed the challenge.
func (m *Meta) Subscribe(ctx context.Context, callbackURL, verifyToken string) (CallbackResult, bool, error) {
	challenge := strconv.Itoa(1_000_000_000 + m.nextSeq())
	q := url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {verifyToken}, "hub.challenge": {challenge}}
	res, err := post(ctx, http.MethodGet, callbackURL+"?"+q.Encode(), "", nil, nil)
	// Meta compares the body with the challenge exactly.
	return res, err == nil && res.Status == http.StatusOK && res.Body == challenge, err
}

// TwilioStatus is one Twilio status callback.
type TwilioStatus struct {
	// MessageSID is the SID the send answered with.
	MessageSID string
	// Status is Twilio's MessageStatus: queued, sent, delivered, read,
	// failed, undelivered.
	Status string
	// ErrorCode, for failed and undelivered: e.g. 63016 (outside the
	// 24-hour window).
	ErrorCode int
}

// StatusForm is the form Twilio POSTs to a status callback URL for a
// WhatsApp message.
func (t *Twilio) StatusForm(st TwilioStatus) url.Values {
	to := ""
	for _, msg := range t.Messages() {
		if msg.ID == st.MessageSID {
			to = msg.To
		}
	}
	f := url.Values{
		"AccountSid":       {t.AccountSID},
		"ApiVersion":       {"2010-04-01"},
		"ChannelPrefix":    {"whatsapp"},
		"ChannelToAddress": {to},
		"From":             {"whatsapp:" + t.From},
		"To":               {"whatsapp:" + to},
		"MessageSid":       {st.MessageSID},
		"SmsSid":           {st.MessageSID},
		"MessageStatus":    {st.Status},
		"SmsStatus":        {st.Status},
	}
	if st.ErrorCode != 0 {
		f.Set("ErrorCode", strconv.Itoa(st.ErrorCode))
	}
	if st.Status == "delivered" || st.Status == "read" {
		f.Set("EventType", strings.ToUpper(st.Status))
	}
	return f
}

// SignCallback is the X-Twilio-Signature of a form POST to fullURL: the
// base64 HMAC-SHA1 under the auth token of the URL followed by each
// parameter's name and value, names in sorted order.
func (t *Twilio) SignCallback(fullURL string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	data := fullURL
	for _, k := range keys {
		for _, v := range form[k] {
			data += k + v
		}
	}
	mac := hmac.New(sha1.New, []byte(t.AuthToken))
	mac.Write([]byte(data))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// SendStatus POSTs a signed status callback to callbackURL, as Twilio does.
func (t *Twilio) SendStatus(ctx context.Context, callbackURL string, st TwilioStatus) (CallbackResult, error) {
	form := t.StatusForm(st)
	return t.PostCallback(ctx, callbackURL, form, t.SignCallback(callbackURL, form))
}

// PostCallback POSTs form with the given X-Twilio-Signature (none when
// empty), for tests of unsigned and forged callbacks.
func (t *Twilio) PostCallback(ctx context.Context, callbackURL string, form url.Values, signature string) (CallbackResult, error) {
	h := http.Header{"User-Agent": {"TwilioProxy/1.1"}, "I-Twilio-Idempotency-Token": {fmt.Sprintf("%x", sha1.Sum([]byte(form.Encode())))}}
	if signature != "" {
		h.Set("X-Twilio-Signature", signature)
	}
	return post(ctx, http.MethodPost, callbackURL, "application/x-www-form-urlencoded", []byte(form.Encode()), h)
}
