package eventrule

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

func TestDrawTakesFromBothBudgets(t *testing.T) {
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name                  string
		rulePerMinute, nsSize int // nsSize 0: no namespace budget
		draws                 int
		wantMade              int
		wantByRule, wantByNS  int
		wantRuleLeft          int // tokens the rule's bucket still holds
	}{
		{"no namespace budget", 10, 0, 15, 10, 5, 0, 0},
		{"the rule's budget is the lower", 5, 20, 8, 5, 3, 0, 0},
		{"the namespace's budget is the lower: the rule keeps its tokens", 60, 20, 30, 20, 0, 10, 40},
		{"equal", 10, 10, 12, 10, 2, 0, 0},
	}
	for _, tc := range tests {
		b := newBudget("u", tc.rulePerMinute, start)
		if tc.nsSize > 0 {
			b.namespace = newNamespaceBudget("ns", tc.nsSize)
		}
		made, byRule, byNS := 0, 0, 0
		for range tc.draws {
			switch _, by := b.draw(start); by {
			case heldByNone:
				made++
			case heldByRule:
				byRule++
			case heldByNamespace:
				byNS++
			}
		}
		if made != tc.wantMade || byRule != tc.wantByRule || byNS != tc.wantByNS {
			t.Errorf("%s: made %d, held by the rule's budget %d, by the namespace's %d; want %d, %d, %d",
				tc.name, made, byRule, byNS, tc.wantMade, tc.wantByRule, tc.wantByNS)
		}
		left := 0
		for range tc.rulePerMinute {
			if _, ok := b.take(start); ok {
				left++
			}
		}
		if left != tc.wantRuleLeft {
			t.Errorf("%s: the rule's bucket holds %d tokens, want %d (a draw the namespace refused gives the rule's token back)", tc.name, left, tc.wantRuleLeft)
		}
	}
}

func TestDrawRefundGivesBothBack(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	b := newBudget("u", 5, now)
	b.namespace = newNamespaceBudget("ns", 1)
	refund, by := b.draw(now)
	if by != heldByNone {
		t.Fatalf("first draw held back by %d", by)
	}
	if _, by := b.draw(now); by != heldByNamespace {
		t.Fatalf("second draw: held by %d, want the namespace's budget", by)
	}
	refund()
	if _, by := b.draw(now); by != heldByNone {
		t.Errorf("after a refund: held by %d", by)
	}
	if d := b.untilDrawable(now); d != time.Minute {
		t.Errorf("next draw in %s, want 1m (the namespace's budget of 1 a minute)", d)
	}
}

// Rules reconciled concurrently ask the shared bucket with times read at
// different moments; going back and forth between them must not refill it.
func TestNamespaceBudgetTimeSkew(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	n := newNamespaceBudget("ns", 60) // one a second
	taken := 0
	for i := range 200 {
		at := now.Add(time.Duration(i%2) * 10 * time.Second) // 0s, 10s, 0s, 10s...
		if _, ok := n.take(at); ok {
			taken++
		}
	}
	// The bucket is full (60) at 0s; by 10s one token was taken and ten
	// more came, up to the size: 61 in all. Asked at 0s after 10s, the
	// limiter alone would refill by the 10s each time and never run out.
	if taken != 61 {
		t.Errorf("took %d tokens alternating between two times 10s apart, want 61", taken)
	}
}

// The namespace's budget is shared by its rules, outlives any one of them,
// is not refilled by deleting and re-creating them, and goes a minute
// after the last one.
func TestNamespaceBudgetLifecycle(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	r := &Reconciler{MaxNotificationsPerMinute: 60, NamespaceMaxNotificationsPerMinute: 3}
	rule := func(ns, name, uid string) *notifyv1.EventRule {
		return &notifyv1.EventRule{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)}}
	}
	var budgets []*budget
	for i := range 3 {
		budgets = append(budgets, r.budgetFor(rule("a", fmt.Sprintf("r%d", i), fmt.Sprintf("u%d", i)), now))
	}
	shared := budgets[0].namespace
	if shared == nil || budgets[1].namespace != shared || budgets[2].namespace != shared || shared.rules != 3 {
		t.Fatalf("the rules of a namespace do not share one budget: %+v", budgets)
	}
	if other := r.budgetFor(rule("b", "r0", "ub"), now); other.namespace == shared {
		t.Error("another namespace shares the budget")
	}
	for _, b := range budgets {
		if _, by := b.draw(now); by != heldByNone {
			t.Fatalf("held back by %d", by)
		}
	}
	if _, by := budgets[0].draw(now); by != heldByNamespace {
		t.Fatalf("a fourth Notification from three rules with a namespace budget of 3: held by %d", by)
	}

	// A new rule of the same name keeps the namespace's budget.
	if b := r.budgetFor(rule("a", "r0", "u0-new"), now); b.namespace != shared || shared.rules != 3 {
		t.Errorf("re-creating a rule under its name changed the namespace's budget (%d rules)", shared.rules)
	}
	// Deleting every rule and creating them again does not refill it.
	for i := range 3 {
		r.dropBudget(types.NamespacedName{Namespace: "a", Name: fmt.Sprintf("r%d", i)}, now)
	}
	r.dropBudget(types.NamespacedName{Namespace: "a", Name: "r0"}, now) // a second delete counts once
	if shared.rules != 0 || r.namespaces["a"] != shared {
		t.Fatalf("after the last rule went: %d rules, kept %v", shared.rules, r.namespaces["a"] == shared)
	}
	later := now.Add(30 * time.Second)
	b := r.budgetFor(rule("a", "again", "u-again"), later)
	if b.namespace != shared {
		t.Fatal("a rule re-created within a minute got a new namespace budget")
	}
	made := 0
	for range 10 {
		if _, by := b.draw(later); by == heldByNone {
			made++
		}
	}
	if made != 1 { // 30 s at 3 a minute: 1.5 tokens
		t.Errorf("a re-created rule made %d Notifications 30s later, want 1 (the bucket is not refilled)", made)
	}

	// A minute after the last rule went, the next look drops the budget.
	r.dropBudget(types.NamespacedName{Namespace: "a", Name: "again"}, later)
	r.budgetFor(rule("b", "r1", "ub1"), later.Add(59*time.Second))
	if r.namespaces["a"] == nil {
		t.Error("dropped before a minute passed")
	}
	r.budgetFor(rule("b", "r1", "ub1"), later.Add(2*time.Minute))
	if _, ok := r.namespaces["a"]; ok {
		t.Error("a namespace without rules kept its budget")
	}
	if r.namespaces["b"] == nil {
		t.Error("a namespace with rules lost its budget")
	}

	// No namespace budget configured: none made.
	none := &Reconciler{MaxNotificationsPerMinute: 60}
	if b := none.budgetFor(rule("a", "r", "u"), now); b.namespace != nil || len(none.namespaces) != 0 {
		t.Error("a namespace budget without the flag")
	}
}
