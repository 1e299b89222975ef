package whatsapp_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/whatsapp"
	"github.com/herald-dev/herald/internal/dev/providerfake"
)

func newWAHA(t *testing.T) *providerfake.WAHA { return newFake(t, providerfake.NewWAHA) }

func wahaSender(t *testing.T, f *providerfake.WAHA, edit ...func(*whatsapp.WAHAConfig)) *whatsapp.WAHASender {
	t.Helper()
	return buildSender(t, whatsapp.NewWAHA, whatsapp.WAHAConfig{BaseURL: f.URL, APIKey: f.APIKey}, edit)
}

// startWAHA returns a WAHA sender and the fake it sends to.
func startWAHA(t *testing.T) (channel.Sender, *providerfake.Server) {
	f := newWAHA(t)
	return wahaSender(t, f), f.Server
}

func TestWAHASendText(t *testing.T) {
	styles := []struct {
		name  string
		style providerfake.WAHAIDStyle
	}{
		{"id string", providerfake.WAHAIDString},
		{"id object", providerfake.WAHAIDObject},
		{"NOWEB key", providerfake.WAHAIDKey},
	}
	for _, st := range styles {
		t.Run(st.name, func(t *testing.T) {
			f := newWAHA(t)
			f.SetIDStyle(st.style)
			_, got := sendOne(t, wahaSender(t, f), f.Server, textMessage())
			if h := got.Header.Get("X-Api-Key"); h != f.APIKey {
				t.Errorf("X-Api-Key = %q", h)
			}
			if h := got.Header.Get("Content-Type"); h != "application/json" {
				t.Errorf("Content-Type = %q", h)
			}
			jsonEqual(t, got.Body, `{"session": "default", "chatId": "`+aliceWire+`@c.us", "text": "Disk almost full\n\nnode-1 is at 91%"}`)
		})
	}
}

func TestWAHASendCustomSessionWithoutAPIKey(t *testing.T) {
	f := newWAHA(t)
	f.APIKey, f.Session = "", "ops"
	s := wahaSender(t, f, func(c *whatsapp.WAHAConfig) { c.APIKey, c.Session = "", "ops" })
	_, got := sendOne(t, s, f.Server, textMessage())
	if got.Session != "ops" {
		t.Errorf("session = %q", got.Session)
	}
	if _, ok := got.Header["X-Api-Key"]; ok {
		t.Error("X-Api-Key sent although none is configured")
	}
}

// WAHA has no templates: a template-only message goes out as its text.
func TestWAHATemplateFallsBackToText(t *testing.T) {
	f := newWAHA(t)
	msg := textMessage()
	msg.WhatsApp = &channel.WhatsAppContent{TemplateName: "disk_alert", TemplateParams: []string{"node-1"}}
	if _, got := sendOne(t, wahaSender(t, f), f.Server, msg); got.Text != wantText {
		t.Fatalf("text = %q, want %q", got.Text, wantText)
	}
}

func TestWAHATemplateWithoutTextFails(t *testing.T) {
	f := newWAHA(t)
	msg := textMessage()
	msg.Title, msg.Body = "", ""
	msg.WhatsApp = &channel.WhatsAppContent{TemplateName: "disk_alert"}
	sendRefused(t, wahaSender(t, f), f.Server, msg, notifyv1.ReasonPermanent, "disk_alert", "no template support")
}

func TestWAHAErrors(t *testing.T) {
	checkErrors(t, startWAHA, nil, []errorCase{
		{name: "session starting", spec: providerfake.ErrorSpec{SessionStatus: "STARTING"},
			reason: notifyv1.ReasonTransient, code: "waha 422", mention: []string{"still starting"}},
		{name: "session needs QR scan", spec: providerfake.ErrorSpec{SessionStatus: "SCAN_QR_CODE"},
			reason: notifyv1.ReasonPermanent, code: "waha 422", fault: true, mention: []string{"SCAN_QR_CODE"}},
		{name: "validation", spec: providerfake.ErrorSpec{HTTPStatus: http.StatusBadRequest, Message: "text should not be empty"},
			reason: notifyv1.ReasonPermanent, code: "waha 400", mention: []string{"text should not be empty"}},
		{name: "unprocessable", spec: providerfake.ErrorSpec{HTTPStatus: http.StatusUnprocessableEntity, Message: "no"},
			reason: notifyv1.ReasonPermanent, code: "waha 422"},
		{name: "forbidden", spec: providerfake.ErrorSpec{HTTPStatus: http.StatusForbidden},
			reason: notifyv1.ReasonPermanent, code: "waha 403", fault: true},
		{name: "too many requests", spec: providerfake.ErrorSpec{HTTPStatus: http.StatusTooManyRequests, RetryAfter: "5"},
			reason: notifyv1.ReasonRateLimited, code: "waha 429", retryAfter: 5 * time.Second},
		{name: "request timeout", spec: providerfake.ErrorSpec{HTTPStatus: http.StatusRequestTimeout, RetryAfter: "2"},
			reason: notifyv1.ReasonTransient, code: "waha 408", retryAfter: 2 * time.Second},
		{name: "engine error", spec: providerfake.ErrorSpec{HTTPStatus: http.StatusInternalServerError, Message: "Evaluation failed"},
			reason: notifyv1.ReasonTransient, code: "waha 500", mention: []string{"Evaluation failed"}},
	})
}

func TestWAHABadAPIKey(t *testing.T) {
	f := newWAHA(t)
	providerFault(t, wahaSender(t, f, func(c *whatsapp.WAHAConfig) { c.APIKey = "wrong" }), "waha 401", "Unauthorized")
}

func TestWAHAUnknownSession(t *testing.T) {
	f := newWAHA(t)
	providerFault(t, wahaSender(t, f, func(c *whatsapp.WAHAConfig) { c.Session = "sales" }), "waha 404", "didn't find a session")
}

func TestWAHAInvalidPhoneNeverReachesServer(t *testing.T) {
	f := newWAHA(t)
	msg := textMessage()
	msg.Recipient.Phone = "0151 1234 5678" // national, and no default region
	sendRefused(t, wahaSender(t, f), f.Server, msg, notifyv1.ReasonInvalidAddress, "invalid phone", "country code")
}

func TestWAHADeadline(t *testing.T) {
	f := newWAHA(t)
	timedOut(t, wahaSender(t, f), f.Server)
}

func TestWAHAUnreachable(t *testing.T) {
	s, err := whatsapp.NewWAHA(whatsapp.WAHAConfig{BaseURL: closedURL(t)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Send(t.Context(), textMessage())
	classified(t, err, notifyv1.ReasonTransient)
}

func TestNewWAHAValidates(t *testing.T) {
	for _, tc := range []struct{ baseURL, wantErr string }{
		{"", "baseURL is required"},
		{"waha:3000", "http://"},
		{"http://waha:3000/?x=1", "query"},
	} {
		_, err := whatsapp.NewWAHA(whatsapp.WAHAConfig{BaseURL: tc.baseURL})
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("NewWAHA(%q) error = %v, want it to mention %q", tc.baseURL, err, tc.wantErr)
		}
	}
}
