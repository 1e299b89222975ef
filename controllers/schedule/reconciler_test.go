package schedule_test

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	testingclock "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/controllers/schedule"
	heraldenvtest "github.com/herald-dev/herald/internal/dev/testutil/envtest"
)

func TestPlanHistory(t *testing.T) {
	base := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	child := func(name string, day int, phase notifyv1.NotificationPhase) notifyv1.Notification {
		return notifyv1.Notification{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{
				notifyv1.AnnotationScheduledTime: base.AddDate(0, 0, day).Format(time.RFC3339),
			}},
			Status: notifyv1.NotificationStatus{Phase: phase},
		}
	}
	children := []notifyv1.Notification{
		child("d1", 1, notifyv1.NotificationDelivered),
		child("d3", 3, notifyv1.NotificationDelivered),
		child("d2", 2, notifyv1.NotificationDelivered),
		child("f1", 1, notifyv1.NotificationFailed),
		child("p4", 4, notifyv1.NotificationPartiallyDelivered),
		child("e2", 2, notifyv1.NotificationExpired),
		child("r5", 5, notifyv1.NotificationDispatching),
		child("q6", 6, ""),
	}
	active, prune := schedule.PlanHistory(children, 2, 1)
	if want := []string{"q6", "r5"}; !equal(active, want) {
		t.Errorf("active = %v, want %v", active, want)
	}
	var pruned []string
	for _, n := range prune {
		pruned = append(pruned, n.Name)
	}
	// Keeps d3, d2 (the two newest delivered) and p4 (the newest other).
	if want := []string{"d1", "e2", "f1"}; !equal(pruned, want) {
		t.Errorf("pruned = %v, want %v", pruned, want)
	}
	if _, prune := schedule.PlanHistory(children, 0, 0); len(prune) != 6 {
		t.Errorf("limits of 0 keep no finished child, pruned %d", len(prune))
	}
}

// TestScheduleRequeue drives the reconciler directly with a fake clock to
// check it asks to come back exactly when the next run is due.
func TestScheduleRequeue(t *testing.T) {
	ctx := context.Background()
	created := time.Date(2026, 11, 28, 7, 0, 0, 0, time.UTC)
	s := &notifyv1.NotificationSchedule{
		ObjectMeta: metav1.ObjectMeta{Name: "daily", Namespace: "ns", CreationTimestamp: metav1.NewTime(created)},
		Spec: notifyv1.NotificationScheduleSpec{
			Schedule: "0 9 * * *",
			TimeZone: "Europe/Berlin",
			Notification: notifyv1.NotificationTemplateSpec{Spec: notifyv1.NotificationSpec{
				Message:  "hi",
				Audience: notifyv1.Audience{Users: []string{"alice"}},
				Channels: []notifyv1.Channel{notifyv1.ChannelInApp},
			}},
		},
	}
	c := fake.NewClientBuilder().WithScheme(heraldenvtest.Scheme()).WithObjects(s).WithStatusSubresource(s).Build()
	clock := testingclock.NewFakeClock(time.Date(2026, 11, 28, 7, 59, 30, 0, time.UTC)) // 08:59:30 in Berlin
	r := &schedule.Reconciler{Client: c, Recorder: events.NewFakeRecorder(10), Clock: clock}
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(s)}

	res, err := r.Reconcile(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if want := 30*time.Second + 100*time.Millisecond; res.RequeueAfter != want {
		t.Fatalf("requeue after %s, want %s", res.RequeueAfter, want)
	}

	clock.Step(res.RequeueAfter)
	res, err = r.Reconcile(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if want := 24 * time.Hour; res.RequeueAfter != want { // 100ms late, plus the slack
		t.Fatalf("requeue after %s, want %s", res.RequeueAfter, want)
	}
	run := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	var n notifyv1.Notification
	if err := c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: schedule.ScheduledName("daily", run)}, &n); err != nil {
		t.Fatalf("the run's notification: %v", err)
	}
	var got notifyv1.NotificationSchedule
	if err := c.Get(ctx, req.NamespacedName, &got); err != nil {
		t.Fatal(err)
	}
	if got.Status.LastScheduleTime == nil || !got.Status.LastScheduleTime.Time.Equal(run) || got.Status.LastNotification != n.Name {
		t.Fatalf("status: %+v", got.Status)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
