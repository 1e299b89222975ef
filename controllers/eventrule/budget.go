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
	// lastLimited is when the budget last held an Event back;
	// lastEvent when the rule last got a BudgetExceeded Event.
	lastLimited, lastEvent time.Time
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
	res := b.limiter.ReserveN(now, 1)
	if !res.OK() || res.DelayFrom(now) > 0 {
		res.CancelAt(now)
		return nil, false
	}
	return func() { res.CancelAt(now) }, true
}

// untilToken is how long from now until the bucket holds a token again.
func (b *budget) untilToken(now time.Time) time.Duration {
	res := b.limiter.ReserveN(now, 1)
	defer res.CancelAt(now)
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
	key := client.ObjectKeyFromObject(rule)
	b := r.budgets[key]
	if b == nil || b.uid != rule.UID {
		b = newBudget(rule.UID, perMinute, now)
		r.budgets[key] = b
	}
	b.setRate(perMinute, now)
	return b
}

func (r *Reconciler) dropBudget(key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.budgets, key)
}

// budgetCondition is the RateLimited condition.
type budgetCondition struct {
	status          metav1.ConditionStatus
	reason, message string
}

// RateLimitedCondition says what a rule's RateLimited condition is at
// now: True while its budget held an Event back within the last minute
// (lastLimited; zero for never), then False. recheck, when positive, is
// when it turns False unless the budget holds more back.
func RateLimitedCondition(now, lastLimited time.Time, perMinute int, spec int32, ceiling int) (c budgetCondition, recheck time.Duration) {
	source := fmt.Sprintf("spec.maxNotificationsPerMinute %d", spec)
	if spec <= 0 {
		source = fmt.Sprintf("the default %d", notifyv1.DefaultEventRuleNotificationsPerMinute)
	}
	if ceiling > 0 && ceiling < EffectiveBudget(spec, 0) {
		source += fmt.Sprintf(", lowered to the controller's ceiling %d", ceiling)
	}
	if !lastLimited.IsZero() && now.Sub(lastLimited) < budgetWindow {
		return budgetCondition{metav1.ConditionTrue, notifyv1.ReasonBudgetExceeded, fmt.Sprintf(
			"matching Events exceeded the budget of %d Notifications per minute (%s) in the last minute: those beyond it make no Notification and are counted in status.rateLimited",
			perMinute, source)}, lastLimited.Add(budgetWindow).Sub(now)
	}
	return budgetCondition{metav1.ConditionFalse, notifyv1.ReasonWithinBudget, fmt.Sprintf(
		"within the budget of %d Notifications per minute (%s)", perMinute, source)}, 0
}

// settle records what one reconcile's tally says about the budget, emits
// the rule's BudgetExceeded Event (at most once a minute) and returns the
// RateLimited condition and when to look at it again.
func (r *Reconciler) settle(rule *notifyv1.EventRule, b *budget, t tally, now time.Time) (budgetCondition, time.Duration) {
	if t.rateLimited > 0 || t.postponed > 0 {
		b.lastLimited = now
		if b.lastEvent.IsZero() || now.Sub(b.lastEvent) >= budgetWindow {
			b.lastEvent = now
			r.Recorder.Eventf(rule, nil, "Warning", notifyv1.ReasonBudgetExceeded, "Emit",
				"matching Events exceed the rule's budget of %d Notifications per minute: %d made no Notification and %d grouped Notifications wait for the budget in this pass (status.rateLimited counts Events that made none; at most one such Event a minute)",
				b.perMinute, t.rateLimited, t.postponed)
		}
	}
	return RateLimitedCondition(now, b.lastLimited, b.perMinute, rule.Spec.MaxNotificationsPerMinute, r.MaxNotificationsPerMinute)
}
