package eventrule

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

func TestEffectiveBudget(t *testing.T) {
	tests := []struct {
		spec    int32
		ceiling int
		want    int
	}{
		{0, 0, notifyv1.DefaultEventRuleNotificationsPerMinute}, // unset: the API default
		{0, 10, 10},
		{10, 60, 10},
		{600, 60, 60}, // a tenant cannot go above the operator's ceiling
		{600, 0, 600},
		{-5, 0, notifyv1.DefaultEventRuleNotificationsPerMinute},
	}
	for _, tc := range tests {
		if got := EffectiveBudget(tc.spec, tc.ceiling); got != tc.want {
			t.Errorf("EffectiveBudget(%d, %d) = %d, want %d", tc.spec, tc.ceiling, got, tc.want)
		}
	}
}

func TestBudgetBucket(t *testing.T) {
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	b := newBudget("u", 10, start)
	taken := 0
	for range 200 {
		if _, ok := b.take(start); ok {
			taken++
		}
	}
	if taken != 10 {
		t.Fatalf("took %d tokens from a full bucket of 10", taken)
	}
	if d := b.untilToken(start); d != 6*time.Second {
		t.Errorf("next token in %s, want 6s (10 a minute)", d)
	}
	fast := newBudget("fast", 600, start)
	for range 600 {
		fast.take(start)
	}
	if d := fast.untilToken(start); d != minBudgetRecheck {
		t.Errorf("a rule waiting for a budget of 600 a minute is looked at again in %s, want %s, not once per token", d, minBudgetRecheck)
	}
	if _, ok := b.take(start.Add(5 * time.Second)); ok {
		t.Error("a token before it refilled")
	}
	refund, ok := b.take(start.Add(6 * time.Second))
	if !ok {
		t.Fatal("no token 6s later")
	}
	refund()
	if _, ok := b.take(start.Add(6 * time.Second)); !ok {
		t.Error("a refunded token is not there")
	}
	if _, ok := b.take(start.Add(6 * time.Second)); ok {
		t.Error("more than the refunded token")
	}

	// A lower rate shrinks the bucket; a higher one does not fill it.
	later := start.Add(time.Hour)
	b.setRate(3, later)
	got := 0
	for range 10 {
		if _, ok := b.take(later); ok {
			got++
		}
	}
	if got != 3 {
		t.Errorf("took %d tokens after lowering the budget to 3", got)
	}
	b.setRate(100, later)
	if _, ok := b.take(later); ok {
		t.Error("raising the budget refilled the bucket")
	}
}

func TestRateLimitedCondition(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	never := time.Time{}
	tests := []struct {
		name                   string
		lastLimited, lastNSLim time.Time
		spec                   int32
		ceiling                int
		namespacePerMinute     int
		want                   metav1.ConditionStatus
		recheck                time.Duration
		msg                    []string
		notMsg                 string
	}{
		{"never limited", never, never, 60, 60, 0, metav1.ConditionFalse, 0,
			[]string{"within the rule's budget of 60 Notifications per minute (spec.maxNotificationsPerMinute 60)"}, "namespace"},
		{"just limited", now, never, 10, 60, 0, metav1.ConditionTrue, time.Minute,
			[]string{"budget of 10 Notifications per minute (spec.maxNotificationsPerMinute 10)"}, "namespace"},
		{"limited 59s ago", now.Add(-59 * time.Second), never, 10, 60, 0, metav1.ConditionTrue, time.Second, []string{"status.rateLimited"}, ""},
		{"a minute passed", now.Add(-time.Minute), never, 10, 60, 0, metav1.ConditionFalse, 0, []string{"within the rule's budget of 10"}, ""},
		{"ceiling lowers the spec", now, never, 500, 60, 0, metav1.ConditionTrue, time.Minute,
			[]string{"budget of 60 Notifications per minute (spec.maxNotificationsPerMinute 500, lowered to the controller's ceiling 60)"}, ""},
		{"within both budgets", never, never, 60, 60, 20, metav1.ConditionFalse, 0,
			[]string{"within the rule's budget of 60", "and the namespace's budget of 20 Notifications per minute, shared by every EventRule in namespace team-a"}, ""},
		{"the namespace's budget held Events back", never, now.Add(-10 * time.Second), 60, 60, 20, metav1.ConditionTrue, 50 * time.Second,
			[]string{"exceeded the namespace's budget of 20 Notifications per minute, shared by every EventRule in namespace team-a (the controller's --eventrule-namespace-max-notifications-per-minute) in the last minute"},
			"rule's budget"},
		{"the rule's own budget, with a namespace budget", now, never, 10, 60, 20, metav1.ConditionTrue, time.Minute,
			[]string{"exceeded the rule's budget of 10 Notifications per minute (spec.maxNotificationsPerMinute 10) in the last minute"}, "namespace"},
		{"both, the namespace's later", now.Add(-30 * time.Second), now.Add(-5 * time.Second), 10, 60, 20, metav1.ConditionTrue, 55 * time.Second,
			[]string{"the rule's budget of 10", "and the namespace's budget of 20"}, ""},
		{"the namespace's a minute ago, the rule's recently", now.Add(-5 * time.Second), now.Add(-time.Minute), 10, 60, 20, metav1.ConditionTrue, 55 * time.Second,
			[]string{"exceeded the rule's budget of 10"}, "exceeded the namespace's"},
	}
	for _, tc := range tests {
		v := BudgetView{PerMinute: EffectiveBudget(tc.spec, tc.ceiling), Spec: tc.spec, Ceiling: tc.ceiling, Namespace: "team-a", NamespacePerMinute: tc.namespacePerMinute}
		c, recheck := RateLimitedCondition(now, tc.lastLimited, tc.lastNSLim, v)
		if c.status != tc.want || recheck != tc.recheck {
			t.Errorf("%s: got %s (recheck %s), want %s (recheck %s)", tc.name, c.status, recheck, tc.want, tc.recheck)
		}
		for _, m := range tc.msg {
			if !strings.Contains(c.message, m) {
				t.Errorf("%s: message %q does not contain %q", tc.name, c.message, m)
			}
		}
		if tc.notMsg != "" && strings.Contains(c.message, tc.notMsg) {
			t.Errorf("%s: message %q contains %q", tc.name, c.message, tc.notMsg)
		}
		wantReason := notifyv1.ReasonWithinBudget
		if tc.want == metav1.ConditionTrue {
			wantReason = notifyv1.ReasonBudgetExceeded
		}
		if c.reason != wantReason {
			t.Errorf("%s: reason %s, want %s", tc.name, c.reason, wantReason)
		}
	}
}
