package patch_test

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/patch"
)

func newClient(t *testing.T, objs ...client.Object) (client.Client, *int) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := notifyv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	writes := new(int)
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithStatusSubresource(&notifyv1.ChannelDelivery{}, &notifyv1.Notification{}).
		WithInterceptorFuncs(interceptor.Funcs{
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
				*writes++
				return c.SubResource(sub).Patch(ctx, obj, p, opts...)
			},
		}).Build()
	return c, writes
}

func delivery() *notifyv1.ChannelDelivery {
	return &notifyv1.ChannelDelivery{
		ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "ns"},
		Spec:       notifyv1.ChannelDeliverySpec{Notification: "n", Channel: notifyv1.ChannelInApp},
	}
}

func get(t *testing.T, c client.Client) *notifyv1.ChannelDelivery {
	t.Helper()
	var d notifyv1.ChannelDelivery
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "d"}, &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

// Two writers that read the same version each write only their own
// fields: neither undoes the other's change.
func TestWritersKeepEachOthersFields(t *testing.T) {
	ctx := context.Background()
	c, _ := newClient(t, delivery())
	controllerCopy, inboxCopy := get(t, c), get(t, c)
	controller := patch.NewHelper(controllerCopy, c, patch.ControllerFieldOwner)
	inbox := patch.NewHelper(inboxCopy, c, patch.InboxFieldOwner)

	inboxCopy.Status.ReadTime = &metav1.Time{Time: time.Unix(1700000000, 0)}
	if _, err := inbox.Patch(ctx, inboxCopy); err != nil {
		t.Fatal(err)
	}
	controllerCopy.Status.Phase = notifyv1.DeliverySucceeded
	controllerCopy.Status.Reason = notifyv1.ReasonDelivered
	if _, err := controller.Patch(ctx, controllerCopy); err != nil {
		t.Fatal(err)
	}
	got := get(t, c)
	if got.Status.ReadTime == nil || got.Status.Phase != notifyv1.DeliverySucceeded || got.Status.Reason != notifyv1.ReasonDelivered {
		t.Fatalf("a writer lost the other's change: %+v", got.Status)
	}
}

// A field set to its zero value is removed, not left as it was.
func TestClearedFieldIsRemoved(t *testing.T) {
	ctx := context.Background()
	d := delivery()
	d.Status.NextAttemptTime = &metav1.MicroTime{Time: time.Unix(1700000000, 0)}
	d.Status.Phase = notifyv1.DeliveryPending
	c, _ := newClient(t, d)
	cur := get(t, c)
	h := patch.NewHelper(cur, c, patch.ControllerFieldOwner)
	cur.Status.NextAttemptTime = nil
	cur.Status.Phase = notifyv1.DeliverySending
	if _, err := h.Patch(ctx, cur); err != nil {
		t.Fatal(err)
	}
	if got := get(t, c); got.Status.NextAttemptTime != nil || got.Status.Phase != notifyv1.DeliverySending {
		t.Fatalf("status after patch: %+v", got.Status)
	}
}

// With the optimistic lock a write based on an old read fails with a
// Conflict, and changes nothing.
func TestOptimisticLock(t *testing.T) {
	ctx := context.Background()
	c, _ := newClient(t, delivery())
	stale := get(t, c)
	h := patch.NewHelper(stale, c, patch.ControllerFieldOwner)

	other := get(t, c)
	otherHelper := patch.NewHelper(other, c, patch.InboxFieldOwner)
	other.Status.ArchivedTime = &metav1.Time{Time: time.Unix(1700000000, 0)}
	if _, err := otherHelper.Patch(ctx, other); err != nil {
		t.Fatal(err)
	}

	stale.Status.Phase = notifyv1.DeliverySending
	_, err := h.Patch(ctx, stale, patch.WithOptimisticLock())
	if !apierrors.IsConflict(err) {
		t.Fatalf("want a conflict, got %v", err)
	}
	if got := get(t, c); got.Status.Phase != "" {
		t.Fatalf("a conflicting write changed the object: %+v", got.Status)
	}
	// Without the lock the same write goes through and keeps the other
	// writer's field.
	if _, err := h.Patch(ctx, stale); err != nil {
		t.Fatal(err)
	}
	if got := get(t, c); got.Status.Phase != notifyv1.DeliverySending || got.Status.ArchivedTime == nil {
		t.Fatalf("status: %+v", got.Status)
	}
}

// An unchanged status costs no request; a helper serves writes in a row.
func TestNoChangeNoWrite(t *testing.T) {
	ctx := context.Background()
	c, writes := newClient(t, delivery())
	cur := get(t, c)
	h := patch.NewHelper(cur, c, patch.ControllerFieldOwner)
	cur.Labels = map[string]string{"not": "status"}
	if wrote, err := h.Patch(ctx, cur); err != nil || wrote || *writes != 0 {
		t.Fatalf("wrote=%v err=%v writes=%d, want nothing sent", wrote, err, *writes)
	}
	cur.Status.Phase = notifyv1.DeliverySending
	if wrote, err := h.Patch(ctx, cur, patch.WithOptimisticLock()); err != nil || !wrote {
		t.Fatalf("first write: wrote=%v err=%v", wrote, err)
	}
	// The helper's copy follows the write: the next locked write is based
	// on the version just written and does not conflict.
	cur.Status.Phase = notifyv1.DeliverySucceeded
	if wrote, err := h.Patch(ctx, cur, patch.WithOptimisticLock()); err != nil || !wrote {
		t.Fatalf("second write: wrote=%v err=%v", wrote, err)
	}
	if *writes != 2 {
		t.Fatalf("writes = %d, want 2", *writes)
	}
	if got := get(t, c); got.Status.Phase != notifyv1.DeliverySucceeded {
		t.Fatalf("phase %q", got.Status.Phase)
	}
}

// A nested status object that does not exist on the server yet is written
// whole: its required fields that are zero must arrive too. The fake client
// has no schema, so the test reads what was sent.
func TestNestedObjectIsSentWhole(t *testing.T) {
	ctx := context.Background()
	n := &notifyv1.Notification{ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "ns"}}
	scheme := runtime.NewScheme()
	if err := notifyv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	var sent []byte
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(n).WithStatusSubresource(n).
		WithInterceptorFuncs(interceptor.Funcs{
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
				sent, _ = p.Data(obj)
				return c.SubResource(sub).Patch(ctx, obj, p, opts...)
			},
		}).Build()
	var cur notifyv1.Notification
	if err := c.Get(ctx, client.ObjectKeyFromObject(n), &cur); err != nil {
		t.Fatal(err)
	}
	h := patch.NewHelper(&cur, c, patch.ControllerFieldOwner)
	cur.Status.Deliveries.Total, cur.Status.Deliveries.Pending = 1, 1
	if _, err := h.Patch(ctx, &cur); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"total":1`, `"pending":1`, `"failed":0`, `"succeeded":0`} {
		if !strings.Contains(string(sent), field) {
			t.Errorf("patch %s lacks %s", sent, field)
		}
	}
}
