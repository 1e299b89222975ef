package apflimit

import (
	"fmt"
	"time"

	"k8s.io/client-go/rest"
)

// Config is a process's client rate settings: the --kube-api-qps,
// --kube-api-burst and --kube-api-adaptive flags, and where to report.
type Config struct {
	// QPS is the ceiling (adaptive) or the fixed rate; negative turns the
	// client-side limit off, leaving the pacing to the server's 429s.
	QPS   float64
	Burst int
	// Adaptive follows the server's 429s within [DefaultFloor, QPS],
	// starting at QPS, with one limiter shared by all of the process's
	// clients. Without it each of client-go's REST clients (one per
	// resource type) has its own fixed token bucket of QPS and Burst.
	Adaptive bool
	// OnRateChange gets the client-side rate whenever it changes, 0 when
	// there is none.
	OnRateChange func(qps float64)
	// OnThrottled is called for every 429 the process's clients get.
	OnThrottled func()
}

// Validate reports settings Configure refuses.
func (c Config) Validate() error {
	if c.QPS == 0 {
		return fmt.Errorf("--kube-api-qps must not be 0: give a rate, or -1 for no client-side limit")
	}
	if c.QPS > 0 && c.Burst < 1 {
		return fmt.Errorf("--kube-api-burst must be at least 1, got %d", c.Burst)
	}
	return nil
}

// Configure applies c to cfg, whose clients then count their 429s. It
// returns the config for leader election: in adaptive mode a copy of cfg
// with a fixed limit of its own, so that lease renewals never queue
// behind a throttled controller and lose the lease; otherwise cfg itself.
func Configure(cfg *rest.Config, c Config) (leaderElection *rest.Config, err error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	report := func(qps float64) {
		if c.OnRateChange != nil {
			c.OnRateChange(qps)
		}
	}
	counter := countThrottled(c.OnThrottled)
	switch {
	case c.QPS < 0:
		cfg.QPS, cfg.Burst, cfg.RateLimiter = -1, 0, nil
		Observe(cfg, counter)
		report(0)
		return cfg, nil
	case !c.Adaptive:
		cfg.QPS, cfg.Burst, cfg.RateLimiter = float32(c.QPS), c.Burst, nil
		Observe(cfg, counter)
		report(c.QPS)
		return cfg, nil
	}
	leaderElection = rest.CopyConfig(cfg)
	leaderElection.QPS, leaderElection.Burst, leaderElection.RateLimiter = float32(c.QPS), c.Burst, nil
	Observe(leaderElection, counter)
	l, err := New(Options{
		Policy:       DefaultPolicy(c.QPS),
		Burst:        c.Burst,
		MaxPause:     DefaultMaxPause,
		OnRateChange: c.OnRateChange,
		OnThrottled:  c.OnThrottled,
	})
	if err != nil {
		return nil, err
	}
	Install(cfg, l)
	return leaderElection, nil
}

// countThrottled is an Observer that only counts 429s.
type countThrottled func()

func (f countThrottled) Throttled(time.Duration) {
	if f != nil {
		f()
	}
}

func (countThrottled) Succeeded() {}
