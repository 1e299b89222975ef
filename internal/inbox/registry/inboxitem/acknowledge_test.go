package inboxitem_test

import (
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	"github.com/herald-dev/herald/internal/inbox/registry/inboxitem"
)

// Acknowledging is distinct from reading, stamped with the server's time,
// repeatable, and final: taking it back is refused with a Conflict that
// says why.
func TestAcknowledge(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	c, d := newClient(t, newDelivery())
	h := newFakeHub(d)
	items, _ := inboxitem.NewREST(h, c, clk)
	write := func(change func(*inboxv1.InboxItem)) (*inboxv1.InboxItem, error) {
		t.Helper()
		obj, _, err := items.Update(as("alice"), "d", patchOf(change), nil, nil, false, &metav1.UpdateOptions{})
		h.cache(get(t, c))
		if err != nil {
			return nil, err
		}
		return obj.(*inboxv1.InboxItem), nil
	}
	if _, _, err := items.Update(as("bob"), "d", patchOf(func(it *inboxv1.InboxItem) { it.Status.Acknowledged = true }), nil, nil, false, &metav1.UpdateOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("bob acknowledging alice's item: want NotFound, got %v", err)
	}
	it, err := write(func(it *inboxv1.InboxItem) {
		it.Status.Acknowledged = true
		it.Status.AcknowledgedTime = &metav1.Time{Time: t0.Add(-time.Hour)} // ignored: the server's time counts
	})
	if err != nil {
		t.Fatal(err)
	}
	if !it.Status.Acknowledged || it.Status.Read || !it.Status.AcknowledgedTime.Time.Equal(t0) {
		t.Fatalf("acknowledged: %+v", it.Status)
	}
	if got := get(t, c).Status.AcknowledgedTime; got == nil || !got.Time.Equal(t0) || get(t, c).Status.ReadTime != nil {
		t.Fatalf("delivery status: %+v", get(t, c).Status)
	}
	clk.Step(time.Minute)
	// Reading it afterwards keeps the acknowledgement and its time.
	if it, err = write(markRead); err != nil {
		t.Fatal(err)
	}
	if !it.Status.Acknowledged || !it.Status.AcknowledgedTime.Time.Equal(t0) || !it.Status.Read {
		t.Fatalf("read after acknowledging: %+v", it.Status)
	}
	if _, err := write(func(it *inboxv1.InboxItem) { it.Status.Acknowledged = false }); !apierrors.IsConflict(err) {
		t.Fatalf("taking back an acknowledgement: want Conflict, got %v", err)
	}
	if get(t, c).Status.AcknowledgedTime == nil {
		t.Fatal("the refused write removed the acknowledgement")
	}
}
