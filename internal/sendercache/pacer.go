package sendercache

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Pacer spaces a provider's sends to its rate limit across all workers.
//
// A delivery that cannot send now gets a reservation for a future instant
// and is requeued until then; when it returns it sends without asking
// again. Reservations make the wait exact and fair: waiting deliveries do
// not wake up together and compete for the next token, and waiting uses no
// attempt.
type Pacer struct {
	limiter *rate.Limiter
	Limit   rate.Limit
	Burst   int

	mu       sync.Mutex
	reserved map[string]time.Time
	// granted holds the deliveries admitted (given a token) but not yet
	// sent, so that the send can tell a token it holds from none: between
	// Admit and the send another provider of the chain may have become
	// the one to use.
	granted map[string]time.Time
}

// NewPacer allows limit events per second with the given burst.
func NewPacer(limit rate.Limit, burst int) *Pacer {
	return &Pacer{
		limiter:  rate.NewLimiter(limit, burst),
		Limit:    limit,
		Burst:    burst,
		reserved: map[string]time.Time{},
		granted:  map[string]time.Time{},
	}
}

// Admit returns zero when the delivery identified by key may send at now,
// and otherwise how long it must wait. A wait holds a reservation, so the
// next call for key at or after that time returns zero.
func (p *Pacer) Admit(key string, now time.Time) time.Duration {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if at, ok := p.reserved[key]; ok {
		if !now.Before(at) {
			delete(p.reserved, key)
			p.granted[key] = now
			return 0
		}
		return at.Sub(now)
	}
	if _, ok := p.granted[key]; ok {
		// Admitted before and not sent yet (the claim was retried): the
		// token it holds still counts.
		return 0
	}
	r := p.limiter.ReserveN(now, 1)
	if !r.OK() {
		// Burst of zero cannot happen (the API requires >= 1); refuse
		// rather than block forever.
		return time.Second
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		p.granted[key] = now
		p.forgetStale(now)
		return 0
	}
	p.reserved[key] = now.Add(d)
	p.forgetStale(now)
	return d
}

// Take reports whether the delivery identified by key holds a token of this
// pacer from Admit, and uses it up. A nil pacer (no rate limit) always
// says yes.
func (p *Pacer) Take(key string) bool {
	if p == nil {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.granted[key]
	delete(p.granted, key)
	return ok
}

// forgetStale drops reservations and tokens of deliveries that never came
// back or never sent (they were deleted or finished elsewhere), so the maps
// cannot grow without bound.
func (p *Pacer) forgetStale(now time.Time) {
	for _, m := range []map[string]time.Time{p.reserved, p.granted} {
		if len(m) < 1024 {
			continue
		}
		for k, at := range m {
			if now.Sub(at) > time.Hour {
				delete(m, k)
			}
		}
	}
}
