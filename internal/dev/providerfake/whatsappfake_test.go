package providerfake_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/whatsapp"
	"github.com/herald-dev/herald/internal/dev/providerfake"
)

type rawReq struct {
	method, path, contentType, body string
	header                          map[string]string
	basicUser, basicPass            string
}

// do sends a hand-built request and decodes the JSON answer.
func do(t *testing.T, base string, r rawReq) (int, map[string]any) {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(t.Context(), r.method, base+r.path, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	if r.basicUser != "" {
		req.SetBasicAuth(r.basicUser, r.basicPass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("answer is not JSON: %s", data)
	}
	return resp.StatusCode, out
}

func TestMetaRejectsMalformedRequests(t *testing.T) {
	m := providerfake.NewMeta()
	defer m.Close()
	path := "/" + m.APIVersion + "/" + m.PhoneNumberID + "/messages"
	auth := map[string]string{"Authorization": "Bearer " + m.AccessToken}
	good := `{"messaging_product":"whatsapp","recipient_type":"individual","to":"4915112345678","type":"text","text":{"preview_url":false,"body":"hi"}}`

	tests := []struct {
		name       string
		req        rawReq
		wantStatus int
		wantCode   float64
	}{
		{"no token", rawReq{path: path, contentType: "application/json", body: good}, 401, 190},
		{"wrong path", rawReq{path: "/v21.0/123/messages", contentType: "application/json", body: good, header: auth}, 400, 100},
		{"GET", rawReq{method: http.MethodGet, path: path, header: auth}, 400, 100},
		{"form body", rawReq{path: path, contentType: "application/x-www-form-urlencoded", body: "to=1", header: auth}, 400, 100},
		{"missing messaging_product", rawReq{path: path, contentType: "application/json", header: auth,
			body: `{"to":"4915112345678","type":"text","text":{"body":"hi"}}`}, 400, 100},
		{"plus in to", rawReq{path: path, contentType: "application/json", header: auth,
			body: strings.Replace(good, `"to":"49`, `"to":"+49`, 1)}, 400, 131009},
		{"misspelled field", rawReq{path: path, contentType: "application/json", header: auth,
			body: strings.Replace(good, `"preview_url"`, `"previewUrl"`, 1)}, 400, 100},
		{"empty body text", rawReq{path: path, contentType: "application/json", header: auth,
			body: strings.Replace(good, `"body":"hi"`, `"body":""`, 1)}, 400, 100},
		{"template without language", rawReq{path: path, contentType: "application/json", header: auth,
			body: `{"messaging_product":"whatsapp","to":"4915112345678","type":"template","template":{"name":"x"}}`}, 400, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, out := do(t, m.URL, tc.req)
			if status != tc.wantStatus {
				t.Fatalf("status = %d, want %d (%v)", status, tc.wantStatus, out)
			}
			e, _ := out["error"].(map[string]any)
			if e == nil || e["code"] != tc.wantCode || e["message"] == "" || e["fbtrace_id"] == nil {
				t.Fatalf("answer %v is not a Graph API error with code %v", out, tc.wantCode)
			}
		})
	}
	if n := len(m.Messages()); n != 0 {
		t.Fatalf("accepted %d malformed messages", n)
	}
	if got, want := len(m.Rejections()), len(tests); got != want {
		t.Fatalf("%d rejections recorded, want %d", got, want)
	}

	// The well-formed request is accepted.
	status, out := do(t, m.URL, rawReq{path: path, contentType: "application/json", header: auth, body: good})
	if status != 200 || out["messaging_product"] != "whatsapp" {
		t.Fatalf("good request: %d %v", status, out)
	}
}

func TestTwilioRejectsMalformedRequests(t *testing.T) {
	f := providerfake.NewTwilio()
	defer f.Close()
	form := url.Values{"To": {"whatsapp:+4915112345678"}, "From": {"whatsapp:" + f.From}, "Body": {"hi"}}
	with := func(k, v string) string {
		c := url.Values{}
		for kk, vv := range form {
			c[kk] = vv
		}
		if v == "" {
			c.Del(k)
		} else {
			c.Set(k, v)
		}
		return c.Encode()
	}
	const formCT = "application/x-www-form-urlencoded"
	tests := []struct {
		name       string
		req        rawReq
		wantStatus int
		wantCode   float64
	}{
		{"no auth", rawReq{path: f.MessagesPath(), contentType: formCT, body: form.Encode()}, 401, 20003},
		{"wrong token", rawReq{path: f.MessagesPath(), contentType: formCT, body: form.Encode(), basicUser: f.AccountSID, basicPass: "x"}, 401, 20003},
		{"other account", rawReq{path: "/2010-04-01/Accounts/AC00/Messages.json", contentType: formCT, body: form.Encode(),
			basicUser: f.AccountSID, basicPass: f.AuthToken}, 404, 20404},
		{"JSON body", rawReq{path: f.MessagesPath(), contentType: "application/json", body: `{"To":"x"}`,
			basicUser: f.AccountSID, basicPass: f.AuthToken}, 400, 21604},
		{"To without whatsapp prefix", rawReq{path: f.MessagesPath(), contentType: formCT, body: with("To", "+4915112345678"),
			basicUser: f.AccountSID, basicPass: f.AuthToken}, 400, 21211},
		{"missing From", rawReq{path: f.MessagesPath(), contentType: formCT, body: with("From", ""),
			basicUser: f.AccountSID, basicPass: f.AuthToken}, 400, 21603},
		{"missing Body", rawReq{path: f.MessagesPath(), contentType: formCT, body: with("Body", ""),
			basicUser: f.AccountSID, basicPass: f.AuthToken}, 400, 21619},
		{"variables without ContentSid", rawReq{path: f.MessagesPath(), contentType: formCT, body: with("ContentVariables", `{"1":"a"}`),
			basicUser: f.AccountSID, basicPass: f.AuthToken}, 400, 21654},
		{"bad ContentSid", rawReq{path: f.MessagesPath(), contentType: formCT, body: with("ContentSid", "HX1"),
			basicUser: f.AccountSID, basicPass: f.AuthToken}, 400, 21655},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, out := do(t, f.URL, tc.req)
			if status != tc.wantStatus || out["code"] != tc.wantCode || out["status"] != float64(tc.wantStatus) || out["more_info"] == nil {
				t.Fatalf("got %d %v, want a Twilio error %d with code %v", status, out, tc.wantStatus, tc.wantCode)
			}
		})
	}
	if n := len(f.Messages()); n != 0 {
		t.Fatalf("accepted %d malformed messages", n)
	}
}

func TestWAHARejectsMalformedRequests(t *testing.T) {
	f := providerfake.NewWAHA()
	defer f.Close()
	key := map[string]string{"X-Api-Key": f.APIKey}
	tests := []struct {
		name       string
		req        rawReq
		wantStatus int
	}{
		{"no key", rawReq{path: "/api/sendText", contentType: "application/json", body: `{"chatId":"4915112345678@c.us","text":"hi"}`}, 401},
		{"wrong path", rawReq{path: "/api/sendMessage", contentType: "application/json", header: key, body: `{}`}, 404},
		{"phone without suffix", rawReq{path: "/api/sendText", contentType: "application/json", header: key,
			body: `{"chatId":"+4915112345678","text":"hi"}`}, 400},
		{"empty text", rawReq{path: "/api/sendText", contentType: "application/json", header: key,
			body: `{"chatId":"4915112345678@c.us","text":""}`}, 400},
		{"unknown session", rawReq{path: "/api/sendText", contentType: "application/json", header: key,
			body: `{"session":"x","chatId":"4915112345678@c.us","text":"hi"}`}, 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, out := do(t, f.URL, tc.req)
			if status != tc.wantStatus || out["statusCode"] != float64(tc.wantStatus) || out["message"] == nil {
				t.Fatalf("got %d %v, want a NestJS error %d", status, out, tc.wantStatus)
			}
		})
	}
	// Without a session field WAHA uses "default".
	status, out := do(t, f.URL, rawReq{path: "/api/sendText", contentType: "application/json", header: key,
		body: `{"chatId":"4915112345678@c.us","text":"hi"}`})
	if status != http.StatusCreated || out["id"] == nil {
		t.Fatalf("good request: %d %v", status, out)
	}
}

// FailNext answers exactly k requests with the scripted error, in order
// with StallNext, and then accepts again.
func TestFailNextIsConsumedInOrder(t *testing.T) {
	m := providerfake.NewMeta()
	defer m.Close()
	s, err := whatsapp.NewCloud(whatsapp.CloudConfig{BaseURL: m.URL, PhoneNumberID: m.PhoneNumberID, AccessToken: m.AccessToken})
	if err != nil {
		t.Fatal(err)
	}
	m.FailNext(2, providerfake.ErrorSpec{Code: 130429})
	m.FailNext(1, providerfake.ErrorSpec{Code: 131047})
	msg := &channel.Message{Body: "hi", Recipient: channel.Recipient{Phone: "+4915112345678"}}

	var reasons []notifyv1.FailureReason
	for range 3 {
		_, err := s.Send(t.Context(), msg)
		reasons = append(reasons, channel.Classify(err).Reason)
	}
	want := []notifyv1.FailureReason{notifyv1.ReasonRateLimited, notifyv1.ReasonRateLimited, notifyv1.ReasonPermanent}
	if fmt.Sprint(reasons) != fmt.Sprint(want) {
		t.Fatalf("reasons = %v, want %v", reasons, want)
	}
	if _, err := s.Send(t.Context(), msg); err != nil {
		t.Fatalf("after the script: %v", err)
	}
	if m.Requests() != 4 || len(m.Messages()) != 1 {
		t.Fatalf("requests %d, messages %d", m.Requests(), len(m.Messages()))
	}
}

func TestWaitForMessagesConcurrent(t *testing.T) {
	w := providerfake.NewWAHA()
	defer w.Close()
	s, err := whatsapp.NewWAHA(whatsapp.WAHAConfig{BaseURL: w.URL, APIKey: w.APIKey})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			msg := &channel.Message{Body: fmt.Sprintf("message %d", i), Recipient: channel.Recipient{Phone: "+4915112345678"}}
			if _, err := s.Send(context.Background(), msg); err != nil {
				errs <- err
			}
		})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got, err := w.WaitForMessages(ctx, n)
	if err != nil {
		t.Fatalf("WaitForMessages: %v (have %d)", err, len(got))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ids := map[string]bool{}
	for _, m := range got {
		ids[m.ID] = true
	}
	if len(ids) != n {
		t.Fatalf("%d distinct IDs for %d messages", len(ids), n)
	}
}

func TestWaitForMessagesHonoursContext(t *testing.T) {
	w := providerfake.NewWAHA()
	defer w.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	got, err := w.WaitForMessages(ctx, 1)
	if !errors.Is(err, context.Canceled) || len(got) != 0 {
		t.Fatalf("got %d messages, err %v", len(got), err)
	}
}

// Close must not hang on a stalled request.
func TestCloseReleasesStalledRequests(t *testing.T) {
	tw := providerfake.NewTwilio()
	tw.StallNext(1)
	s, err := whatsapp.NewTwilio(whatsapp.TwilioConfig{BaseURL: tw.URL, AccountSID: tw.AccountSID, AuthToken: tw.AuthToken, From: tw.From})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Send(context.Background(), &channel.Message{Body: "hi", Recipient: channel.Recipient{Phone: "+4915112345678"}})
		done <- err
	}()
	tw.Close()
	if err := <-done; err == nil {
		t.Fatal("a stalled request succeeded")
	}
}
