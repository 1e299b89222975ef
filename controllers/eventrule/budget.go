package eventrule

import (
	"fmt"
	"time"

	"golang.org/x/time/rate"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// budgetWindow is how long the RateLimited condition stays True after the
// budget last held an Event back, and the least time between two
// BudgetExceeded Events on one rule.
const budgetWindow = time.Minute

// minBudgetRecheck is the least time between two passes of a rule whose
// grouped Notifications wait for the budget: each pass looks at every
// group, so with many groups waiting, parts are made a few tokens at a
// time every few seconds rather than one pass per token.
const minBudgetRecheck = 5 * time.Second

// EffectiveBudget is the Notifications per minute a rule may make: its
// spec.maxNotificationsPerMinute (the API default when unset), never more
// than the controller's ceiling (none when ceiling is not positive).
// A tenant cannot raise its own rule above what the operator allows.
func EffectiveBudget(spec int32, ceiling int) int {
	n := int(spec)
	if n <= 0 {
		n = notifyv1.DefaultEventRuleNotificationsPerMinute
	}
	if ceiling > 0 {
		n = min(n, ceiling)
	}
	return n
}

// budget is one rule's allowance of Notifications: a token bucket that
// holds perMinute tokens and refills at perMinute a minute. It outlives
// spec changes and suspension (or editing a rule would refill it) and is
// dropped with the rule.
type budget struct {
	uid       types.UID
	perMinute int
	limiter   *rate.Limiter
	// namespace is the budget every rule of the namespace shares; nil
	// when the controller sets none.
	namespace *namespaceBudget
	// lastLimited is when the rule's own budget last held an Event back,
	// lastNamespaceLimited when the namespace's did; lastEvent when the
	// rule last got a BudgetExceeded Event.
	lastLimited, lastNamespaceLimited, lastEvent time.Time
}

func newBudget(uid types.UID, perMinute int, now time.Time) *budget {
	b := &budget{uid: uid}
	b.setRate(perMinute, now)
	return b
}

// setRate changes the bucket's size and rate; the tokens it holds are
// kept, up to the new size.
func (b *budget) setRate(perMinute int, now time.Time) {
	if b.limiter == nil {
		b.limiter = rate.NewLimiter(perMinuteLimit(perMinute), perMinute)
	} else if b.perMinute != perMinute {
		b.limiter.SetLimitAt(now, perMinuteLimit(perMinute))
		b.limiter.SetBurstAt(now, perMinute)
	}
	b.perMinute = perMinute
}

func perMinuteLimit(n int) rate.Limit {
	return rate.Limit(float64(n) / budgetWindow.Seconds())
}

// take takes one token at now. When there is none it takes nothing and
// returns false. refund gives the token back, for a Notification that was
// not made after all (it existed already, or was rejected).
func (b *budget) take(now time.Time) (refund func(), ok bool) {
	return takeAt(b.limiter, now)
}

// untilToken is how long from now until the bucket holds a token again.
func (b *budget) untilToken(now time.Time) time.Duration {
	return untilTokenAt(b.limiter, now, now)
}

// takeAt takes one token of l at at, or nothing when there is none (a
// budget never lends). refund gives it back.
func takeAt(l *rate.Limiter, at time.Time) (refund func(), ok bool) {
	res := l.ReserveN(at, 1)
	if !res.OK() || res.DelayFrom(at) > 0 {
		res.CancelAt(at)
		return nil, false
	}
	return func() { res.CancelAt(at) }, true
}

// untilTokenAt is how long from now until l, asked at at, holds a token
// again: at least minBudgetRecheck, at most budgetWindow.
func untilTokenAt(l *rate.Limiter, at, now time.Time) time.Duration {
	res := l.ReserveN(at, 1)
	defer res.CancelAt(at)
	if !res.OK() {
		return budgetWindow
	}
	return max(res.DelayFrom(now), minBudgetRecheck)
}

// budgetFor returns the rule's budget at the rate it is allowed now,
// making it on first use or for a new rule of the same name.
func (r *Reconciler) budgetFor(rule *notifyv1.EventRule, now time.Time) *budget {
	perMinute := EffectiveBudget(rule.Spec.MaxNotificationsPerMinute, r.MaxNotificationsPerMinute)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.budgets == nil {
		r.budgets = map[types.NamespacedName]*budget{}
	}
	r.sweepNamespaces(now)
	key := client.ObjectKeyFromObject(rule)
	b := r.budgets[key]
	switch {
	case b == nil:
		b = newBudget(rule.UID, perMinute, now)
		b.namespace = r.joinNamespace(rule.Namespace)
		r.budgets[key] = b
	case b.uid != rule.UID:
		// A new rule of the same name: a bucket of its own, the
		// namespace's shared one.
		ns := b.namespace
		b = newBudget(rule.UID, perMinute, now)
		b.namespace = ns
		r.budgets[key] = b
	}
	b.setRate(perMinute, now)
	return b
}

// dropBudget forgets a deleted rule's budget. Its namespace's budget is
// kept for namespaceBudgetLinger after the namespace's last rule went, so
// that deleting and re-creating rules does not refill it.
func (r *Reconciler) dropBudget(key types.NamespacedName, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.budgets[key]; ok {
		delete(r.budgets, key)
		r.leaveNamespace(key.Namespace, now)
	}
	r.sweepNamespaces(now)
}

// budgetCondition is the RateLimited condition.
type budgetCondition struct {
	status          metav1.ConditionStatus
	reason, message string
}

// BudgetView is what a rule's RateLimited condition and BudgetExceeded
// Event say about its budgets.
type BudgetView struct {
	// PerMinute is the rule's budget: its Spec (spec.maxNotificationsPerMinute,
	// 0 for unset) no higher than the controller's Ceiling.
	PerMinute int
	Spec      int32
	Ceiling   int
	// Namespace and NamespacePerMinute are the budget the namespace's
	// rules share; NamespacePerMinute not positive: none.
	Namespace          string
	NamespacePerMinute int
}

// ruleBudget names the rule's own budget and where its number comes from.
func (v BudgetView) ruleBudget() string {
	source := fmt.Sprintf("spec.maxNotificationsPerMinute %d", v.Spec)
	if v.Spec <= 0 {
		source = fmt.Sprintf("the default %d", notifyv1.DefaultEventRuleNotificationsPerMinute)
	}
	if v.Ceiling > 0 && v.Ceiling < EffectiveBudget(v.Spec, 0) {
		source += fmt.Sprintf(", lowered to the controller's ceiling %d", v.Ceiling)
	}
	return fmt.Sprintf("the rule's budget of %d Notifications per minute (%s)", v.PerMinute, source)
}

// namespaceBudget names the budget the namespace's rules share.
func (v BudgetView) namespaceBudget() string {
	return fmt.Sprintf("the namespace's budget of %d Notifications per minute, shared by every EventRule in namespace %s (the controller's --eventrule-namespace-max-notifications-per-minute)",
		v.NamespacePerMinute, v.Namespace)
}

// held names the budgets that held Events back.
func (v BudgetView) held(rule, namespace bool) string {
	switch {
	case rule && namespace && v.NamespacePerMinute > 0:
		return v.ruleBudget() + " and " + v.namespaceBudget()
	case namespace && v.NamespacePerMinute > 0:
		return v.namespaceBudget()
	}
	return v.ruleBudget()
}

// within names every budget the rule has.
func (v BudgetView) within() string {
	if v.NamespacePerMinute > 0 {
		return v.ruleBudget() + " and " + v.namespaceBudget()
	}
	return v.ruleBudget()
}

// RateLimitedCondition says what a rule's RateLimited condition is at
// now: True while its own budget (lastLimited) or its namespace's
// (lastNamespaceLimited) held an Event back within the last minute, naming
// which; zero times for never. recheck, when positive, is when it turns
// False unless a budget holds more back.
func RateLimitedCondition(now, lastLimited, lastNamespaceLimited time.Time, v BudgetView) (c budgetCondition, recheck time.Duration) {
	recent := func(t time.Time) bool { return !t.IsZero() && now.Sub(t) < budgetWindow }
	byRule, byNamespace := recent(lastLimited), recent(lastNamespaceLimited)
	if byRule || byNamespace {
		last := lastLimited
		if byNamespace && lastNamespaceLimited.After(last) {
			last = lastNamespaceLimited
		}
		return budgetCondition{metav1.ConditionTrue, notifyv1.ReasonBudgetExceeded, fmt.Sprintf(
			"matching Events exceeded %s in the last minute: those held back make no Notification and are counted in status.rateLimited",
			v.held(byRule, byNamespace))}, last.Add(budgetWindow).Sub(now)
	}
	return budgetCondition{metav1.ConditionFalse, notifyv1.ReasonWithinBudget, "within " + v.within()}, 0
}

// view is what the rule's budgets look like now.
func (r *Reconciler) view(rule *notifyv1.EventRule, b *budget) BudgetView {
	v := BudgetView{PerMinute: b.perMinute, Spec: rule.Spec.MaxNotificationsPerMinute, Ceiling: r.MaxNotificationsPerMinute, Namespace: rule.Namespace}
	if b.namespace != nil {
		v.NamespacePerMinute = b.namespace.perMinute
	}
	return v
}

// limits is the Ready message's account of the rule's budgets.
func (b *budget) limits() string {
	if b.namespace != nil {
		return fmt.Sprintf("at most %d Notifications per minute, and the namespace's EventRules together at most %d", b.perMinute, b.namespace.perMinute)
	}
	return fmt.Sprintf("at most %d Notifications per minute", b.perMinute)
}

// settle records what one reconcile's tally says about the budgets, emits
// the rule's BudgetExceeded Event (at most once a minute) and returns the
// RateLimited condition and when to look at it again.
func (r *Reconciler) settle(rule *notifyv1.EventRule, b *budget, t tally, now time.Time) (budgetCondition, time.Duration) {
	byRule := t.rateLimited > t.namespaceRateLimited || t.postponed > t.namespacePostponed
	byNamespace := t.namespaceRateLimited > 0 || t.namespacePostponed > 0
	if byRule {
		b.lastLimited = now
	}
	if byNamespace {
		b.lastNamespaceLimited = now
	}
	v := r.view(rule, b)
	if byRule || byNamespace {
		if b.lastEvent.IsZero() || now.Sub(b.lastEvent) >= budgetWindow {
			b.lastEvent = now
			r.Recorder.Eventf(rule, nil, "Warning", notifyv1.ReasonBudgetExceeded, "Emit",
				"matching Events exceed %s: %d made no Notification and %d grouped Notifications wait for the budget in this pass%s (status.rateLimited counts Events that made none; at most one such Event a minute)",
				v.held(byRule, byNamespace), t.rateLimited, t.postponed, namespaceShare(t, byRule && byNamespace))
		}
	}
	return RateLimitedCondition(now, b.lastLimited, b.lastNamespaceLimited, v)
}

// namespaceShare says how much of a pass's tally the namespace's budget
// held back, when both budgets did.
func namespaceShare(t tally, both bool) string {
	if !both {
		return ""
	}
	return fmt.Sprintf("; the namespace's budget held back %d of those Events and %d of those Notifications, the rule's the rest", t.namespaceRateLimited, t.namespacePostponed)
}
