package receiver

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// namespaceLimits holds one token bucket per namespace that recorded
// receipts. Buckets are created only after a callback's signature was
// verified, so only tenants with a working receipts Secret add entries;
// full buckets (idle namespaces) are dropped when the map grows.
type namespaceLimits struct {
	mu      sync.Mutex
	limit   rate.Limit
	burst   int
	buckets map[string]*rate.Limiter
}

const maxNamespaceBuckets = 4096

func newNamespaceLimits(limit rate.Limit, burst int) *namespaceLimits {
	return &namespaceLimits{limit: limit, burst: burst, buckets: map[string]*rate.Limiter{}}
}

func (l *namespaceLimits) allow(namespace string, n int, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[namespace]
	if b == nil {
		if len(l.buckets) >= maxNamespaceBuckets {
			for ns, other := range l.buckets {
				if other.TokensAt(now) >= float64(l.burst) {
					delete(l.buckets, ns)
				}
			}
		}
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[namespace] = b
	}
	return b.AllowN(now, min(n, l.burst))
}
