package telegram_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/telegram"
)

// FuzzClassify checks Classify on arbitrary answers: no panic, success
// and error exclude each other, every error has a reason and a
// non-negative wait, and the description never reaches the error.
func FuzzClassify(f *testing.F) {
	for _, c := range []struct {
		status int
		body   string
	}{
		{200, `{"ok":true,"result":{"message_id":42,"chat":{"id":1},"date":1,"text":"x"}}`},
		{403, `{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}`},
		{400, `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`},
		{429, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}`},
		{400, `{"ok":false,"error_code":400,"description":"x","parameters":{"migrate_to_chat_id":-100123}}`},
		{401, `{"ok":false,"error_code":401,"description":"Unauthorized"}`},
		{200, `{"ok":false,"error_code":200}`},
		{429, `{"ok":false,"error_code":429,"parameters":{"retry_after":99999999999999999}}`},
		{502, `<html>bad gateway</html>`},
	} {
		f.Add(c.status, c.body)
	}
	f.Fuzz(func(t *testing.T, status int, body string) {
		if status < 100 || status > 999 {
			return
		}
		r := &channel.HTTPResponse{Status: status, Header: http.Header{}, Body: []byte(body)}
		id, err := telegram.Classify(r, time.Unix(1700000000, 0))
		if err != nil {
			if id != "" || err.Reason == "" || err.RetryAfter < 0 {
				t.Fatalf("id %q, error %#v", id, err)
			}
			if strings.ContainsAny(err.Error(), "<>\"\n") {
				t.Fatalf("error %q carries text of the answer", err)
			}
			return
		}
		if status < 200 || status > 299 {
			t.Fatalf("HTTP %d succeeded", status)
		}
	})
}
