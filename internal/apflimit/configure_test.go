package apflimit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func TestConfigure(t *testing.T) {
	// Always 429 without Retry-After, which client-go does not retry: one
	// answer per request.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	throttledOnce := func(t *testing.T, cfg *rest.Config) {
		t.Helper()
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = cs.CoreV1().ConfigMaps("n").Get(context.Background(), "c", metav1.GetOptions{})
		if !apierrors.IsTooManyRequests(err) {
			t.Fatalf("want a 429, got %v", err)
		}
	}
	tests := []struct {
		name        string
		config      Config
		wantQPS     float64 // reported at once
		wantLimiter bool    // cfg.RateLimiter is the adaptive limiter
		wantCfgQPS  float32
		wantOwnLE   bool // leader election gets a config of its own
	}{
		{"no limit", Config{QPS: -1, Burst: 10, Adaptive: true}, 0, false, -1, false},
		{"fixed", Config{QPS: 100, Burst: 200}, 100, false, 100, false},
		{"adaptive", Config{QPS: 100, Burst: 200, Adaptive: true}, 100, true, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var reported []float64
			throttled := 0
			c := tt.config
			c.OnRateChange = func(q float64) { reported = append(reported, q) }
			c.OnThrottled = func() { throttled++ }
			cfg := &rest.Config{Host: srv.URL}
			le, err := Configure(cfg, c)
			if err != nil {
				t.Fatal(err)
			}
			if len(reported) != 1 || reported[0] != tt.wantQPS {
				t.Fatalf("reported rates %v, want [%v]", reported, tt.wantQPS)
			}
			l, isLimiter := cfg.RateLimiter.(*Limiter)
			if isLimiter != tt.wantLimiter || (!isLimiter && cfg.RateLimiter != nil) {
				t.Fatalf("RateLimiter %T, want the adaptive limiter: %v", cfg.RateLimiter, tt.wantLimiter)
			}
			if cfg.QPS != tt.wantCfgQPS {
				t.Fatalf("cfg.QPS %v, want %v", cfg.QPS, tt.wantCfgQPS)
			}
			if (le != cfg) != tt.wantOwnLE {
				t.Fatalf("leader election has a config of its own: %v, want %v", le != cfg, tt.wantOwnLE)
			}
			if tt.wantOwnLE && (le.RateLimiter != nil || le.QPS != float32(c.QPS) || le.Burst != c.Burst) {
				t.Fatalf("leader election config limits %v/%d (%T), want the fixed %v/%d", le.QPS, le.Burst, le.RateLimiter, c.QPS, c.Burst)
			}
			throttledOnce(t, cfg)
			if throttled != 1 {
				t.Fatalf("counted %d 429s, want 1", throttled)
			}
			if isLimiter && l.QPS() != 50 {
				t.Fatalf("adaptive limiter at %v after a 429, want 50", l.QPS())
			}
			if le != cfg {
				throttledOnce(t, le)
				if throttled != 2 {
					t.Fatalf("leader election's 429 not counted: %d", throttled)
				}
				if l.QPS() != 50 {
					t.Fatalf("leader election's 429 moved the shared limiter to %v", l.QPS())
				}
			}
		})
	}
}

func TestConfigureRefuses(t *testing.T) {
	for name, c := range map[string]Config{
		"qps 0":   {QPS: 0, Burst: 10, Adaptive: true},
		"burst 0": {QPS: 10, Burst: 0},
	} {
		if _, err := Configure(&rest.Config{}, c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
