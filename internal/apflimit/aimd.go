// Package apflimit is a client-side rate limiter for Kubernetes clients
// that follows what kube-apiserver's API Priority and Fairness answers: it
// halves its rate when the server says 429 Too Many Requests (the priority
// level's queues are full) and raises it again, a step at a time, while
// requests go through. client-go's own token bucket has a fixed rate.
package apflimit

import (
	"fmt"
	"time"
)

// Policy is how the adaptive rate moves: additive increase, multiplicative
// decrease, within [Floor, Ceiling].
type Policy struct {
	// Ceiling is the rate (queries per second) the limiter starts at and
	// never exceeds.
	Ceiling float64
	// Floor is the least rate: a stream of 429s slows the client down to
	// this, not to a halt.
	Floor float64
	// DecreaseFactor multiplies the rate on a 429, in (0, 1).
	DecreaseFactor float64
	// IncreaseStep is the fraction of Ceiling added after each
	// IncreaseInterval without a 429 in which requests succeeded.
	IncreaseStep     float64
	IncreaseInterval time.Duration
	// Cooldown is the least time between two decreases: the 429s of one
	// overload arrive together (every request waiting in the full queues
	// gets one) and must count once.
	Cooldown time.Duration
}

// DefaultFloor is the least rate of DefaultPolicy, unless the ceiling is
// lower still.
const DefaultFloor = 5

// DefaultPolicy starts at ceiling, halves on a 429 at most once a second,
// never goes below DefaultFloor, and climbs back by a tenth of the ceiling
// every two seconds without a 429: from the floor to the ceiling in about
// 20 seconds of calm.
func DefaultPolicy(ceiling float64) Policy {
	return Policy{
		Ceiling:          ceiling,
		Floor:            min(DefaultFloor, ceiling),
		DecreaseFactor:   0.5,
		IncreaseStep:     0.1,
		IncreaseInterval: 2 * time.Second,
		Cooldown:         time.Second,
	}
}

// Validate reports a policy AIMD cannot follow.
func (p Policy) Validate() error {
	switch {
	case !(p.Ceiling > 0):
		return fmt.Errorf("ceiling must be positive, got %v", p.Ceiling)
	case !(p.Floor > 0) || p.Floor > p.Ceiling:
		return fmt.Errorf("floor must be positive and at most the ceiling %v, got %v", p.Ceiling, p.Floor)
	case !(p.DecreaseFactor > 0 && p.DecreaseFactor < 1):
		return fmt.Errorf("decrease factor must be between 0 and 1, got %v", p.DecreaseFactor)
	case !(p.IncreaseStep > 0):
		return fmt.Errorf("increase step must be positive, got %v", p.IncreaseStep)
	case p.IncreaseInterval <= 0 || p.Cooldown < 0:
		return fmt.Errorf("increase interval must be positive and cooldown not negative, got %s and %s", p.IncreaseInterval, p.Cooldown)
	}
	return nil
}

// AIMD is the decision alone: given the server's answers and when they
// came, the rate to use. It keeps no clock and is not safe for concurrent
// use; Limiter serialises it.
type AIMD struct {
	policy Policy
	rate   float64
	// lastDecrease is when the rate was last multiplied down; zero if never.
	lastDecrease time.Time
	// calmSince is when the current stretch without a 429 and without an
	// increase began: the next increase is due IncreaseInterval after it.
	calmSince time.Time
}

// NewAIMD starts at the policy's ceiling at now.
func NewAIMD(p Policy, now time.Time) (*AIMD, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &AIMD{policy: p, rate: p.Ceiling, calmSince: now}, nil
}

// Rate is the current rate in queries per second.
func (a *AIMD) Rate() float64 { return a.rate }

// Throttled records a 429 at now and reports whether the rate changed.
func (a *AIMD) Throttled(now time.Time) bool {
	a.calmSince = now
	if !a.lastDecrease.IsZero() && now.Sub(a.lastDecrease) < a.policy.Cooldown {
		return false
	}
	a.lastDecrease = now
	next := max(a.policy.Floor, a.rate*a.policy.DecreaseFactor)
	changed := next != a.rate
	a.rate = next
	return changed
}

// Succeeded records a request the server accepted at now and reports
// whether the rate changed.
func (a *AIMD) Succeeded(now time.Time) bool {
	if a.rate >= a.policy.Ceiling {
		// Nothing to climb to: the calm stretch that counts towards the
		// next increase starts with the next 429.
		a.calmSince = now
		return false
	}
	if now.Sub(a.calmSince) < a.policy.IncreaseInterval {
		return false
	}
	a.calmSince = now
	a.rate = min(a.policy.Ceiling, a.rate+a.policy.IncreaseStep*a.policy.Ceiling)
	return true
}
