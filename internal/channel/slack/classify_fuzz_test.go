package slack_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/slack"
)

// FuzzClassify checks Classify on arbitrary answers: it never panics,
// success and error exclude each other, only a 2xx succeeds, an error
// always has a reason, and nothing of the body reaches the error but a
// well-formed code.
func FuzzClassify(f *testing.F) {
	for _, c := range []struct {
		status int
		body   string
	}{
		{200, `{"ok":true,"channel":"C1","ts":"1503435956.000247"}`},
		{200, `{"ok":false,"error":"channel_not_found"}`},
		{200, `{"ok":false,"error":"invalid_auth"}`},
		{200, `{"ok":false,"error":"ratelimited"}`},
		{429, `{"ok":false,"error":"ratelimited"}`},
		{200, `{"ok":false,"error":"<script>evil</script>"}`},
		{200, `not json`},
		{500, ``},
		{200, `{"ok":false}`},
	} {
		f.Add(c.status, c.body, "1")
	}
	f.Fuzz(func(t *testing.T, status int, body, retryAfter string) {
		if status < 100 || status > 999 {
			return
		}
		r := &channel.HTTPResponse{Status: status, Header: http.Header{"Retry-After": {retryAfter}}, Body: []byte(body)}
		ts, err := slack.Classify(r, time.Unix(1700000000, 0))
		if err != nil {
			if ts != "" {
				t.Fatalf("ts %q with error %v", ts, err)
			}
			if err.Reason == "" || err.Error() == "" {
				t.Fatalf("error without reason: %#v", err)
			}
			if err.RetryAfter < 0 {
				t.Fatalf("negative Retry-After %s", err.RetryAfter)
			}
			for _, bad := range []string{"<", ">", "\n", "\""} {
				if strings.Contains(err.Error(), bad) {
					t.Fatalf("error %q carries text of the answer", err)
				}
			}
			return
		}
		if status < 200 || status > 299 {
			t.Fatalf("HTTP %d succeeded", status)
		}
	})
}
