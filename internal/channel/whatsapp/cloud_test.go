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

func newMeta(t *testing.T) *providerfake.Meta { return newFake(t, providerfake.NewMeta) }

func cloudSender(t *testing.T, m *providerfake.Meta, edit ...func(*whatsapp.CloudConfig)) *whatsapp.CloudSender {
	t.Helper()
	return buildSender(t, whatsapp.NewCloud, whatsapp.CloudConfig{
		BaseURL:       m.URL,
		APIVersion:    m.APIVersion,
		PhoneNumberID: m.PhoneNumberID,
		AccessToken:   m.AccessToken,
	}, edit)
}

// startCloud returns a Cloud sender and the fake it sends to.
func startCloud(t *testing.T) (channel.Sender, *providerfake.Server) {
	m := newMeta(t)
	return cloudSender(t, m), m.Server
}

func TestCloudSendText(t *testing.T) {
	m := newMeta(t)
	res, got := sendOne(t, cloudSender(t, m), m.Server, textMessage())

	if !strings.HasPrefix(res.ProviderMessageID, "wamid.") {
		t.Errorf("ProviderMessageID = %q, want a wamid", res.ProviderMessageID)
	}
	if h := got.Header.Get("Authorization"); h != "Bearer "+m.AccessToken {
		t.Errorf("Authorization = %q", h)
	}
	if h := got.Header.Get("Content-Type"); h != "application/json" {
		t.Errorf("Content-Type = %q", h)
	}
	jsonEqual(t, got.Body, `{
		"messaging_product": "whatsapp",
		"recipient_type": "individual",
		"to": "`+aliceWire+`",
		"type": "text",
		"text": {"preview_url": false, "body": "Disk almost full\n\nnode-1 is at 91%"}
	}`)
}

func TestCloudSendPrefersWhatsAppText(t *testing.T) {
	m := newMeta(t)
	msg := textMessage()
	msg.WhatsApp = &channel.WhatsAppContent{Text: "*Disk* almost full on node-1"}
	if _, got := sendOne(t, cloudSender(t, m), m.Server, msg); got.Text != "*Disk* almost full on node-1" {
		t.Fatalf("text = %q", got.Text)
	}
}

func TestCloudSendNationalNumberWithDefaultRegion(t *testing.T) {
	m := newMeta(t)
	msg := textMessage()
	msg.Recipient.Phone = "0151 1234-5678"
	s := cloudSender(t, m, func(c *whatsapp.CloudConfig) { c.DefaultRegion = "DE" })
	if _, got := sendOne(t, s, m.Server, msg); got.To != aliceE164 {
		t.Fatalf("to = %q, want %q", got.To, aliceE164)
	}
}

func TestCloudSendTemplate(t *testing.T) {
	m := newMeta(t)
	msg := textMessage()
	msg.WhatsApp = &channel.WhatsAppContent{
		Text:             "ignored: a template is always deliverable, text is not",
		TemplateName:     "disk_alert",
		TemplateLanguage: "de",
		TemplateParams:   []string{"node-1", "91%"},
	}
	_, got := sendOne(t, cloudSender(t, m), m.Server, msg)
	jsonEqual(t, got.Body, `{
		"messaging_product": "whatsapp",
		"recipient_type": "individual",
		"to": "`+aliceWire+`",
		"type": "template",
		"template": {
			"name": "disk_alert",
			"language": {"code": "de"},
			"components": [{"type": "body", "parameters": [
				{"type": "text", "text": "node-1"},
				{"type": "text", "text": "91%"}
			]}]
		}
	}`)
}

func TestCloudSendTemplateDefaults(t *testing.T) {
	m := newMeta(t)
	msg := textMessage()
	msg.WhatsApp = &channel.WhatsAppContent{TemplateName: "hello_world"}
	_, got := sendOne(t, cloudSender(t, m), m.Server, msg)
	// No parameters means no components at all, and the language falls
	// back to the default.
	jsonEqual(t, got.Body, `{
		"messaging_product": "whatsapp", "recipient_type": "individual", "to": "`+aliceWire+`",
		"type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}
	}`)
}

func TestCloudErrors(t *testing.T) {
	checkErrors(t, startCloud, []string{"fbtrace_id"}, []errorCase{
		{name: "throughput rate limit with Retry-After", spec: providerfake.ErrorSpec{Code: 130429, RetryAfter: "7"},
			reason: notifyv1.ReasonRateLimited, code: "meta 130429", retryAfter: 7 * time.Second},
		{name: "pair rate limit", spec: providerfake.ErrorSpec{Code: 131056},
			reason: notifyv1.ReasonRateLimited, code: "meta 131056"},
		{name: "app rate limit", spec: providerfake.ErrorSpec{Code: 4},
			reason: notifyv1.ReasonRateLimited, code: "meta 4"},
		{name: "WABA rate limit", spec: providerfake.ErrorSpec{Code: 80007},
			reason: notifyv1.ReasonRateLimited, code: "meta 80007"},
		{name: "outside the 24h window", spec: providerfake.ErrorSpec{Code: 131047},
			reason: notifyv1.ReasonPermanent, code: "meta 131047", recipient: true, mention: []string{"24 hours", "approved template"}},
		{name: "expired token", spec: providerfake.ErrorSpec{Code: 190},
			reason: notifyv1.ReasonPermanent, code: "meta 190", fault: true, mention: []string{"access token"}},
		{name: "auth exception", spec: providerfake.ErrorSpec{Code: 0},
			reason: notifyv1.ReasonPermanent, code: "meta 0", fault: true},
		{name: "permission denied", spec: providerfake.ErrorSpec{Code: 10},
			reason: notifyv1.ReasonPermanent, code: "meta 10", fault: true},
		{name: "API permission", spec: providerfake.ErrorSpec{Code: 200},
			reason: notifyv1.ReasonPermanent, code: "meta 200", fault: true},
		{name: "undeliverable", spec: providerfake.ErrorSpec{Code: 131026},
			reason: notifyv1.ReasonPermanent, code: "meta 131026", recipient: true},
		{name: "not in allowed list", spec: providerfake.ErrorSpec{Code: 131030},
			reason: notifyv1.ReasonPermanent, code: "meta 131030", recipient: true, mention: []string{"allowed list"}},
		{name: "something went wrong", spec: providerfake.ErrorSpec{Code: 131000},
			reason: notifyv1.ReasonTransient, code: "meta 131000"},
		{name: "service unavailable with Retry-After", spec: providerfake.ErrorSpec{Code: 131016, RetryAfter: "3"},
			reason: notifyv1.ReasonTransient, code: "meta 131016", retryAfter: 3 * time.Second},
		{name: "unknown code on 5xx", spec: providerfake.ErrorSpec{HTTPStatus: http.StatusBadGateway, Code: 999999},
			reason: notifyv1.ReasonTransient, code: "meta 999999"},
		{name: "unknown code on 400", spec: providerfake.ErrorSpec{Code: 999999},
			reason: notifyv1.ReasonPermanent, code: "meta 999999"},
	})
}

func TestCloudBadToken(t *testing.T) {
	m := newMeta(t)
	s := cloudSender(t, m, func(c *whatsapp.CloudConfig) { c.AccessToken = "EAAexpired" })
	if providerFault(t, s, "meta 190").Retryable() {
		t.Error("bad credentials must not be retried")
	}
}

func TestCloudWrongPhoneNumberID(t *testing.T) {
	m := newMeta(t)
	s := cloudSender(t, m, func(c *whatsapp.CloudConfig) { c.PhoneNumberID = "999" })
	_, err := s.Send(t.Context(), textMessage())
	ce := classified(t, err, notifyv1.ReasonPermanent)
	if ce.Code != "meta 100" {
		t.Fatalf("code = %q, want meta 100", ce.Code)
	}
	// The provider's text is not repeated; its code is.
	omits(t, err, "does not exist")
}

func TestCloudTransientThenSuccess(t *testing.T) {
	m := newMeta(t)
	m.FailNext(1, providerfake.ErrorSpec{Code: 131000})
	s := cloudSender(t, m)
	_, err := s.Send(t.Context(), textMessage())
	if !classified(t, err, notifyv1.ReasonTransient).Retryable() {
		t.Fatal("transient error must be retryable")
	}
	sendOne(t, s, m.Server, textMessage())
}

func TestCloudInvalidPhoneNeverReachesServer(t *testing.T) {
	for _, phone := range []string{"", "015112345678", "+49 151 123", "not a number"} {
		t.Run(phone, func(t *testing.T) {
			m := newMeta(t)
			msg := textMessage()
			msg.Recipient.Phone = phone
			sendRefused(t, cloudSender(t, m), m.Server, msg, notifyv1.ReasonInvalidAddress, "invalid phone", "alice")
		})
	}
}

func TestCloudNothingToSend(t *testing.T) {
	m := newMeta(t)
	msg := textMessage()
	msg.Title, msg.Body = "", " "
	sendRefused(t, cloudSender(t, m), m.Server, msg, notifyv1.ReasonPermanent)
}

func TestCloudDeadline(t *testing.T) {
	m := newMeta(t)
	err := timedOut(t, cloudSender(t, m), m.Server)
	if !classified(t, err, notifyv1.ReasonTimeout).Retryable() {
		t.Fatal("a timeout must be retryable")
	}
	if ce2 := channel.Classify(err); ce2.Reason != notifyv1.ReasonTimeout {
		t.Fatalf("Classify reason = %s", ce2.Reason)
	}
}

func TestCloudClientTimeout(t *testing.T) {
	m := newMeta(t)
	m.StallNext(1)
	s := cloudSender(t, m, func(c *whatsapp.CloudConfig) {
		c.HTTPClient = &http.Client{Timeout: 200 * time.Millisecond}
	})
	_, err := s.Send(t.Context(), textMessage())
	classified(t, err, notifyv1.ReasonTimeout)
}

// sendViaRawServer sends a text message through a Cloud sender whose base
// URL answers every request with the given response.
func sendViaRawServer(t *testing.T, status int, contentType, body string) error {
	t.Helper()
	s := rawServer(t, status, contentType, body)
	c, err := whatsapp.NewCloud(whatsapp.CloudConfig{BaseURL: s.URL, PhoneNumberID: "1", AccessToken: "t"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Send(t.Context(), textMessage())
	return err
}

func TestCloudGatewayErrorPage(t *testing.T) {
	err := sendViaRawServer(t, http.StatusBadGateway, "text/html", "<html><body>502 Bad Gateway</body></html>")
	ce := classified(t, err, notifyv1.ReasonTransient)
	if ce.Code != "http 502" {
		t.Errorf("code = %q", ce.Code)
	}
	contains(t, err, "502 Bad Gateway")
}

// A proxy in front of the API that gives up waiting answers 408: the
// request was not handled, so it is retried like any HTTP channel's.
func TestCloudRequestTimeoutIsTransient(t *testing.T) {
	err := sendViaRawServer(t, http.StatusRequestTimeout, "text/plain", "request timed out")
	ce := classified(t, err, notifyv1.ReasonTransient)
	if ce.Code != "http 408" || ce.ProviderFault() {
		t.Errorf("got %+v, want code http 408 and no provider fault", ce)
	}
	omits(t, err, "request timed out")
}

func TestCloudSuccessThatIsNotTheAPI(t *testing.T) {
	err := sendViaRawServer(t, http.StatusOK, "text/html", "<html>Sign in to the proxy</html>")
	if ce := classified(t, err, notifyv1.ReasonPermanent); !ce.ProviderFault() {
		t.Fatal("want a provider fault: the base URL is wrong")
	}
	contains(t, err, "is the base URL right?")
	omits(t, err, "Sign in to the proxy")
}

func TestCloudNetworkError(t *testing.T) {
	c, err := whatsapp.NewCloud(whatsapp.CloudConfig{BaseURL: closedURL(t), PhoneNumberID: "1", AccessToken: "t"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Send(t.Context(), textMessage())
	classified(t, err, notifyv1.ReasonTransient)
}

func TestNewCloudValidates(t *testing.T) {
	valid := whatsapp.CloudConfig{PhoneNumberID: "106540352242922", AccessToken: "EAAx"}
	checkValidation(t, whatsapp.NewCloud, valid, []configCase[whatsapp.CloudConfig]{
		{"no phone number ID", func(c *whatsapp.CloudConfig) { c.PhoneNumberID = "" }, "phoneNumberID is required"},
		{"phone number instead of ID", func(c *whatsapp.CloudConfig) { c.PhoneNumberID = "+4915112345678" }, "not the phone number"},
		{"no token", func(c *whatsapp.CloudConfig) { c.AccessToken = " " }, "accessToken is required"},
		{"bad version", func(c *whatsapp.CloudConfig) { c.APIVersion = "21" }, "v21.0"},
		{"bad scheme", func(c *whatsapp.CloudConfig) { c.BaseURL = "ftp://graph.facebook.com" }, "http://"},
		{"no host", func(c *whatsapp.CloudConfig) { c.BaseURL = "https://" }, "no host"},
	})
}
