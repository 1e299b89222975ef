package webhook

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// SeenStore remembers the requests a receiver accepted. Receivers with
// several replicas implement it on shared storage (for example a Redis
// SET NX with an expiry).
type SeenStore interface {
	// Remember records id until expires and reports whether it was already
	// recorded and not yet expired at now.
	Remember(ctx context.Context, id string, now, expires time.Time) (seen bool, err error)
}

// MemorySeenStore is a SeenStore for one process, bounded to a number of
// entries. Entries leave when they expire; when it is full of unexpired
// entries it refuses new ones with ErrSeenStoreFull rather than forget one
// that could then be replayed.
type MemorySeenStore struct {
	mu      sync.Mutex
	max     int
	expires map[string]time.Time
	queue   expiryHeap
}

// NewMemorySeenStore returns a store holding at most max entries; size it
// for the requests one tolerance window brings (two windows, to be safe).
func NewMemorySeenStore(max int) *MemorySeenStore {
	if max < 1 {
		max = 1
	}
	return &MemorySeenStore{max: max, expires: map[string]time.Time{}}
}

// Remember implements SeenStore.
func (s *MemorySeenStore) Remember(_ context.Context, id string, now, expires time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.queue) > 0 && !s.queue[0].expires.After(now) {
		e := heap.Pop(&s.queue).(entry)
		if s.expires[e.id].Equal(e.expires) {
			delete(s.expires, e.id)
		}
	}
	if until, ok := s.expires[id]; ok && until.After(now) {
		return true, nil
	}
	if len(s.expires) >= s.max {
		return false, ErrSeenStoreFull
	}
	s.expires[id] = expires
	heap.Push(&s.queue, entry{id: id, expires: expires})
	return false, nil
}

// Len is the number of entries held.
func (s *MemorySeenStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.expires)
}

type entry struct {
	id      string
	expires time.Time
}

type expiryHeap []entry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(entry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
