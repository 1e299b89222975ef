package whatsapp_test

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/whatsapp"
	"github.com/herald-dev/herald/internal/dev/providerfake"
)

func newTwilio(t *testing.T) *providerfake.Twilio { return newFake(t, providerfake.NewTwilio) }

func twilioSender(t *testing.T, f *providerfake.Twilio, edit ...func(*whatsapp.TwilioConfig)) *whatsapp.TwilioSender {
	t.Helper()
	return buildSender(t, whatsapp.NewTwilio, whatsapp.TwilioConfig{
		BaseURL:    f.URL,
		AccountSID: f.AccountSID,
		AuthToken:  f.AuthToken,
		From:       f.From,
	}, edit)
}

// startTwilio returns a Twilio sender and the fake it sends to.
func startTwilio(t *testing.T) (channel.Sender, *providerfake.Server) {
	f := newTwilio(t)
	return twilioSender(t, f), f.Server
}

// formOf decodes a recorded form body.
func formOf(t *testing.T, body []byte) url.Values {
	t.Helper()
	v, err := url.ParseQuery(string(body))
	if err != nil {
		t.Fatalf("body is not a form: %v", err)
	}
	return v
}

func TestTwilioSendText(t *testing.T) {
	f := newTwilio(t)
	res, got := sendOne(t, twilioSender(t, f), f.Server, textMessage())

	if !strings.HasPrefix(res.ProviderMessageID, "SM") {
		t.Errorf("ProviderMessageID = %q, want a message SID", res.ProviderMessageID)
	}
	if ct := got.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type = %q", ct)
	}
	req := http.Request{Header: got.Header}
	if u, p, ok := req.BasicAuth(); !ok || u != f.AccountSID || p != f.AuthToken {
		t.Errorf("basic auth = %q:%q (%v)", u, p, ok)
	}
	want := url.Values{
		"To":   {"whatsapp:" + aliceE164},
		"From": {"whatsapp:" + f.From},
		"Body": {wantText},
	}
	if form := formOf(t, got.Body); !reflect.DeepEqual(form, want) {
		t.Fatalf("form = %v, want %v", form, want)
	}
}

func TestTwilioSendWithAPIKeyAndPrefixedFrom(t *testing.T) {
	f := newTwilio(t)
	s := twilioSender(t, f, func(c *whatsapp.TwilioConfig) {
		c.AuthToken = ""
		c.APIKeySID, c.APIKeySecret = f.APIKeySID, f.APIKeySecret
		c.From = "whatsapp:" + f.From
	})
	_, got := sendOne(t, s, f.Server, textMessage())
	req := http.Request{Header: got.Header}
	if u, _, _ := req.BasicAuth(); u != f.APIKeySID {
		t.Errorf("basic auth user = %q, want the API key SID", u)
	}
	if got.From != f.From {
		t.Errorf("From = %q", got.From)
	}
}

func TestTwilioSendContentTemplate(t *testing.T) {
	f := newTwilio(t)
	msg := textMessage()
	contentSID := "HX" + strings.Repeat("b5", 16)
	msg.WhatsApp = &channel.WhatsAppContent{
		TemplateName:   "disk_alert",
		TemplateParams: []string{"node-1", "91%"},
		ContentSID:     contentSID,
	}
	_, got := sendOne(t, twilioSender(t, f), f.Server, msg)
	form := formOf(t, got.Body)
	if form.Has("Body") {
		t.Errorf("a content template message must not carry Body, got %q", form.Get("Body"))
	}
	if form.Get("ContentSid") != contentSID {
		t.Errorf("ContentSid = %q", form.Get("ContentSid"))
	}
	jsonEqual(t, []byte(form.Get("ContentVariables")), `{"1": "node-1", "2": "91%"}`)
	if !reflect.DeepEqual(got.ContentVariables, map[string]string{"1": "node-1", "2": "91%"}) {
		t.Errorf("recorded variables = %v", got.ContentVariables)
	}
}

func TestTwilioTemplateNameWithoutContentSIDSendsText(t *testing.T) {
	f := newTwilio(t)
	msg := textMessage()
	msg.WhatsApp = &channel.WhatsAppContent{TemplateName: "disk_alert"}
	if _, got := sendOne(t, twilioSender(t, f), f.Server, msg); got.Text != wantText || got.ContentSID != "" {
		t.Fatalf("got text %q content %q", got.Text, got.ContentSID)
	}
}

func TestTwilioErrors(t *testing.T) {
	checkErrors(t, startTwilio, []string{"twilio.com/docs/errors"}, []errorCase{
		{name: "too many requests with Retry-After", spec: providerfake.ErrorSpec{Code: 20429, RetryAfter: "30"},
			reason: notifyv1.ReasonRateLimited, code: "twilio 20429", retryAfter: 30 * time.Second},
		{name: "outside the 24h window", spec: providerfake.ErrorSpec{Code: 63016},
			reason: notifyv1.ReasonPermanent, code: "twilio 63016", recipient: true, mention: []string{"24 hours", "content template"}},
		{name: "invalid To", spec: providerfake.ErrorSpec{Code: 21211},
			reason: notifyv1.ReasonInvalidAddress, code: "twilio 21211", recipient: true},
		{name: "authenticate", spec: providerfake.ErrorSpec{Code: 20003},
			reason: notifyv1.ReasonPermanent, code: "twilio 20003", fault: true},
		{name: "From not capable", spec: providerfake.ErrorSpec{Code: 21606},
			reason: notifyv1.ReasonPermanent, code: "twilio 21606", fault: true, mention: []string{"From number"}},
		{name: "trial unverified", spec: providerfake.ErrorSpec{Code: 21608},
			reason: notifyv1.ReasonPermanent, code: "twilio 21608", recipient: true, mention: []string{"verified"}},
		{name: "unsubscribed", spec: providerfake.ErrorSpec{Code: 21610},
			reason: notifyv1.ReasonPermanent, code: "twilio 21610", recipient: true},
		{name: "not on WhatsApp", spec: providerfake.ErrorSpec{Code: 63003},
			reason: notifyv1.ReasonInvalidAddress, code: "twilio 63003", recipient: true},
		{name: "no channel for From", spec: providerfake.ErrorSpec{Code: 63007},
			reason: notifyv1.ReasonPermanent, code: "twilio 63007", fault: true},
		{name: "internal error", spec: providerfake.ErrorSpec{Code: 20500},
			reason: notifyv1.ReasonTransient, code: "twilio 20500"},
		{name: "unavailable with Retry-After", spec: providerfake.ErrorSpec{Code: 20503, RetryAfter: "2"},
			reason: notifyv1.ReasonTransient, code: "twilio 20503", retryAfter: 2 * time.Second},
		{name: "unknown 4xx", spec: providerfake.ErrorSpec{Code: 21999},
			reason: notifyv1.ReasonPermanent, code: "twilio 21999"},
	})
}

func TestTwilioBadCredentials(t *testing.T) {
	f := newTwilio(t)
	providerFault(t, twilioSender(t, f, func(c *whatsapp.TwilioConfig) { c.AuthToken = "wrong" }), "twilio 20003")
}

func TestTwilioUnknownSender(t *testing.T) {
	f := newTwilio(t)
	providerFault(t, twilioSender(t, f, func(c *whatsapp.TwilioConfig) { c.From = "+14155550100" }), "twilio 63007")
}

func TestTwilioInvalidPhoneNeverReachesServer(t *testing.T) {
	f := newTwilio(t)
	msg := textMessage()
	msg.Recipient.Phone = "+1 555"
	sendRefused(t, twilioSender(t, f), f.Server, msg, notifyv1.ReasonInvalidAddress, "invalid phone")
}

func TestTwilioDeadline(t *testing.T) {
	f := newTwilio(t)
	timedOut(t, twilioSender(t, f), f.Server)
}

func TestTwilioRateLimitedWithoutBody(t *testing.T) {
	s := rawServer(t, http.StatusTooManyRequests, "text/plain", "slow down")
	c, err := whatsapp.NewTwilio(whatsapp.TwilioConfig{
		BaseURL: s.URL, AccountSID: "AC" + strings.Repeat("0", 32), AuthToken: "x", From: "+14155238886",
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Send(t.Context(), textMessage())
	if ce := classified(t, err, notifyv1.ReasonRateLimited); ce.Code != "http 429" {
		t.Fatalf("code = %q", ce.Code)
	}
}

func TestNewTwilioValidates(t *testing.T) {
	valid := whatsapp.TwilioConfig{AccountSID: "AC" + strings.Repeat("a", 32), AuthToken: "tok", From: "+14155238886"}
	checkValidation(t, whatsapp.NewTwilio, valid, []configCase[whatsapp.TwilioConfig]{
		{"bad account SID", func(c *whatsapp.TwilioConfig) { c.AccountSID = "SK123" }, "accountSID"},
		{"no credentials", func(c *whatsapp.TwilioConfig) { c.AuthToken = "" }, "authToken"},
		{"bad API key SID", func(c *whatsapp.TwilioConfig) { c.APIKeySID = "AC1" }, "apiKeySID"},
		{"API key without secret", func(c *whatsapp.TwilioConfig) { c.APIKeySID = "SK" + strings.Repeat("b", 32) }, "apiKeySecret"},
		{"no From", func(c *whatsapp.TwilioConfig) { c.From = "" }, "from"},
		{"national From", func(c *whatsapp.TwilioConfig) { c.From = "4155238886" }, "country code"},
		{"bad base URL", func(c *whatsapp.TwilioConfig) { c.BaseURL = "api.twilio.com" }, "http://"},
	})
}
