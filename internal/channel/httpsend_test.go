package channel

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel/egress"
)

func TestClassifyHTTPStatus(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	const (
		transient   = notifyv1.ReasonTransient
		permanent   = notifyv1.ReasonPermanent
		rateLimited = notifyv1.ReasonRateLimited
	)
	cases := []struct {
		status        int
		retryAfter    string
		ok            bool
		reason        notifyv1.FailureReason
		wantAfter     time.Duration
		providerFault bool
	}{
		{status: 200, ok: true},
		{status: 201, ok: true},
		{status: 202, retryAfter: "5", ok: true},
		{status: 204, ok: true},
		{status: 408, reason: transient},
		{status: 408, retryAfter: "4", reason: transient, wantAfter: 4 * time.Second},
		{status: 425, reason: transient},
		{status: 429, reason: rateLimited},
		{status: 429, retryAfter: "7", reason: rateLimited, wantAfter: 7 * time.Second},
		{status: 429, retryAfter: now.Add(time.Minute).Format(http.TimeFormat), reason: rateLimited, wantAfter: time.Minute},
		{status: 429, retryAfter: "later", reason: rateLimited},
		{status: 500, reason: transient},
		{status: 502, reason: transient},
		{status: 503, retryAfter: "3", reason: transient, wantAfter: 3 * time.Second},
		{status: 504, reason: transient},
		{status: 401, reason: permanent, providerFault: true},
		{status: 403, retryAfter: "3", reason: permanent, providerFault: true},
		{status: 400, reason: permanent},
		{status: 404, reason: permanent},
		{status: 410, reason: permanent},
		{status: 413, reason: permanent},
		{status: 422, reason: permanent},
		{status: 301, reason: permanent},
		{status: 302, reason: permanent},
		{status: 307, reason: permanent},
	}
	for _, c := range cases {
		header := http.Header{}
		if c.retryAfter != "" {
			header.Set("Retry-After", c.retryAfter)
		}
		cause := errors.New("POST https://example.com: bad")
		got := ClassifyHTTPStatus(c.status, header, now, "http x", cause)
		if c.ok {
			if got != nil {
				t.Errorf("%d: got %v, want no error", c.status, got)
			}
			continue
		}
		if got == nil {
			t.Errorf("%d (Retry-After %q): got no error, want %s", c.status, c.retryAfter, c.reason)
			continue
		}
		if got.Reason != c.reason || got.RetryAfter != c.wantAfter || got.ProviderFault() != c.providerFault {
			t.Errorf("%d (Retry-After %q): got reason=%s retryAfter=%v providerFault=%v; want %s %v %v",
				c.status, c.retryAfter, got.Reason, got.RetryAfter, got.ProviderFault(), c.reason, c.wantAfter, c.providerFault)
		}
		if want := c.reason != permanent; got.Retryable() != want {
			t.Errorf("%d: Retryable() = %v, want %v", c.status, got.Retryable(), want)
		}
		if got.Code != "http x" || !errors.Is(got, cause) {
			t.Errorf("%d: code %q, error %v; want the given code and cause", c.status, got.Code, got)
		}
	}
}

func TestPostHTTP(t *testing.T) {
	type seen struct {
		method string
		header http.Header
		body   string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.Header, string(b)}
		w.Header().Set("X-Answer", "42")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(srv.Close)

	header := http.Header{"Content-Type": {"application/json"}, "X-Token": {"t"}}
	resp, err := PostHTTP(t.Context(), nil, "test", srv.URL+"/path", header, []byte(`{"a":1}`))
	if err != nil {
		t.Fatalf("PostHTTP: %v", err)
	}
	if !resp.OK() || resp.Status != http.StatusAccepted || resp.Header.Get("X-Answer") != "42" || string(resp.Body) != `{"ok":true}` {
		t.Errorf("response = %+v", resp)
	}
	req := <-got
	if req.method != http.MethodPost || req.body != `{"a":1}` || req.header.Get("X-Token") != "t" || req.header.Get("Content-Type") != "application/json" {
		t.Errorf("request = %+v", req)
	}
}

func TestPostHTTPBoundsTheBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("z", MaxResponseBody+1000)))
	}))
	t.Cleanup(srv.Close)
	resp, err := PostHTTP(t.Context(), nil, "test", srv.URL, nil, nil)
	if err != nil {
		t.Fatalf("PostHTTP: %v", err)
	}
	if len(resp.Body) != MaxResponseBody {
		t.Errorf("read %d bytes, want %d", len(resp.Body), MaxResponseBody)
	}
}

func TestPostHTTPTransportErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	closed := srv.URL + "/hook/T0KEN"
	srv.Close()

	_, err := PostHTTP(t.Context(), nil, "POST http://host", closed, nil, nil)
	var ce *Error
	if !errors.As(err, &ce) || ce.Reason != notifyv1.ReasonTransient || ce.Code != "network" {
		t.Fatalf("refused connection: got %v, want Transient network", err)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("error %v does not keep the network cause", err)
	}
	if strings.Contains(err.Error(), "T0KEN") || !strings.HasPrefix(err.Error(), "Transient (network): POST http://host: ") {
		t.Errorf("error %q should name the label, not the URL", err)
	}

	ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	_, err = PostHTTP(ctx, nil, "test", closed, nil, nil)
	if !errors.As(err, &ce) || ce.Reason != notifyv1.ReasonTimeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("expired deadline: got %v, want Timeout wrapping DeadlineExceeded", err)
	}

	_, err = PostHTTP(t.Context(), nil, "test", "http://exa mple.com/T0KEN", nil, nil)
	if !errors.As(err, &ce) || ce.Reason != notifyv1.ReasonPermanent || strings.Contains(err.Error(), "T0KEN") {
		t.Errorf("malformed URL: got %v, want Permanent without the URL", err)
	}
}

func TestHTTPClientIsSharedAndDoesNotFollowRedirects(t *testing.T) {
	if HTTPClient() != HTTPClient() {
		t.Fatal("HTTPClient returns a new client each time")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	resp, err := PostHTTP(t.Context(), nil, "test", srv.URL, nil, nil)
	if err != nil {
		t.Fatalf("PostHTTP: %v", err)
	}
	if resp.Status != http.StatusFound {
		t.Errorf("status = %d, want the redirect itself (302)", resp.Status)
	}
}

// TestNewHTTPClientEgress: a client under the default policy refuses a
// loopback receiver (by address and by name) before any request, as a
// permanent DestinationNotAllowed; under a policy that allows loopback it
// reaches it.
func TestNewHTTPClientEgress(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	client := NewHTTPClient(egress.MustNew(nil, nil))
	for _, u := range []string{srv.URL + "/hook?token=secret", "http://localhost:" + port + "/hook?token=secret"} {
		_, err := PostHTTP(t.Context(), client, "POST test", u, nil, []byte("{}"))
		var ce *Error
		if !errors.As(err, &ce) || ce.Reason != notifyv1.ReasonDestinationNotAllowed || ce.Retryable() {
			t.Fatalf("%s: error %v, want a permanent DestinationNotAllowed", u, err)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("error repeats the URL: %v", err)
		}
		if Classify(err).Reason != notifyv1.ReasonDestinationNotAllowed {
			t.Errorf("Classify lost the reason")
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("receiver got %d requests", n)
	}
	resp, err := PostHTTP(t.Context(), NewHTTPClient(egress.MustNew([]string{"127.0.0.0/8", "::1"}, nil)), "POST test", srv.URL, nil, []byte("{}"))
	if err != nil || !resp.OK() || hits.Load() != 1 {
		t.Fatalf("with loopback allowed: %v, %+v", err, resp)
	}
}
