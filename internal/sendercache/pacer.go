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
}

// NewPacer allows limit events per second with the given burst.
func NewPacer(limit rate.Limit, burst int) *Pacer {
	return &Pacer{
		limiter:  rate.NewLimiter(limit, burst),
		Limit:    limit,
		Burst:    burst,
		reserved: map[string]time.Time{},
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
			return 0
		}
		return at.Sub(now)
	}
	r := p.limiter.ReserveN(now, 1)
	if !r.OK() {
		// Burst of zero cannot happen (the API requires >= 1); refuse
		// rather than block forever.
		return time.Second
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return 0
	}
	p.reserved[key] = now.Add(d)
	p.forgetStale(now)
	return d
}

// forgetStale drops reservations of deliveries that never came back (they
// were deleted or finished elsewhere), so the map cannot grow without bound.
func (p *Pacer) forgetStale(now time.Time) {
	if len(p.reserved) < 1024 {
		return
	}
	for k, at := range p.reserved {
		if now.Sub(at) > time.Hour {
			delete(p.reserved, k)
		}
	}
}
