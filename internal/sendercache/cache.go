// Package sendercache keeps the senders built from NotificationProviders in
// memory, with each provider's pacing (its rate limit) and circuit state
// (tripped after a provider fault), so that a delivery finds its provider,
// credentials and rate limit without reading the API server. The
// NotificationProvider reconciler fills the cache; delivery reconcilers only
// read it and trip entries.
package sendercache

import (
	"sort"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
)

// Entry is one usable (or unusable, with a reason) provider.
type Entry struct {
	Name      string
	Namespace string
	Channel   notifyv1.Channel
	Default   bool
	Suspended bool
	// Ready is false when the provider cannot be used; Reason and Message
	// say why (SecretNotFound, InvalidConfig, ...).
	Ready   bool
	Reason  string
	Message string
	Sender  channel.Sender
	// Pacer enforces the provider's rate limit; nil means unlimited.
	Pacer    *Pacer
	Fallback []string
	// Fingerprint identifies the configuration the sender was built from
	// (generation and Secret versions); a trip survives re-validation of
	// the same configuration but not a change to it.
	Fingerprint string

	mu           sync.Mutex
	trippedUntil time.Time
	tripReason   string
}

// Trip opens the provider's circuit until the given time: deliveries skip
// it (falling back where they can) because it failed for a provider reason
// such as rejected credentials, which every further message would repeat.
func (e *Entry) Trip(until time.Time, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.trippedUntil, e.tripReason = until, reason
}

// Tripped reports whether the circuit is open at now, and why.
func (e *Entry) Tripped(now time.Time) (bool, string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if now.Before(e.trippedUntil) {
		return true, e.tripReason
	}
	return false, ""
}

// TrippedUntil returns when the circuit closes again (zero when closed).
func (e *Entry) TrippedUntil() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.trippedUntil
}

// inheritTrip carries an open circuit over to a rebuilt entry of the same
// configuration.
func (e *Entry) inheritTrip(old *Entry) {
	if old == nil || old.Fingerprint != e.Fingerprint {
		return
	}
	old.mu.Lock()
	until, reason := old.trippedUntil, old.tripReason
	old.mu.Unlock()
	e.Trip(until, reason)
}

// Cache holds one Entry per NotificationProvider. It is safe for
// concurrent use.
type Cache struct {
	mu      sync.RWMutex
	entries map[types.NamespacedName]*Entry
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{entries: map[types.NamespacedName]*Entry{}}
}

// Set stores or replaces the entry for its namespace and name. An open
// circuit of the entry it replaces is kept when the configuration is the
// same.
func (c *Cache) Set(e *Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := types.NamespacedName{Namespace: e.Namespace, Name: e.Name}
	e.inheritTrip(c.entries[key])
	c.entries[key] = e
}

// Delete forgets a provider.
func (c *Cache) Delete(key types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
}

// Get returns the provider with this key.
func (c *Cache) Get(key types.NamespacedName) (*Entry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.entries[key]
	return e, ok
}

// Default returns the namespace's default provider for a channel. When
// several claim to be the default the first by name wins, so the choice is
// stable; the provider reconciler warns about the others.
func (c *Cache) Default(namespace string, ch notifyv1.Channel) (*Entry, bool) {
	defaults := c.Defaults(namespace, ch)
	if len(defaults) == 0 {
		return nil, false
	}
	return defaults[0], true
}

// Defaults returns every provider of the channel in the namespace that is
// marked default, sorted by name.
func (c *Cache) Defaults(namespace string, ch notifyv1.Channel) []*Entry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []*Entry
	for k, e := range c.entries {
		if k.Namespace == namespace && e.Channel == ch && e.Default {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Chain returns the providers to try for a delivery, in order: the named
// provider (or the default) followed by its fallbacks, each once. Names
// that are not registered are returned in missing.
func (c *Cache) Chain(namespace string, ch notifyv1.Channel, named string) (chain []*Entry, missing []string) {
	var first *Entry
	if named != "" {
		e, ok := c.Get(types.NamespacedName{Namespace: namespace, Name: named})
		if !ok {
			return nil, []string{named}
		}
		first = e
	} else {
		e, ok := c.Default(namespace, ch)
		if !ok {
			return nil, nil
		}
		first = e
	}
	seen := map[string]bool{first.Name: true}
	chain = append(chain, first)
	for _, name := range first.Fallback {
		if seen[name] {
			continue
		}
		seen[name] = true
		e, ok := c.Get(types.NamespacedName{Namespace: namespace, Name: name})
		if !ok || e.Channel != ch {
			missing = append(missing, name)
			continue
		}
		chain = append(chain, e)
	}
	return chain, missing
}
