package eventrule

import (
	"sync"
	"time"

	"golang.org/x/time/rate"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// DefaultNamespaceNotificationsPerMinute is the default of
// --eventrule-namespace-max-notifications-per-minute: five rules at the
// API's default budget. MaxNamespaceNotificationsPerMinute is the most the
// flag takes: ten rules at the API's maximum.
const (
	DefaultNamespaceNotificationsPerMinute = 5 * notifyv1.DefaultEventRuleNotificationsPerMinute
	MaxNamespaceNotificationsPerMinute     = 10 * notifyv1.MaxEventRuleNotificationsPerMinute
)

// namespaceBudgetLinger is how long a namespace's budget is kept after
// its last rule went. Dropped at once, it would let a tenant refill it by
// deleting and re-creating its rules; left alone for a minute, a bucket
// is full again anyway (it refills in a minute and never lends tokens),
// so dropping it then gives nothing that keeping it would not.
const namespaceBudgetLinger = budgetWindow

// namespaceBudget is the allowance of Notifications that all rules of one
// namespace share, on top of each rule's own: a token bucket that holds
// perMinute tokens and refills at perMinute a minute. Without it a tenant
// with N rules would get N budgets.
type namespaceBudget struct {
	name      string
	perMinute int

	mu      sync.Mutex
	limiter *rate.Limiter
	// last is the latest time the bucket was asked at. Rules of the
	// namespace are reconciled concurrently, each with the time its
	// reconcile started; handed an earlier time after a later one, the
	// limiter would count the time between twice and refill by it. So
	// the bucket is asked at no earlier than last.
	last time.Time

	// rules counts the namespace's rules that have a budget, and
	// emptySince is when the last of them went (zero while any is left);
	// both are guarded by the Reconciler's mu.
	rules      int
	emptySince time.Time
}

func newNamespaceBudget(name string, perMinute int) *namespaceBudget {
	return &namespaceBudget{name: name, perMinute: perMinute, limiter: rate.NewLimiter(perMinuteLimit(perMinute), perMinute)}
}

// at is the time to ask the bucket at: now, or last if that is later.
// Callers hold mu.
func (n *namespaceBudget) at(now time.Time) time.Time {
	if now.After(n.last) {
		n.last = now
	}
	return n.last
}

// take takes one token at now, or nothing when there is none. refund
// gives it back. (Given back after a later take, a token returns in
// full or a little less, never more.)
func (n *namespaceBudget) take(now time.Time) (refund func(), ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	giveBack, ok := takeAt(n.limiter, n.at(now))
	if !ok {
		return nil, false
	}
	return func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		giveBack()
	}, true
}

// untilToken is how long from now until the bucket holds a token again.
func (n *namespaceBudget) untilToken(now time.Time) time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	return untilTokenAt(n.limiter, n.at(now), now)
}

// heldBy says which budget held a Notification back.
type heldBy int

const (
	heldByNone heldBy = iota
	heldByRule
	heldByNamespace
)

// draw takes what one Notification costs: a token from the rule's budget
// and one from its namespace's. When either has none it takes nothing
// (the rule's token goes back) and says which budget held it back.
// refund gives both back.
func (b *budget) draw(now time.Time) (refund func(), by heldBy) {
	ruleRefund, ok := b.take(now)
	if !ok {
		return nil, heldByRule
	}
	if b.namespace == nil {
		return ruleRefund, heldByNone
	}
	nsRefund, ok := b.namespace.take(now)
	if !ok {
		ruleRefund()
		return nil, heldByNamespace
	}
	return func() { nsRefund(); ruleRefund() }, heldByNone
}

// untilDrawable is how long from now until both budgets hold a token.
func (b *budget) untilDrawable(now time.Time) time.Duration {
	d := b.untilToken(now)
	if b.namespace != nil {
		d = max(d, b.namespace.untilToken(now))
	}
	return d
}

// joinNamespace counts a new rule budget in its namespace's, making that
// on first use. Callers hold r.mu. Nil when the controller sets no
// namespace budget.
func (r *Reconciler) joinNamespace(namespace string) *namespaceBudget {
	if r.NamespaceMaxNotificationsPerMinute <= 0 {
		return nil
	}
	if r.namespaces == nil {
		r.namespaces = map[string]*namespaceBudget{}
	}
	n := r.namespaces[namespace]
	if n == nil {
		n = newNamespaceBudget(namespace, r.NamespaceMaxNotificationsPerMinute)
		r.namespaces[namespace] = n
	}
	n.rules++
	n.emptySince = time.Time{}
	return n
}

// leaveNamespace uncounts a dropped rule budget. Callers hold r.mu.
func (r *Reconciler) leaveNamespace(namespace string, now time.Time) {
	if n := r.namespaces[namespace]; n != nil {
		n.rules--
		if n.rules <= 0 {
			n.rules = 0
			n.emptySince = now
		}
	}
}

// sweepNamespaces drops the budgets of namespaces whose last rule went
// namespaceBudgetLinger ago or more, looking at most once per
// namespaceBudgetLinger: memory stays bounded by the namespaces that had
// rules in the last two minutes. Callers hold r.mu.
func (r *Reconciler) sweepNamespaces(now time.Time) {
	if !r.lastSweep.IsZero() && now.Sub(r.lastSweep) < namespaceBudgetLinger {
		return
	}
	r.lastSweep = now
	for name, n := range r.namespaces {
		if n.rules == 0 && now.Sub(n.emptySince) >= namespaceBudgetLinger {
			delete(r.namespaces, name)
		}
	}
}
