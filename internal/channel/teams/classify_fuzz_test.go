package teams_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/teams"
)

// FuzzClassify: only 2xx succeeds, every error has a reason and a
// non-negative wait, 429, 5xx (and 408, 425) are retried, and 401/403/404 are the
// fault of whoever owns the URL.
func FuzzClassify(f *testing.F) {
	for _, s := range []int{200, 202, 400, 401, 404, 429, 500, 503} {
		f.Add(s, "5", true)
	}
	f.Fuzz(func(t *testing.T, status int, retryAfter string, fromRecipient bool) {
		if status < 100 || status > 999 {
			return
		}
		r := &channel.HTTPResponse{Status: status, Header: http.Header{"Retry-After": {retryAfter}}}
		err := teams.Classify(r, time.Unix(1700000000, 0), fromRecipient)
		if err == nil {
			if status < 200 || status > 299 {
				t.Fatalf("HTTP %d succeeded", status)
			}
			return
		}
		if err.Reason == "" || err.RetryAfter < 0 {
			t.Fatalf("error %#v", err)
		}
		if (status == 429 || status == 408 || status == 425 || status >= 500) != err.Retryable() {
			t.Fatalf("HTTP %d retryable %v", status, err.Retryable())
		}
		if status == 401 || status == 403 || status == 404 {
			want := channel.ScopeProvider
			if fromRecipient {
				want = channel.ScopeRecipient
			}
			if err.Scope != want {
				t.Fatalf("HTTP %d scope %q", status, err.Scope)
			}
		}
	})
}
