// Package retry decides whether and when a failed delivery attempt is tried
// again. It is pure arithmetic on a Policy: no clocks, no goroutines, no
// global randomness, so the delivery reconciler can compute a requeue time
// and tests can pin every value.
//
// Attempts are numbered from 1, and MaxAttempts counts the first attempt, so
// a policy with MaxAttempts 4 allows one send and three retries. After failed
// attempt n the next attempt waits
//
//	Exponential: InitialDelay * 2^(n-1)
//	Linear:      InitialDelay * n
//	Fixed:       InitialDelay
//
// capped at MaxDelay. Jitter then shortens the wait by a random fraction of
// at most Jitter ("full jitter down"), which spreads out retries of many
// deliveries that failed together without ever exceeding the cap. The
// default policy has no jitter, so it keeps the predecessor's 1s, 2s, 4s.
//
// A provider's Retry-After takes precedence over all of this, up to MaxDelay;
// see Next.
package retry

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Strategy is how the delay between attempts grows. The values match the
// BackoffStrategy enum of the API.
type Strategy string

const (
	Exponential Strategy = "Exponential"
	Linear      Strategy = "Linear"
	Fixed       Strategy = "Fixed"
)

// Bounds enforced by Validate; they mirror the CRD's validation so
// a policy built from flags cannot allow more than an object could ask for.
const (
	minAttempts = 1
	maxAttempts = 50
)

// Policy says how often and how patiently a delivery is attempted.
type Policy struct {
	Strategy Strategy
	// MaxAttempts is the number of attempts, the first included.
	MaxAttempts int
	// InitialDelay is the delay after the first failed attempt.
	InitialDelay time.Duration
	// MaxDelay caps the computed delay and a provider's Retry-After.
	MaxDelay time.Duration
	// Jitter is the fraction, 0 to 1, by which a delay may be randomly
	// shortened: the delay is drawn uniformly from [d*(1-Jitter), d].
	Jitter float64
}

// Default is the controller's built-in policy: 4 attempts, 1s, 2s and 4s
// apart, never more than 5 minutes.
func Default() Policy {
	return Policy{
		Strategy:     Exponential,
		MaxAttempts:  4,
		InitialDelay: time.Second,
		MaxDelay:     5 * time.Minute,
		Jitter:       0,
	}
}

// WithDefaults returns p with every zero field taken from d. Because the zero
// value means "unset", an explicit Jitter of 0 also takes d's jitter; give d
// a zero Jitter where that matters.
func (p Policy) WithDefaults(d Policy) Policy {
	if p.Strategy == "" {
		p.Strategy = d.Strategy
	}
	if p.MaxAttempts == 0 {
		p.MaxAttempts = d.MaxAttempts
	}
	if p.InitialDelay == 0 {
		p.InitialDelay = d.InitialDelay
	}
	if p.MaxDelay == 0 {
		p.MaxDelay = d.MaxDelay
	}
	if p.Jitter == 0 {
		p.Jitter = d.Jitter
	}
	return p
}

// Validate reports every problem with p at once, so a misconfigured flag set
// or object can be fixed in one go.
func (p Policy) Validate() error {
	var problems []string
	switch p.Strategy {
	case Exponential, Linear, Fixed:
	case "":
		problems = append(problems, fmt.Sprintf("strategy is required (one of %s, %s, %s)", Exponential, Linear, Fixed))
	default:
		problems = append(problems, fmt.Sprintf("unknown strategy %q (want one of %s, %s, %s)", p.Strategy, Exponential, Linear, Fixed))
	}
	if p.MaxAttempts < minAttempts || p.MaxAttempts > maxAttempts {
		problems = append(problems, fmt.Sprintf("maxAttempts must be between %d and %d, got %d", minAttempts, maxAttempts, p.MaxAttempts))
	}
	if p.InitialDelay <= 0 {
		problems = append(problems, fmt.Sprintf("initialDelay must be positive, got %v", p.InitialDelay))
	}
	if p.MaxDelay < p.InitialDelay {
		problems = append(problems, fmt.Sprintf("maxDelay (%v) must not be shorter than initialDelay (%v)", p.MaxDelay, p.InitialDelay))
	}
	// The negated form also rejects NaN.
	if !(p.Jitter >= 0 && p.Jitter <= 1) {
		problems = append(problems, fmt.Sprintf("jitter must be between 0 and 1, got %v", p.Jitter))
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New("invalid retry policy: " + strings.Join(problems, "; "))
}

// Delay returns the wait before the attempt that follows failed attempt
// number attempt (1-based; smaller values count as 1). rnd supplies the
// jitter and must return values in [0, 1); a nil rnd disables jitter, which
// keeps callers that do not care about it deterministic.
//
// Delay does not require a validated policy: a non-positive MaxDelay means
// no cap, and results saturate instead of overflowing.
func (p Policy) Delay(attempt int, rnd func() float64) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	limit := p.MaxDelay
	if limit <= 0 {
		limit = math.MaxInt64
	}
	d := p.base(attempt, limit)
	if d > limit {
		d = limit
	}
	if d <= 0 {
		return 0
	}
	return jitter(d, p.Jitter, rnd)
}

// base computes the un-jittered delay, returning limit whenever the exact
// value would exceed it. The comparisons are done by division so that large
// attempt numbers cannot overflow int64 into negative durations.
func (p Policy) base(attempt int, limit time.Duration) time.Duration {
	initial := p.InitialDelay
	if initial <= 0 {
		return 0
	}
	switch p.Strategy {
	case Linear:
		n := time.Duration(attempt)
		if initial > limit/n {
			return limit
		}
		return initial * n
	case Fixed:
		return initial
	default:
		// Unknown strategies fall back to exponential, the API's default,
		// rather than retrying in a tight loop.
		shift := attempt - 1
		if shift >= 63 || initial > limit>>uint(shift) {
			return limit
		}
		return initial << uint(shift)
	}
}

// jitter shortens d by up to frac of itself.
func jitter(d time.Duration, frac float64, rnd func() float64) time.Duration {
	if rnd == nil || !(frac > 0) {
		return d
	}
	if frac > 1 {
		frac = 1
	}
	r := rnd()
	if !(r > 0) { // also catches NaN
		return d
	}
	if r > 1 {
		r = 1
	}
	cut := float64(d) * frac * r
	// float64(d) rounds to the nearest representable value, so any cut
	// strictly below it is at most d and converts back without overflow.
	if cut >= float64(d) {
		return 0
	}
	return d - time.Duration(cut)
}

// Next decides what happens after failed attempt number attempt. It returns
// retry=false once attempt has reached MaxAttempts. Otherwise it returns the
// wait before the next attempt: the provider's retryAfter when it gave one,
// else Delay.
//
// retryAfter wins over the computed backoff, shorter or longer, and is not
// jittered: the provider has said it will reject us before then, so coming
// back earlier would only burn an attempt on a certain failure. But it
// never wins beyond MaxDelay: a provider (or whoever answers in its place)
// must not park a delivery for as long as it likes, and Retry-After:
// 31536000 would otherwise hold one for a year, long past its expiresAt.
// Capped, the next attempt comes at MaxDelay; if the provider still
// refuses, that attempt fails and counts like any other. A non-positive
// MaxDelay means no cap, as in Delay.
func (p Policy) Next(attempt int, retryAfter time.Duration, rnd func() float64) (delay time.Duration, retry bool) {
	if attempt >= p.MaxAttempts {
		return 0, false
	}
	if retryAfter > 0 {
		if p.MaxDelay > 0 && retryAfter > p.MaxDelay {
			return p.MaxDelay, true
		}
		return retryAfter, true
	}
	return p.Delay(attempt, rnd), true
}
