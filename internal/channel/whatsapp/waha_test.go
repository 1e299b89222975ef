package whatsapp_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/whatsapp"
	"github.com/herald-dev/herald/internal/dev/whatsappfake"
)

func newWAHA(t *testing.T) *whatsappfake.WAHA {
	t.Helper()
	f := whatsappfake.NewWAHA(whatsappfake.WithLogf(t.Logf))
	t.Cleanup(f.Close)
	return f
}

func wahaSender(t *testing.T, f *whatsappfake.WAHA, edit ...func(*whatsapp.WAHAConfig)) *whatsapp.WAHASender {
	t.Helper()
	cfg := whatsapp.WAHAConfig{BaseURL: f.URL, APIKey: f.APIKey}
	for _, e := range edit {
		e(&cfg)
	}
	s, err := whatsapp.NewWAHA(cfg)
	if err != nil {
		t.Fatalf("NewWAHA: %v", err)
	}
	return s
}

func TestWAHASendText(t *testing.T) {
	styles := []struct {
		name  string
		style whatsappfake.WAHAIDStyle
	}{
		{"id string", whatsappfake.WAHAIDString},
		{"id object", whatsappfake.WAHAIDObject},
		{"NOWEB key", whatsappfake.WAHAIDKey},
	}
	for _, st := range styles {
		t.Run(st.name, func(t *testing.T) {
			f := newWAHA(t)
			f.SetIDStyle(st.style)
			res, err := wahaSender(t, f).Send(t.Context(), textMessage())
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			noRejections(t, f.Server)
			got := onlyMessage(t, f.Server)
			if res.ProviderMessageID == "" || res.ProviderMessageID != got.ID {
				t.Errorf("ProviderMessageID = %q, want the fake's %q", res.ProviderMessageID, got.ID)
			}
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
	if _, err := s.Send(t.Context(), textMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := onlyMessage(t, f.Server)
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
	if _, err := wahaSender(t, f).Send(t.Context(), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := onlyMessage(t, f.Server); got.Text != wantText {
		t.Fatalf("text = %q, want %q", got.Text, wantText)
	}
}

func TestWAHATemplateWithoutTextFails(t *testing.T) {
	f := newWAHA(t)
	msg := textMessage()
	msg.Title, msg.Body = "", ""
	msg.WhatsApp = &channel.WhatsAppContent{TemplateName: "disk_alert"}
	_, err := wahaSender(t, f).Send(t.Context(), msg)
	classified(t, err, notifyv1.ReasonPermanent)
	contains(t, err, "disk_alert", "no template support")
	if f.Requests() != 0 {
		t.Fatal("a request reached the server")
	}
}

func TestWAHAErrors(t *testing.T) {
	tests := []struct {
		name       string
		spec       whatsappfake.ErrorSpec
		reason     notifyv1.FailureReason
		code       string
		retryAfter time.Duration
		fault      bool
		mention    []string
	}{
		{name: "session starting", spec: whatsappfake.ErrorSpec{SessionStatus: "STARTING"},
			reason: notifyv1.ReasonTransient, code: "waha 422", mention: []string{"still starting"}},
		{name: "session needs QR scan", spec: whatsappfake.ErrorSpec{SessionStatus: "SCAN_QR_CODE"},
			reason: notifyv1.ReasonPermanent, code: "waha 422", fault: true, mention: []string{"SCAN_QR_CODE"}},
		{name: "validation", spec: whatsappfake.ErrorSpec{HTTPStatus: http.StatusBadRequest, Message: "text should not be empty"},
			reason: notifyv1.ReasonPermanent, code: "waha 400", mention: []string{"text should not be empty"}},
		{name: "unprocessable", spec: whatsappfake.ErrorSpec{HTTPStatus: http.StatusUnprocessableEntity, Message: "no"},
			reason: notifyv1.ReasonPermanent, code: "waha 422"},
		{name: "forbidden", spec: whatsappfake.ErrorSpec{HTTPStatus: http.StatusForbidden},
			reason: notifyv1.ReasonPermanent, code: "waha 403", fault: true},
		{name: "too many requests", spec: whatsappfake.ErrorSpec{HTTPStatus: http.StatusTooManyRequests, RetryAfter: "5"},
			reason: notifyv1.ReasonRateLimited, code: "waha 429", retryAfter: 5 * time.Second},
		{name: "request timeout", spec: whatsappfake.ErrorSpec{HTTPStatus: http.StatusRequestTimeout, RetryAfter: "2"},
			reason: notifyv1.ReasonTransient, code: "waha 408", retryAfter: 2 * time.Second},
		{name: "engine error", spec: whatsappfake.ErrorSpec{HTTPStatus: http.StatusInternalServerError, Message: "Evaluation failed"},
			reason: notifyv1.ReasonTransient, code: "waha 500", mention: []string{"Evaluation failed"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newWAHA(t)
			f.FailNext(1, tc.spec)
			_, err := wahaSender(t, f).Send(t.Context(), textMessage())
			ce := classified(t, err, tc.reason)
			if ce.Code != tc.code {
				t.Errorf("code = %q, want %q", ce.Code, tc.code)
			}
			if ce.RetryAfter != tc.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", ce.RetryAfter, tc.retryAfter)
			}
			if ce.ProviderFault != tc.fault {
				t.Errorf("ProviderFault = %v, want %v", ce.ProviderFault, tc.fault)
			}
			contains(t, err, append(tc.mention, "body: {")...)
			noRejections(t, f.Server)
		})
	}
}

func TestWAHABadAPIKey(t *testing.T) {
	f := newWAHA(t)
	s := wahaSender(t, f, func(c *whatsapp.WAHAConfig) { c.APIKey = "wrong" })
	_, err := s.Send(t.Context(), textMessage())
	ce := classified(t, err, notifyv1.ReasonPermanent)
	if !ce.ProviderFault || ce.Code != "waha 401" {
		t.Fatalf("got %+v, want a provider fault with code waha 401", ce)
	}
	contains(t, err, "Unauthorized")
}

func TestWAHAUnknownSession(t *testing.T) {
	f := newWAHA(t)
	s := wahaSender(t, f, func(c *whatsapp.WAHAConfig) { c.Session = "sales" })
	_, err := s.Send(t.Context(), textMessage())
	ce := classified(t, err, notifyv1.ReasonPermanent)
	if !ce.ProviderFault || ce.Code != "waha 404" {
		t.Fatalf("got %+v, want a provider fault with code waha 404", ce)
	}
	contains(t, err, "didn't find a session")
}

func TestWAHAInvalidPhoneNeverReachesServer(t *testing.T) {
	f := newWAHA(t)
	msg := textMessage()
	msg.Recipient.Phone = "0151 1234 5678" // national, and no default region
	_, err := wahaSender(t, f).Send(t.Context(), msg)
	classified(t, err, notifyv1.ReasonInvalidAddress)
	contains(t, err, "invalid phone", "country code")
	if f.Requests() != 0 {
		t.Fatal("a request reached the server")
	}
}

func TestWAHADeadline(t *testing.T) {
	f := newWAHA(t)
	f.StallNext(1)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := wahaSender(t, f).Send(ctx, textMessage())
	classified(t, err, notifyv1.ReasonTimeout)
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
