package delivery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/sendercache"
)

// suspendedWait is how often a delivery held by a suspended provider looks
// again. Suspension uses no attempts.
const suspendedWait = 30 * time.Second

// ProviderHandler delivers through NotificationProviders: the named one or
// the namespace default, then its fallbacks when it is not Ready or fails
// for a provider reason.
type ProviderHandler struct {
	Channel  notifyv1.Channel
	Registry *sendercache.Cache
	// TripFor is how long a provider that failed for a provider reason
	// (rejected credentials, unknown sender) is skipped before it is tried
	// again; zero means defaultTripDuration.
	TripFor time.Duration
	// OnTrip is told when a provider's circuit opens, so that its Ready
	// condition can say so.
	OnTrip func(namespace, name string)
	// Providers reads NotificationProvider objects (from the cache), to
	// tell a provider that does not exist from one the provider controller
	// has not validated yet, as right after a restart.
	Providers client.Reader
	// Clock tells when circuits close and rate-limit tokens are due.
	Clock clock.PassiveClock
}

// validationWait is how long a delivery waits, using no attempt, for the
// provider controller to validate a provider that exists.
const validationWait = 250 * time.Millisecond

// defaultTripDuration is how long a provider with rejected credentials is
// left alone: long enough not to hammer it, short enough to notice a fix
// without a restart. Changing the provider or its Secret closes it at once.
const defaultTripDuration = 5 * time.Minute

func (h *ProviderHandler) NeedsClaim() bool { return true }

// usable returns the chain's Ready providers. When there is none it
// returns a *Wait if some provider of the chain will be usable again by
// itself (suspended, or its circuit open), and otherwise a ProviderNotReady
// error: a provider that is missing or not Ready through its own
// configuration does not heal by waiting, so that counts as an attempt.
func (h *ProviderHandler) usable(d *notifyv1.ChannelDelivery) ([]*sendercache.Entry, error) {
	chain, missing := h.Registry.Chain(d.Namespace, h.Channel, d.Spec.Provider)
	if len(chain) == 0 {
		if d.Spec.Provider != "" {
			return nil, notReady("no %s NotificationProvider named %q in namespace %s", h.Channel, d.Spec.Provider, d.Namespace)
		}
		return nil, notReady("no default %s NotificationProvider in namespace %s; create one with spec.default: true", h.Channel, d.Namespace)
	}
	var ready []*sendercache.Entry
	var reasons, waits []string
	var wait time.Duration
	waitFor := func(d time.Duration) {
		if wait == 0 || d < wait {
			wait = d
		}
	}
	now := h.Clock.Now()
	for _, e := range chain {
		tripped, why := e.Tripped(now)
		switch {
		case e.Suspended:
			waits = append(waits, fmt.Sprintf("%s is suspended", e.Name))
			waitFor(suspendedWait)
		case !e.Ready:
			reasons = append(reasons, fmt.Sprintf("%s: %s", e.Name, e.Message))
		case tripped:
			until := e.TrippedUntil()
			waits = append(waits, fmt.Sprintf("%s is skipped until %s because %s", e.Name, until.UTC().Format(time.RFC3339), why))
			waitFor(until.Sub(now))
		default:
			ready = append(ready, e)
		}
	}
	if len(ready) > 0 {
		return ready, nil
	}
	if len(waits) > 0 {
		return nil, &Wait{
			For:     max(wait, time.Millisecond),
			Reason:  notifyv1.ReasonWaitingForProvider,
			Message: fmt.Sprintf("waiting, using no attempt, for a %s provider: %s", h.Channel, strings.Join(waits, "; ")),
		}
	}
	if len(missing) > 0 {
		reasons = append(reasons, fmt.Sprintf("fallback providers not found: %v", missing))
	}
	return nil, notReady("no Ready %s provider: %v", h.Channel, reasons)
}

func notReady(format string, args ...any) error {
	return &channel.Error{Reason: notifyv1.ReasonTransient, Code: notifyv1.ReasonProviderNotReady, Scope: channel.ScopeProvider, Err: fmt.Errorf(format, args...)}
}

func (h *ProviderHandler) Admit(d *notifyv1.ChannelDelivery, now time.Time) (time.Duration, error) {
	ready, err := h.usable(d)
	if err != nil {
		var w *Wait
		if !errors.As(err, &w) && h.awaitingValidation(d) {
			return validationWait, nil
		}
		return 0, err
	}
	return ready[0].Pacer.Admit(string(d.UID), now), nil
}

func (h *ProviderHandler) Send(ctx context.Context, d *notifyv1.ChannelDelivery, msg *channel.Message) (string, channel.Result, error) {
	ready, err := h.usable(d)
	if err != nil {
		var w *Wait
		if errors.As(err, &w) {
			// Every provider was suspended or tripped between Admit
			// and the claim: this attempt is spent, but it is retried
			// as rate limited, after the wait.
			return "", channel.Result{}, channel.NewRateLimited(w.Reason, w.For, errors.New(w.Message))
		}
		return "", channel.Result{}, err
	}
	var lastErr error
	for _, e := range ready {
		// Admit paced the provider that was first then. If that is still
		// this one, its token is used up now; any other provider (a
		// fallback, or a new first one because the first tripped since
		// Admit) takes a token of its own, or the attempt waits as rate
		// limited.
		if !e.Pacer.Take(string(d.UID)) {
			if wait := e.Pacer.Admit(string(d.UID)+"/"+e.Name, h.Clock.Now()); wait > 0 {
				why := fmt.Errorf("provider %s is rate limited", e.Name)
				if lastErr != nil {
					why = fmt.Errorf("fallback provider %s is rate limited: %w", e.Name, lastErr)
				}
				return e.Name, channel.Result{}, channel.NewRateLimited("fallback "+e.Name, wait, why)
			}
			e.Pacer.Take(string(d.UID) + "/" + e.Name)
		}
		res, err := e.Sender.Send(ctx, msg)
		if err == nil {
			return e.Name, res, nil
		}
		lastErr = err
		ce := channel.Classify(err)
		// Only the provider's own faults (credentials, sender, account)
		// open its circuit or move on to a fallback. A refusal by this
		// recipient's address or endpoint ends this delivery alone.
		if ce.ProviderFault() && !ce.Retryable() {
			h.trip(e, ce)
		}
		if !ce.ProviderFault() || e == ready[len(ready)-1] {
			return e.Name, res, err
		}
	}
	return "", channel.Result{}, lastErr
}

// awaitingValidation reports whether the provider the delivery would use
// exists but is not in the registry yet.
func (h *ProviderHandler) awaitingValidation(d *notifyv1.ChannelDelivery) bool {
	if h.Providers == nil {
		return false
	}
	ctx := context.Background()
	unregistered := func(name string) bool {
		_, ok := h.Registry.Get(types.NamespacedName{Namespace: d.Namespace, Name: name})
		return !ok
	}
	if d.Spec.Provider != "" {
		var p notifyv1.NotificationProvider
		err := h.Providers.Get(ctx, types.NamespacedName{Namespace: d.Namespace, Name: d.Spec.Provider}, &p)
		return err == nil && unregistered(p.Name)
	}
	var list notifyv1.NotificationProviderList
	if err := h.Providers.List(ctx, &list, client.InNamespace(d.Namespace)); err != nil {
		return false
	}
	for _, p := range list.Items {
		if p.Spec.Channel == h.Channel && p.Spec.Default && unregistered(p.Name) {
			return true
		}
	}
	return false
}

// trip opens a provider's circuit after a permanent provider fault.
func (h *ProviderHandler) trip(e *sendercache.Entry, ce *channel.Error) {
	d := h.TripFor
	if d <= 0 {
		d = defaultTripDuration
	}
	e.Trip(h.Clock.Now().Add(d), fmt.Sprintf("the provider rejected a delivery: %v", ce))
	if h.OnTrip != nil {
		h.OnTrip(e.Namespace, e.Name)
	}
}
