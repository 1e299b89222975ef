package providerfake_test

import (
	"strings"
	"testing"

	"github.com/herald-dev/herald/internal/dev/providerfake"
)

// The chat fakes refuse what their providers refuse, in the providers'
// own error shapes, and accept nothing that drifts from the documented
// request.

func TestSlackRejectsMalformedRequests(t *testing.T) {
	s := providerfake.NewSlack()
	defer s.Close()
	auth := map[string]string{"Authorization": "Bearer " + s.Token}
	for _, tc := range []struct {
		name   string
		req    rawReq
		status int
		code   string
	}{
		{"no token", rawReq{path: "/api/chat.postMessage", contentType: "application/json", body: `{"channel":"C1AB","text":"x"}`}, 200, "not_authed"},
		{"wrong token", rawReq{path: "/api/chat.postMessage", contentType: "application/json", body: `{"channel":"C1AB","text":"x"}`, header: map[string]string{"Authorization": "Bearer xoxb-other"}}, 200, "invalid_auth"},
		{"unknown method", rawReq{path: "/api/chat.postMessages", contentType: "application/json", body: `{}`, header: auth}, 404, "unknown_method"},
		{"form post", rawReq{path: "/api/chat.postMessage", contentType: "application/x-www-form-urlencoded", body: "channel=C1AB&text=x", header: auth}, 200, "invalid_form_data"},
		{"not JSON", rawReq{path: "/api/chat.postMessage", contentType: "application/json", body: `{`, header: auth}, 200, "invalid_json"},
		{"unknown field", rawReq{path: "/api/chat.postMessage", contentType: "application/json", body: `{"channel":"C1AB","text":"x","colour":"red"}`, header: auth}, 200, "invalid_json"},
		{"channel by name", rawReq{path: "/api/chat.postMessage", contentType: "application/json", body: `{"channel":"#ops","text":"x"}`, header: auth}, 200, "channel_not_found"},
		{"no text or blocks", rawReq{path: "/api/chat.postMessage", contentType: "application/json", body: `{"channel":"C1AB","text":" "}`, header: auth}, 200, "no_text"},
		{"text too long", rawReq{path: "/api/chat.postMessage", contentType: "application/json", body: `{"channel":"C1AB","text":"` + strings.Repeat("x", 40001) + `"}`, header: auth}, 200, "msg_too_long"},
		{"blocks without type", rawReq{path: "/api/chat.postMessage", contentType: "application/json", body: `{"channel":"C1AB","blocks":[{"text":"x"}]}`, header: auth}, 200, "invalid_blocks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := do(t, s.URL, tc.req)
			if status != tc.status || body["ok"] != false || body["error"] != tc.code {
				t.Errorf("got %d %v, want %d error %s", status, body, tc.status, tc.code)
			}
		})
	}
	if len(s.Messages()) != 0 {
		t.Errorf("malformed requests were accepted: %v", s.Messages())
	}
	if got := len(s.Rejections()); got != 10 {
		t.Errorf("%d rejections recorded, want 10", got)
	}
	status, body := do(t, s.URL, rawReq{path: "/api/chat.postMessage", contentType: "application/json; charset=utf-8",
		body: `{"channel":"C1AB","text":"hi"}`, header: auth})
	if status != 200 || body["ok"] != true || body["ts"] == "" {
		t.Errorf("a good request: %d %v", status, body)
	}
}

func TestSlackScriptedAnswers(t *testing.T) {
	s := providerfake.NewSlack()
	defer s.Close()
	s.FailNext(1, providerfake.ErrorSpec{HTTPStatus: 429})
	s.RefuseConversation("C0GONE", "channel_not_found")
	auth := map[string]string{"Authorization": "Bearer " + s.Token}
	status, body := do(t, s.URL, rawReq{path: "/api/chat.postMessage", contentType: "application/json", body: `{"channel":"C1AB","text":"x"}`, header: auth})
	if status != 429 || body["error"] != "ratelimited" {
		t.Errorf("scripted 429: %d %v", status, body)
	}
	status, body = do(t, s.URL, rawReq{path: "/api/chat.postMessage", contentType: "application/json", body: `{"channel":"C0GONE","text":"x"}`, header: auth})
	if status != 200 || body["error"] != "channel_not_found" {
		t.Errorf("refused conversation: %d %v", status, body)
	}
}

func TestTelegramRejectsMalformedRequests(t *testing.T) {
	tg := providerfake.NewTelegram()
	defer tg.Close()
	path := "/bot" + tg.Token + "/sendMessage"
	for _, tc := range []struct {
		name   string
		req    rawReq
		status int
		desc   string
	}{
		{"wrong token", rawReq{path: "/bot1:wrong/sendMessage", contentType: "application/json", body: `{"chat_id":1,"text":"x"}`}, 401, "Unauthorized"},
		{"no bot path", rawReq{path: "/sendMessage", contentType: "application/json", body: `{}`}, 404, "Not Found"},
		{"other method", rawReq{path: "/bot" + tg.Token + "/sendPhoto", contentType: "application/json", body: `{}`}, 404, "Not Found: method not found"},
		{"empty text", rawReq{path: path, contentType: "application/json", body: `{"chat_id":1,"text":""}`}, 400, "Bad Request: message text is empty"},
		{"no chat", rawReq{path: path, contentType: "application/json", body: `{"text":"x"}`}, 400, "Bad Request: chat_id is empty"},
		{"numeric chat as a string", rawReq{path: path, contentType: "application/json", body: `{"chat_id":"1","text":"x"}`}, 400, "Bad Request: chat not found"},
		{"bad parse mode", rawReq{path: path, contentType: "application/json", body: `{"chat_id":1,"text":"x","parse_mode":"BBCode"}`}, 400, "Bad Request: unsupported parse_mode"},
		{"too long", rawReq{path: path, contentType: "application/json", body: `{"chat_id":1,"text":"` + strings.Repeat("x", 4097) + `"}`}, 400, "Bad Request: message is too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := do(t, tg.URL, tc.req)
			if status != tc.status || body["ok"] != false || body["description"] != tc.desc || body["error_code"] != float64(tc.status) {
				t.Errorf("got %d %v, want %d %q", status, body, tc.status, tc.desc)
			}
		})
	}
	for _, r := range tg.Rejections() {
		if strings.Contains(r, tg.Token) {
			t.Errorf("rejection %q shows the token", r)
		}
	}
	tg.FailNext(1, providerfake.ErrorSpec{Code: 429, RetryAfter: "3"})
	status, body := do(t, tg.URL, rawReq{path: path, contentType: "application/json", body: `{"chat_id":1,"text":"x"}`})
	params, _ := body["parameters"].(map[string]any)
	if status != 429 || params["retry_after"] != float64(3) {
		t.Errorf("scripted 429: %d %v", status, body)
	}
	tg.BlockBy("7")
	status, body = do(t, tg.URL, rawReq{path: path, contentType: "application/json", body: `{"chat_id":7,"text":"x"}`})
	if status != 403 || body["description"] != "Forbidden: bot was blocked by the user" {
		t.Errorf("blocked: %d %v", status, body)
	}
}

func TestTeamsRejectsMalformedRequests(t *testing.T) {
	tm := providerfake.NewTeams()
	defer tm.Close()
	u := tm.WebhookURL("ops")
	path := strings.TrimPrefix(u, tm.URL)
	card := `{"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive","content":{"type":"AdaptiveCard","version":"1.5","body":[{"type":"TextBlock","text":"x"}]}}]}`
	for _, tc := range []struct {
		name   string
		req    rawReq
		status int
		code   string
	}{
		{"wrong signature", rawReq{path: strings.Replace(path, "sig=", "sig=x", 1), contentType: "application/json", body: card}, 401, "DirectApiAuthorizationRequired"},
		{"another room's signature", rawReq{path: strings.Replace(path, "/workflows/ops/", "/workflows/dev/", 1), contentType: "application/json", body: card}, 401, "DirectApiAuthorizationRequired"},
		{"unknown path", rawReq{path: "/workflows/ops", contentType: "application/json", body: card}, 404, "WorkflowNotFound"},
		{"not a message", rawReq{path: path, contentType: "application/json", body: `{"type":"AdaptiveCard","version":"1.5"}`}, 400, "InvalidRequestContent"},
		{"not an adaptive card", rawReq{path: path, contentType: "application/json", body: strings.Replace(card, "AdaptiveCard", "HeroCard", 1)}, 400, "InvalidRequestContent"},
		{"text/plain", rawReq{path: path, contentType: "text/plain", body: card}, 415, "InvalidRequestContent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := do(t, tm.URL, tc.req)
			e, _ := body["error"].(map[string]any)
			if status != tc.status || e["code"] != tc.code {
				t.Errorf("got %d %v, want %d %s", status, body, tc.status, tc.code)
			}
		})
	}
	if len(tm.Messages()) != 0 {
		t.Errorf("malformed requests were accepted: %v", tm.Messages())
	}
}
