package apflimit

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
)

// Observer is told what the API server answered.
type Observer interface {
	// Throttled is a 429 Too Many Requests; retryAfter is its Retry-After,
	// 0 when it named none.
	Throttled(retryAfter time.Duration)
	// Succeeded is any other answer below 500: the server took the request.
	Succeeded()
}

// Install makes cfg's clients share l: every request waits for l, and
// every answer is reported to it. QPS and Burst of cfg no longer apply.
func Install(cfg *rest.Config, l *Limiter) {
	cfg.RateLimiter = l
	Observe(cfg, l)
}

// Observe reports every answer of cfg's clients to o, chained after any
// WrapTransport cfg already has: o sees each attempt, client-go's own
// retries of a 429 included.
func Observe(cfg *rest.Config, o Observer) {
	cfg.Wrap(func(next http.RoundTripper) http.RoundTripper {
		return &observingTransport{next: next, observer: o}
	})
}

type observingTransport struct {
	next     http.RoundTripper
	observer Observer
}

func (t *observingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		t.observer.Throttled(RetryAfter(resp.Header.Get("Retry-After")))
	case resp.StatusCode < 500:
		t.observer.Succeeded()
	}
	return resp, nil
}

// WrappedRoundTripper lets client-go find the transport underneath.
func (t *observingTransport) WrappedRoundTripper() http.RoundTripper { return t.next }

// maxRetryAfter bounds what RetryAfter returns, so that no header value
// can overflow a Duration.
const maxRetryAfter = time.Hour

// RetryAfter parses a Retry-After header in seconds, as kube-apiserver
// sends it; anything else (an HTTP date, garbage, a negative number) is 0.
func RetryAfter(header string) time.Duration {
	s, err := strconv.Atoi(strings.TrimSpace(header))
	if err != nil || s <= 0 {
		return 0
	}
	if s >= int(maxRetryAfter/time.Second) {
		return maxRetryAfter
	}
	return time.Duration(s) * time.Second
}
