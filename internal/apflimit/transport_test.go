package apflimit

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
)

// apiServer answers GET configmaps with 429 (Retry-After: 0, so that
// client-go retries at once) while throttle > 0, counting it down, and
// with a ConfigMap otherwise.
type apiServer struct {
	throttle  atomic.Int32
	requests  atomic.Int32
	throttled atomic.Int32
}

func (s *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if s.throttle.Add(-1) >= 0 {
		s.throttled.Add(1)
		w.Header().Set("Retry-After", "0")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"TooManyRequests","code":429}`)
		return
	}
	s.throttle.Store(0)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c","namespace":"n"}}`)
}

func newClient(t *testing.T, srv *httptest.Server, l *Limiter, wrapped *atomic.Int32) kubernetes.Interface {
	t.Helper()
	cfg := &rest.Config{Host: srv.URL}
	// An existing wrapper stays in the chain.
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			wrapped.Add(1)
			return rt.RoundTrip(r)
		})
	}
	Install(cfg, l)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestTransportDrivesTheRate(t *testing.T) {
	api := &apiServer{}
	srv := httptest.NewServer(api)
	defer srv.Close()
	fc := clocktesting.NewFakeClock(time.Now())
	var throttled atomic.Int32
	l, err := New(Options{Policy: DefaultPolicy(1000), Burst: 1000, MaxPause: DefaultMaxPause, Clock: fc, OnThrottled: func() { throttled.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	var wrapped atomic.Int32
	cs := newClient(t, srv, l, &wrapped)
	get := func() {
		t.Helper()
		if _, err := cs.CoreV1().ConfigMaps("n").Get(context.Background(), "c", metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	get()
	if l.QPS() != 1000 {
		t.Fatalf("after a 200: %v QPS, want the ceiling 1000", l.QPS())
	}

	// Three 429s in a row, which client-go retries: one overload, one
	// decrease; the request still succeeds.
	api.throttle.Store(3)
	get()
	if got := api.throttled.Load(); got != 3 {
		t.Fatalf("server answered %d 429s, want 3", got)
	}
	if throttled.Load() != 3 {
		t.Fatalf("limiter saw %d 429s, want 3", throttled.Load())
	}
	if l.QPS() != 500 {
		t.Fatalf("after one overload: %v QPS, want 500", l.QPS())
	}

	// Another overload after the cooldown halves again.
	fc.Step(time.Second)
	api.throttle.Store(1)
	get()
	if l.QPS() != 250 {
		t.Fatalf("after a second overload: %v QPS, want 250", l.QPS())
	}

	// Calm intervals with successes raise it by a tenth of the ceiling.
	fc.Step(2 * time.Second)
	get()
	if l.QPS() != 350 {
		t.Fatalf("after a calm interval: %v QPS, want 350", l.QPS())
	}
	if wrapped.Load() != api.requests.Load() {
		t.Fatalf("the existing WrapTransport saw %d requests of %d", wrapped.Load(), api.requests.Load())
	}
}

// TestConcurrentRequestsArePaced: at 20 QPS with a burst of 1, ten
// concurrent requests reach the server one per 50ms of the limiter's clock.
func TestConcurrentRequestsArePaced(t *testing.T) {
	api := &apiServer{}
	srv := httptest.NewServer(api)
	defer srv.Close()
	fc := clocktesting.NewFakeClock(time.Now())
	l, err := New(Options{Policy: DefaultPolicy(20), Burst: 1, MaxPause: DefaultMaxPause, Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	var wrapped atomic.Int32
	cs := newClient(t, srv, l, &wrapped)
	const n = 10
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := cs.CoreV1().ConfigMaps("n").Get(context.Background(), "c", metav1.GetOptions{})
			errs <- err
		}()
	}
	// One request goes at once on the burst; the other nine wait on the
	// limiter's clock.
	waitFor(t, func() bool { return api.requests.Load() == 1 && fc.Waiters() == n-1 })
	for i := 2; i <= n; i++ {
		fc.Step(50 * time.Millisecond)
		waitFor(t, func() bool { return api.requests.Load() >= int32(i) })
		if got := api.requests.Load(); got != int32(i) {
			t.Fatalf("after %d steps of 50ms the server saw %d requests, want %d", i-1, got, i)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "1", " 5 ", "-3", "3600", "99999999999999999999", "Wed, 21 Oct 2015 07:28:00 GMT", "1.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d := RetryAfter(s); d < 0 || d > maxRetryAfter {
			t.Fatalf("RetryAfter(%q) = %s, outside [0, %s]", s, d, maxRetryAfter)
		}
	})
}

func TestRetryAfter(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"": 0, "0": 0, "1": time.Second, " 5 ": 5 * time.Second, "-3": 0, "1.5": 0,
		"Wed, 21 Oct 2015 07:28:00 GMT": 0, "7200": maxRetryAfter, "99999999999999999999": 0,
	} {
		if got := RetryAfter(in); got != want {
			t.Errorf("RetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}
