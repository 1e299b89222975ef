package apiserver

import (
	"testing"

	restclient "k8s.io/client-go/rest"
)

// The inbox server's client follows the same adaptive limit as the
// controller's unless told not to.
func TestClientConfigRateLimit(t *testing.T) {
	o := NewOptions()
	o.RESTConfig = &restclient.Config{Host: "https://127.0.0.1:6443"}
	cfg, err := o.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RateLimiter == nil || cfg.RateLimiter.QPS() != 50 {
		t.Fatalf("adaptive by default: rate limiter %v, want one starting at 50 QPS", cfg.RateLimiter)
	}
	if o.RESTConfig.RateLimiter != nil {
		t.Error("the caller's config was changed")
	}

	o.AdaptiveQPS = false
	cfg, err = o.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RateLimiter != nil || cfg.QPS != 50 || cfg.Burst != 100 {
		t.Errorf("fixed: rate limiter %v, QPS %v, burst %d; want client-go's own buckets at 50/100", cfg.RateLimiter, cfg.QPS, cfg.Burst)
	}

	o.QPS = 0
	if _, err := o.ClientConfig(); err == nil {
		t.Error("--kube-api-qps=0 was accepted")
	}
}
