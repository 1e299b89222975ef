package hub

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

func counted(t *testing.T, h *Hub, user, ns string) *inboxv1.InboxCounts {
	t.Helper()
	c, _, err := h.Counts(user, ns)
	must(t, err)
	return c
}

func summary(total, unread, unseen, archived, snoozed int32) inboxv1.InboxCountSummary {
	return inboxv1.InboxCountSummary{Total: total, Unread: unread, Unseen: unseen, Archived: archived, Snoozed: snoozed}
}

// Counts follow every change that shows, hides or alters an item, and only
// the caller's items count.
func TestHubCountsFollowChanges(t *testing.T) {
	h, clk := newTestHub(t, 100)
	now := metav1.NewTime(clk.Now())
	a := delivery("a", "alice", 101, notifyv1.DeliverySucceeded)
	a.Spec.Content.Category = "deployments"
	a.Spec.Content.Type = notifyv1.TypeApproval
	must(t, h.Add(a))
	b := delivery("b", "alice", 102, notifyv1.DeliverySucceeded)
	b.Spec.Content.Category = "security"
	must(t, h.Add(b))
	other := delivery("c", "alice", 103, notifyv1.DeliverySucceeded)
	other.Namespace = "other"
	must(t, h.Add(other))
	must(t, h.Add(delivery("x", "bob", 104, notifyv1.DeliverySucceeded)))
	must(t, h.Add(delivery("p", "alice", 105, notifyv1.DeliveryPending))) // not visible

	c := counted(t, h, "alice", "")
	if c.Name != inboxv1.InboxCountsAll || c.Counts != summary(3, 3, 3, 0, 0) {
		t.Fatalf("all: got %s %+v", c.Name, c.Counts)
	}
	if c.ByNamespace["ns"] != summary(2, 2, 2, 0, 0) || c.ByNamespace["other"] != summary(1, 1, 1, 0, 0) {
		t.Fatalf("byNamespace: %+v", c.ByNamespace)
	}
	if c.ByCategory["deployments"] != summary(1, 1, 1, 0, 0) || c.ByType["approval"] != summary(1, 1, 1, 0, 0) {
		t.Fatalf("byCategory %+v byType %+v", c.ByCategory, c.ByType)
	}

	seen := a.DeepCopy()
	seen.ResourceVersion = "106"
	seen.Status.SeenTime = &now
	must(t, h.Update(seen))
	read := b.DeepCopy()
	read.ResourceVersion = "107"
	read.Status.ReadTime = &now
	read.Status.ArchivedTime = &now
	must(t, h.Update(read))
	c = counted(t, h, "alice", "ns")
	if c.Name != "ns" || c.Counts != summary(1, 1, 0, 1, 0) || c.ByNamespace != nil {
		t.Fatalf("ns: got %s %+v %+v", c.Name, c.Counts, c.ByNamespace)
	}
	if c.ByCategory["security"] != summary(0, 0, 0, 1, 0) {
		t.Fatalf("byCategory: %+v", c.ByCategory)
	}
	if got := counted(t, h, "bob", "").Counts; got != summary(1, 1, 1, 0, 0) {
		t.Fatalf("bob: %+v", got)
	}
	must(t, h.Delete(delivery("x", "bob", 108, notifyv1.DeliverySucceeded)))
	if got := counted(t, h, "bob", ""); got.Counts != summary(0, 0, 0, 0, 0) || len(h.tallies) != 1 {
		t.Fatalf("bob after delete: %+v, %d tallies kept", got.Counts, len(h.tallies))
	}
}

// A snoozed item leaves the list and the counts (but for snoozed), and
// comes back as a new item at its snoozedUntil, by the hub's clock.
func TestHubSnoozedItemComesBackWhenDue(t *testing.T) {
	h, clk := newTestHub(t, 100)
	must(t, h.Add(delivery("a", "alice", 101, notifyv1.DeliverySucceeded)))
	sub, _, err := h.Subscribe("alice", "", ptr(uint64(101)))
	must(t, err)

	snoozed := delivery("a", "alice", 102, notifyv1.DeliverySucceeded)
	snoozed.Status.SnoozedUntil = &metav1.Time{Time: clk.Now().Add(time.Hour)}
	must(t, h.Update(snoozed))
	if ev := <-sub.Events; ev.Type() != EventRemove || ev.ID != 102 {
		t.Fatalf("want a remove at 102, got %s at %d", ev.Type(), ev.ID)
	}
	if items, _, _ := h.List("alice", ""); len(items) != 0 {
		t.Fatalf("a snoozed item must leave the list, got %d", len(items))
	}
	if it, _ := h.Get("alice", "ns", "a"); it == nil || it.Status.SnoozedUntil == nil || h.Delivery("alice", "ns", "a") == nil {
		t.Fatal("a snoozed item stays readable and writable by its owner (to unsnooze it)")
	}
	if it, _ := h.Get("bob", "ns", "a"); it != nil || h.Delivery("bob", "ns", "a") != nil {
		t.Fatal("bob reaches alice's snoozed item")
	}
	if got := counted(t, h, "alice", "").Counts; got != summary(0, 0, 0, 0, 1) {
		t.Fatalf("snoozed counts: %+v", got)
	}
	must(t, h.Add(delivery("b", "alice", 103, notifyv1.DeliverySucceeded)))
	<-sub.Events

	clk.Step(59 * time.Minute)
	if !clk.HasWaiters() {
		t.Fatal("the snooze timer fired early")
	}
	clk.Step(time.Minute)
	ev := <-sub.Events
	if ev.Type() != EventItem || !ev.Woken || ev.ID != 103 || ev.New.ResourceVersion != "102" {
		t.Fatalf("want an item at the head (103) showing the delivery at 102, got %s %+v", ev.Type(), ev)
	}
	if items, _, _ := h.List("alice", ""); len(items) != 2 {
		t.Fatalf("want the item back in the list, got %d", len(items))
	}
	if got := counted(t, h, "alice", "").Counts; got != summary(2, 2, 2, 0, 0) {
		t.Fatalf("counts after waking: %+v", got)
	}
	// A cursor from before the wake replays it.
	_, st, err := h.Subscribe("alice", "", ptr(uint64(102)))
	must(t, err)
	mustEqual(t, ids(st.Replay), []string{"103:item:b", "103:item:a"})
}

// A change to a snoozed delivery re-arms its timer; the old one is
// stopped. A relist arms the timers of the snoozed deliveries it brings.
func TestHubSnoozeFollowsTheLatestDelivery(t *testing.T) {
	h, clk := newTestHub(t, 100)
	d := delivery("a", "alice", 101, notifyv1.DeliverySucceeded)
	d.Status.SnoozedUntil = &metav1.Time{Time: clk.Now().Add(time.Hour)}
	must(t, h.Add(d))
	sub, _, err := h.Subscribe("alice", "", ptr(uint64(101)))
	must(t, err)
	later := d.DeepCopy()
	later.ResourceVersion = "102"
	later.Status.SnoozedUntil = &metav1.Time{Time: clk.Now().Add(2 * time.Hour)}
	must(t, h.Update(later))
	clk.Step(time.Hour)
	if !clk.HasWaiters() {
		t.Fatal("the re-snoozed item's timer fired at the old time")
	}
	clk.Step(time.Hour)
	if ev := <-sub.Events; ev.Type() != EventItem || ev.Name != "a" {
		t.Fatalf("want a back, got %s %s", ev.Type(), ev.Name)
	}

	d2 := delivery("b", "alice", 103, notifyv1.DeliverySucceeded)
	d2.Status.SnoozedUntil = &metav1.Time{Time: clk.Now().Add(time.Minute)}
	must(t, h.Replace([]any{d2}, "110"))
	if got := counted(t, h, "alice", "").Counts; got != summary(0, 0, 0, 0, 1) {
		t.Fatalf("after relist: %+v", got)
	}
	sub, _, err = h.Subscribe("alice", "", ptr(uint64(110)))
	must(t, err)
	clk.Step(time.Minute)
	if ev := <-sub.Events; ev.Type() != EventItem || ev.Name != "b" {
		t.Fatalf("want b back, got %s %s", ev.Type(), ev.Name)
	}
}
