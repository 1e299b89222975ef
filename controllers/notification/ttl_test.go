package notification

import (
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

func ttl(s int32) *int32 { return &s }

// A finished Notification without its own ttlSecondsAfterFinished is
// deleted after the controller's default; its own TTL wins (0 included),
// and a default of 0 keeps it.
func TestDeleteAfterDefaultTTL(t *testing.T) {
	const day = 24 * time.Hour
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name       string
		defaultTTL time.Duration
		specTTL    *int32
		finished   time.Duration // how long ago
		deleted    bool
		requeue    time.Duration
	}{
		{"default reached", 7 * day, nil, 7*day + time.Second, true, 0},
		{"default not reached", 7 * day, nil, day, false, 6 * day},
		{"spec TTL wins, longer", 7 * day, ttl(30 * 86400), 8 * day, false, 22 * day},
		{"spec TTL wins, shorter", 7 * day, ttl(60), 2 * time.Minute, true, 0},
		{"spec TTL 0 deletes at once", 7 * day, ttl(0), 0, true, 0},
		{"default 0 disables", 0, nil, 365 * day, false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			scheme := runtime.NewScheme()
			if err := notifyv1.AddToScheme(scheme); err != nil {
				t.Fatal(err)
			}
			n := &notifyv1.Notification{
				ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "done"},
				Spec:       notifyv1.NotificationSpec{TTLSecondsAfterFinished: c.specTTL},
				Status: notifyv1.NotificationStatus{
					Phase:          notifyv1.NotificationDelivered,
					CompletionTime: &metav1.Time{Time: now.Add(-c.finished)},
				},
			}
			cl := fake.NewClientBuilder().WithScheme(scheme).WithObjects(n).Build()
			r := &Reconciler{Client: cl, DefaultTTLAfterFinished: c.defaultTTL}
			res, err := r.deleteAfterTTL(t.Context(), n, now)
			if err != nil {
				t.Fatal(err)
			}
			err = cl.Get(t.Context(), client.ObjectKeyFromObject(n), &notifyv1.Notification{})
			if gone := apierrors.IsNotFound(err); gone != c.deleted {
				t.Fatalf("deleted = %v, want %v (get: %v)", gone, c.deleted, err)
			}
			if res.RequeueAfter != c.requeue {
				t.Fatalf("requeue after %v, want %v", res.RequeueAfter, c.requeue)
			}
		})
	}
}
