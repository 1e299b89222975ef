package whatsapp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/dev/whatsappfake"
)

// alicePhone is a valid German mobile number; aliceE164 its E.164 form.
const (
	alicePhone = "+49 151 1234 5678"
	aliceE164  = "+4915112345678"
	aliceWire  = "4915112345678"
)

func textMessage() *channel.Message {
	return &channel.Message{
		ID:        "7d1c6b8e-uid",
		Title:     "Disk almost full",
		Body:      "node-1 is at 91%",
		Recipient: channel.Recipient{Name: "alice", Phone: alicePhone},
	}
}

const wantText = "Disk almost full\n\nnode-1 is at 91%"

// classified asserts err is a *channel.Error with the given reason.
func classified(t *testing.T, err error, reason notifyv1.FailureReason) *channel.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("Send succeeded, want a %s error", reason)
	}
	var ce *channel.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *channel.Error", err, err)
	}
	if ce.Reason != reason {
		t.Fatalf("reason = %s, want %s (error: %v)", ce.Reason, reason, err)
	}
	return ce
}

// waitCtx bounds waiting for a fake: generous, because it only matters when
// the test is already failing.
func waitCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func noRejections(t *testing.T, s *whatsappfake.Server) {
	t.Helper()
	if r := s.Rejections(); len(r) > 0 {
		t.Fatalf("fake rejected requests as malformed: %q", r)
	}
}

// onlyMessage waits for the single message a fake should have accepted.
func onlyMessage(t *testing.T, s *whatsappfake.Server) whatsappfake.Message {
	t.Helper()
	msgs, err := s.WaitForMessages(waitCtx(t), 1)
	if err != nil {
		t.Fatalf("waiting for the message: %v", err)
	}
	if len(msgs) != 1 {
		t.Fatalf("fake accepted %d messages, want 1", len(msgs))
	}
	return msgs[0]
}

// jsonEqual compares a JSON document with the expected value.
func jsonEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("request body is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("request body\n got %s\nwant %s", got, want)
	}
}

func contains(t *testing.T, err error, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

// rawServer answers every request with a fixed response, for the cases no
// provider produces on purpose (a proxy's HTML error page, a wrong base URL).
func rawServer(t *testing.T, status int, contentType, body string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(s.Close)
	return s
}

// closedURL is the address of a server that is no longer listening.
func closedURL(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.NotFoundHandler())
	u := s.URL
	s.Close()
	return u
}
