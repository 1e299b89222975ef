package apflimit

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/clock"
)

// Options configure a Limiter.
type Options struct {
	Policy Policy
	// Burst is the burst at the ceiling; at a lower rate the burst shrinks
	// in proportion (at least 1), so that a slowed-down client cannot still
	// send a ceiling-sized burst into full queues.
	Burst int
	// MaxPause bounds how long one Retry-After holds every request back.
	MaxPause time.Duration
	// Clock defaults to the real clock.
	Clock clock.Clock
	// OnRateChange is called with the new rate, under the limiter's lock,
	// whenever it changes, and once by New with the initial rate.
	OnRateChange func(qps float64)
	// OnThrottled is called for every 429 seen.
	OnThrottled func()
}

// DefaultMaxPause: kube-apiserver's priority and fairness asks for a few
// seconds at most; a longer Retry-After is not worth stalling every
// request of the process for.
const DefaultMaxPause = 5 * time.Second

// Limiter is a flowcontrol.RateLimiter whose rate follows AIMD. Give it to
// a rest.Config with Install, which also makes it see the responses.
type Limiter struct {
	clock        clock.Clock
	burst        int
	maxPause     time.Duration
	onRateChange func(float64)
	onThrottled  func()

	mu      sync.Mutex
	aimd    *AIMD
	limiter *rate.Limiter
}

var _ flowcontrol.RateLimiter = (*Limiter)(nil)

// New returns a limiter at the policy's ceiling.
func New(o Options) (*Limiter, error) {
	if o.Burst < 1 {
		return nil, fmt.Errorf("burst must be at least 1, got %d", o.Burst)
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.MaxPause < 0 {
		return nil, fmt.Errorf("max pause must not be negative, got %s", o.MaxPause)
	}
	now := o.Clock.Now()
	aimd, err := NewAIMD(o.Policy, now)
	if err != nil {
		return nil, err
	}
	l := &Limiter{
		clock:        o.Clock,
		burst:        o.Burst,
		maxPause:     o.MaxPause,
		onRateChange: o.OnRateChange,
		onThrottled:  o.OnThrottled,
		aimd:         aimd,
		limiter:      rate.NewLimiter(rate.Limit(aimd.Rate()), o.Burst),
	}
	if l.onRateChange != nil {
		l.onRateChange(aimd.Rate())
	}
	return l, nil
}

// burstAt scales the configured burst to qps.
func (l *Limiter) burstAt(qps float64) int {
	return max(1, int(math.Round(float64(l.burst)*qps/l.aimd.policy.Ceiling)))
}

// apply hands a changed AIMD rate to the token bucket; l.mu is held.
func (l *Limiter) apply(now time.Time) {
	qps := l.aimd.Rate()
	l.limiter.SetLimitAt(now, rate.Limit(qps))
	l.limiter.SetBurstAt(now, l.burstAt(qps))
	if l.onRateChange != nil {
		l.onRateChange(qps)
	}
}

// Throttled records a 429 whose Retry-After asked for retryAfter (0 when
// it named none).
func (l *Limiter) Throttled(retryAfter time.Duration) {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.onThrottled != nil {
		l.onThrottled()
	}
	if l.aimd.Throttled(now) {
		l.apply(now)
	}
	l.pause(now, min(retryAfter, l.maxPause))
}

// pause makes the next token come no earlier than d after now, by taking
// tokens ahead: the bucket owes them. Requests that wait meanwhile are
// then spread at the rate after the pause instead of all going at its end
// into the queues that just overflowed. l.mu is held.
func (l *Limiter) pause(now time.Time, d time.Duration) {
	if d <= 0 {
		return
	}
	// One token is free when the bucket holds 1; it holds target now if
	// that token comes d from now.
	target := 1 - d.Seconds()*float64(l.limiter.Limit())
	owe := int(math.Ceil(l.limiter.TokensAt(now) - target))
	if owe <= 0 {
		return // the waiters already queued reach past the pause
	}
	// ReserveN takes at most the burst at once: raise it for this one
	// reservation (that adds no tokens) and put it back.
	burst := l.limiter.Burst()
	l.limiter.SetBurstAt(now, max(burst, owe))
	l.limiter.ReserveN(now, owe)
	l.limiter.SetBurstAt(now, burst)
}

// Succeeded records a request the server did not refuse for load.
func (l *Limiter) Succeeded() {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.aimd.Succeeded(now) {
		l.apply(now)
	}
}

// TryAccept takes a token if one is there now.
func (l *Limiter) TryAccept() bool {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limiter.AllowN(now, 1)
}

// Accept waits for a token.
func (l *Limiter) Accept() { _ = l.Wait(context.Background()) }

// Wait waits for a token, or until ctx is done, or returns at once when
// ctx's deadline comes before the token would.
func (l *Limiter) Wait(ctx context.Context) error {
	now := l.clock.Now()
	l.mu.Lock()
	r := l.limiter.ReserveN(now, 1)
	l.mu.Unlock()
	if !r.OK() {
		return fmt.Errorf("rate limiter cannot grant a token")
	}
	delay := r.DelayFrom(now)
	if delay <= 0 {
		return nil
	}
	if deadline, ok := ctx.Deadline(); ok && deadline.Before(now.Add(delay)) {
		r.CancelAt(now)
		return fmt.Errorf("rate limiter Wait(ctx) would exceed the context deadline")
	}
	timer := l.clock.NewTimer(delay)
	defer timer.Stop()
	select {
	case <-timer.C():
		return nil
	case <-ctx.Done():
		r.CancelAt(l.clock.Now())
		return ctx.Err()
	}
}

// Stop releases nothing: the limiter has no goroutine.
func (l *Limiter) Stop() {}

// QPS is the current rate.
func (l *Limiter) QPS() float32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return float32(l.aimd.Rate())
}
