package eventrule

import (
	"context"
	"fmt"
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

// The budget outlives spec changes and suspension, which would otherwise
// refill it, and goes with the rule.
func TestBudgetLifecycle(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := notifyv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	clk := testingclock.NewFakeClock(now)
	rule := &notifyv1.EventRule{
		ObjectMeta: metav1.ObjectMeta{Name: "flood", Namespace: "ns", UID: "uid-1", Generation: 1},
		Spec: notifyv1.EventRuleSpec{
			Match:                     notifyv1.EventMatch{Types: []string{"Warning"}},
			MaxNotificationsPerMinute: 3,
			Notification: notifyv1.NotificationTemplateSpec{Spec: notifyv1.NotificationSpec{
				Type: notifyv1.TypeWarning, Title: "{{ .name }}", Message: "{{ .message }}",
				Audience: notifyv1.Audience{Roles: []string{"sre"}}, Channels: []notifyv1.Channel{notifyv1.ChannelInApp},
			}},
		},
	}
	objs := append([]client.Object{rule}, crashingPods(5, now)...)
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithStatusSubresource(rule).Build()
	recorder := events.NewFakeRecorder(100)
	r := &Reconciler{Client: c, APIReader: c, Recorder: recorder, Clock: clk, MaxNotificationsPerMinute: 60}
	key := client.ObjectKeyFromObject(rule)
	reconcile := func() *notifyv1.EventRule {
		t.Helper()
		if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: key}); err != nil {
			t.Fatal(err)
		}
		var got notifyv1.EventRule
		if err := c.Get(context.Background(), key, &got); err != nil {
			t.Fatal(err)
		}
		return &got
	}

	got := reconcile()
	if st := got.Status; st.Matched != 5 || st.Emitted != 3 || st.RateLimited != 2 {
		t.Fatalf("status %+v, want 5 matched, 3 emitted, 2 rate limited", st)
	}
	if c := meta.FindStatusCondition(got.Status.Conditions, notifyv1.ConditionRateLimited); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("RateLimited condition %+v", c)
	}
	if n := len(recorder.Events); n != 4 { // 3 Emitted, 1 BudgetExceeded
		t.Errorf("%d Events recorded, want 4", n)
	}
	first := r.budgets[key]

	// A spec change starts a new ledger but keeps the (empty) bucket.
	edited := got.DeepCopy()
	edited.Generation++
	edited.Spec.MaxNotificationsPerMinute = 5
	if b := r.budgetFor(edited, now); b != first || b.perMinute != 5 {
		t.Fatalf("a spec change replaced the budget or missed its rate: %+v", b)
	}
	if _, ok := first.take(now); ok {
		t.Error("a spec change refilled the bucket")
	}
	// The ceiling wins over the spec.
	edited.Spec.MaxNotificationsPerMinute = 600
	if b := r.budgetFor(edited, now); b.perMinute != 60 {
		t.Errorf("budget %d a minute, want the ceiling 60", b.perMinute)
	}

	// Suspending keeps the budget.
	got.Spec.Suspend = true
	if err := c.Update(context.Background(), got); err != nil {
		t.Fatal(err)
	}
	reconcile()
	if r.budgets[key] != first {
		t.Error("suspending dropped the budget")
	}

	// A minute later the condition clears.
	clk.Step(time.Minute)
	got = reconcile()
	if c := meta.FindStatusCondition(got.Status.Conditions, notifyv1.ConditionRateLimited); c == nil || c.Status != metav1.ConditionFalse || c.Reason != notifyv1.ReasonWithinBudget {
		t.Errorf("RateLimited condition a minute later %+v", c)
	}

	// Deleting the rule drops it; a new rule of the same name gets its own.
	if err := c.Delete(context.Background(), got); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: key}); err != nil {
		t.Fatal(err)
	}
	if len(r.budgets) != 0 || len(r.ledgers) != 0 {
		t.Errorf("a deleted rule left %d budgets and %d ledgers", len(r.budgets), len(r.ledgers))
	}
	renamed := rule.DeepCopy()
	renamed.UID = "uid-2"
	if b := r.budgetFor(renamed, now); b == first || b.uid != "uid-2" {
		t.Error("a new rule of the same name shares the old one's budget")
	}
}

// crashingPods are n Warning Events in namespace ns, each about a Pod of
// its own, last seen at at.
func crashingPods(n int, at time.Time) []client.Object {
	var out []client.Object
	for i := range n {
		out = append(out, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: fmt.Sprintf("e%d", i), Namespace: "ns", UID: types.UID(fmt.Sprintf("e%d", i))},
			InvolvedObject: corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: "ns", Name: fmt.Sprintf("web-%d", i)},
			Type:           "Warning", Reason: "BackOff", Message: "crashing", Count: 1,
			LastTimestamp: metav1.NewTime(at),
		})
	}
	return out
}
