package eventrule

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	testingclock "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

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

// Grouped parts wait for the namespace's budget as for the rule's, and
// what is left when the wait is over is counted against the namespace's.
func TestGroupedPartsWaitForTheNamespaceBudget(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := notifyv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	const interval, wait = 10 * time.Minute, 30 * time.Second
	base := time.Date(2026, 12, 1, 10, 1, 0, 0, time.UTC) // a minute into a window
	clk := testingclock.NewFakeClock(base.Add(wait + time.Second))
	rule := &notifyv1.EventRule{
		ObjectMeta: metav1.ObjectMeta{Name: "bynames", Namespace: "ns", UID: "uid-1", Generation: 1},
		Spec: notifyv1.EventRuleSpec{
			Match:                     notifyv1.EventMatch{Types: []string{"Warning"}},
			MaxNotificationsPerMinute: 60,
			Grouping:                  &notifyv1.EventGrouping{By: []string{"name"}, Wait: metav1.Duration{Duration: wait}, Interval: metav1.Duration{Duration: interval}},
			Notification: notifyv1.NotificationTemplateSpec{Spec: notifyv1.NotificationSpec{
				Type: notifyv1.TypeWarning, Title: "{{ .name }}", Message: "{{ .message }}",
				Audience: notifyv1.Audience{Roles: []string{"sre"}}, Channels: []notifyv1.Channel{notifyv1.ChannelInApp},
			}},
		},
	}
	objs := append([]client.Object{rule}, crashingPods(3, base)...)
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithStatusSubresource(rule).Build()
	recorder := events.NewFakeRecorder(100)
	r := &Reconciler{Client: c, APIReader: c, Recorder: recorder, Clock: clk, MaxNotificationsPerMinute: 60, NamespaceMaxNotificationsPerMinute: 1}
	key := client.ObjectKeyFromObject(rule)
	reconcile := func() (*notifyv1.EventRule, time.Duration) {
		t.Helper()
		res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: key})
		if err != nil {
			t.Fatal(err)
		}
		var got notifyv1.EventRule
		if err := c.Get(context.Background(), key, &got); err != nil {
			t.Fatal(err)
		}
		return &got, res.RequeueAfter
	}

	got, requeue := reconcile()
	if st := got.Status; st.Matched != 3 || st.Emitted != 1 || st.RateLimited != 0 {
		t.Fatalf("status %+v, want 3 matched, 1 emitted, 0 rate limited (2 parts wait)", st)
	}
	if requeue != time.Minute {
		t.Errorf("looked at again in %s, want 1m, when the namespace's budget of 1 a minute has a token", requeue)
	}
	cond := meta.FindStatusCondition(got.Status.Conditions, notifyv1.ConditionRateLimited)
	if cond == nil || cond.Status != metav1.ConditionTrue || !strings.Contains(cond.Message, "exceeded the namespace's budget of 1 Notifications per minute") {
		t.Errorf("RateLimited condition %+v", cond)
	}

	// A minute later one more part is made; the third waits.
	clk.Step(time.Minute)
	if got, _ = reconcile(); got.Status.Emitted != 2 || got.Status.RateLimited != 0 {
		t.Fatalf("a minute later: status %+v, want 2 emitted", got.Status)
	}

	// An interval after the window ended, with the budget spent, the last
	// group is counted as held back by the namespace's budget.
	clk.SetTime(GroupWindow(base, interval).Add(2*interval + time.Second))
	r.budgets[key].namespace.take(clk.Now()) // another rule of the namespace took the token
	if got, _ = reconcile(); got.Status.Emitted != 2 || got.Status.RateLimited != 1 {
		t.Fatalf("after the wait: status %+v, want 2 emitted, 1 rate limited", got.Status)
	}
	b := r.budgets[key]
	if b.lastNamespaceLimited != clk.Now() || !b.lastLimited.IsZero() {
		t.Errorf("held back by the rule's budget at %s, by the namespace's at %s; want only the namespace's, now", b.lastLimited, b.lastNamespaceLimited)
	}
}

// The BudgetExceeded Event names the budgets that held Events back in the
// pass, and how many each held when both did.
func TestBudgetExceededEventNamesTheBudget(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	rule := &notifyv1.EventRule{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "r", UID: "u"}, Spec: notifyv1.EventRuleSpec{MaxNotificationsPerMinute: 10}}
	tests := []struct {
		name string
		t    tally
		want []string
		not  string
	}{
		{"the rule's", tally{rateLimited: 3}, []string{"exceed the rule's budget of 10 Notifications per minute (spec.maxNotificationsPerMinute 10): 3 made no Notification"}, "namespace's budget"},
		{"the namespace's", tally{rateLimited: 3, namespaceRateLimited: 3, postponed: 1, namespacePostponed: 1},
			[]string{"exceed the namespace's budget of 20 Notifications per minute, shared by every EventRule in namespace team-a", "3 made no Notification and 1 grouped"}, "rule's budget"},
		{"both", tally{rateLimited: 5, namespaceRateLimited: 2, postponed: 1},
			[]string{"exceed the rule's budget of 10", "and the namespace's budget of 20", "the namespace's budget held back 2 of those Events and 0 of those Notifications, the rule's the rest"}, ""},
	}
	for _, tc := range tests {
		recorder := events.NewFakeRecorder(10)
		r := &Reconciler{Recorder: recorder, MaxNotificationsPerMinute: 60, NamespaceMaxNotificationsPerMinute: 20}
		b := r.budgetFor(rule, now)
		r.settle(rule, b, tc.t, now)
		if len(recorder.Events) != 1 {
			t.Fatalf("%s: %d Events", tc.name, len(recorder.Events))
		}
		msg := <-recorder.Events
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: %q does not contain %q", tc.name, msg, w)
			}
		}
		if tc.not != "" && strings.Contains(msg, tc.not) {
			t.Errorf("%s: %q contains %q", tc.name, msg, tc.not)
		}
	}
}
