package hub

import (
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// These tests drive the hub the way the reflector does, without a control
// plane: they pin down the resume rules that the envtest suite can only
// sample.

func delivery(name, user string, rv int, phase notifyv1.DeliveryPhase) *notifyv1.ChannelDelivery {
	return &notifyv1.ChannelDelivery{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", ResourceVersion: strconv.Itoa(rv)},
		Spec: notifyv1.ChannelDeliverySpec{
			Channel:   notifyv1.ChannelInApp,
			Recipient: notifyv1.RecipientSnapshot{Name: user, Username: user},
			Content:   notifyv1.RenderedContent{Title: name},
		},
		Status: notifyv1.ChannelDeliveryStatus{Phase: phase},
	}
}

func newTestHub(t *testing.T, history int) (*Hub, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	h := New(history, clk, logr.Discard())
	if err := h.Replace(nil, "100"); err != nil {
		t.Fatal(err)
	}
	return h, clk
}

func ids(evs []*Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, strconv.FormatUint(e.ID, 10)+":"+e.Type()+":"+e.Name)
	}
	return out
}

func mustEqual[T comparable](t *testing.T, got, want []T) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestHubReplaysOnlyTheCallersEventsAfterTheCursor(t *testing.T) {
	h, _ := newTestHub(t, 100)
	must(t, h.Add(delivery("a", "alice", 101, notifyv1.DeliveryPending)))      // not visible: no event
	must(t, h.Update(delivery("a", "alice", 102, notifyv1.DeliverySucceeded))) // item
	must(t, h.Add(delivery("b", "bob", 103, notifyv1.DeliverySucceeded)))      // bob's
	read := delivery("a", "alice", 104, notifyv1.DeliverySucceeded)
	now := metav1.Now()
	read.Status.ReadTime = &now
	must(t, h.Update(read))                                                    // update
	must(t, h.Update(delivery("a", "alice", 105, notifyv1.DeliverySucceeded))) // unread again: update
	must(t, h.Delete(delivery("a", "alice", 106, notifyv1.DeliverySucceeded))) // remove

	for cursor, want := range map[uint64][]string{
		100: {"102:item:a", "104:update:a", "105:update:a", "106:remove:a"},
		102: {"104:update:a", "105:update:a", "106:remove:a"},
		103: {"104:update:a", "105:update:a", "106:remove:a"},
		106: nil,
	} {
		sub, st, err := h.Subscribe("alice", "", &cursor)
		must(t, err)
		if st.HasSnap {
			t.Fatalf("cursor %d: unexpected snapshot", cursor)
		}
		mustEqual(t, ids(st.Replay), want)
		h.Unsubscribe(sub)
	}
	if _, _, err := h.Subscribe("alice", "", ptr(uint64(107))); err == nil {
		t.Fatal("a cursor ahead of the hub must be refused")
	}
}

func TestHubResetsCursorsOlderThanTheRing(t *testing.T) {
	h, _ := newTestHub(t, 2)
	for i := range 4 {
		must(t, h.Add(delivery("x"+strconv.Itoa(i), "alice", 101+i, notifyv1.DeliverySucceeded)))
	}
	// The ring holds 103 and 104; 102 was evicted, so a cursor at 102 can
	// still resume (it needs only what follows), 101 cannot.
	_, st, err := h.Subscribe("alice", "", ptr(uint64(102)))
	must(t, err)
	mustEqual(t, ids(st.Replay), []string{"103:item:x2", "104:item:x3"})
	_, st, err = h.Subscribe("alice", "", ptr(uint64(101)))
	must(t, err)
	if !st.Reset || !st.HasSnap || len(st.Snapshot) != 4 || st.SnapshotID != 104 {
		t.Fatalf("want a reset with 4 items at 104, got %+v", st)
	}
}

func TestHubLiveEventsFollowTheReplayWithoutGapOrRepeat(t *testing.T) {
	h, _ := newTestHub(t, 100)
	must(t, h.Add(delivery("a", "alice", 101, notifyv1.DeliverySucceeded)))
	sub, st, err := h.Subscribe("alice", "", ptr(uint64(100)))
	must(t, err)
	mustEqual(t, ids(st.Replay), []string{"101:item:a"})
	must(t, h.Add(delivery("b", "alice", 102, notifyv1.DeliverySucceeded)))
	must(t, h.Add(delivery("c", "carol", 103, notifyv1.DeliverySucceeded)))
	ev := <-sub.Events
	mustEqual(t, ids([]*Event{ev}), []string{"102:item:b"})
	select {
	case ev := <-sub.Events:
		t.Fatalf("unexpected event %v", ids([]*Event{ev}))
	default:
	}
}

func TestHubRelistRestartsHistoryAndClosesSubscribers(t *testing.T) {
	h, _ := newTestHub(t, 100)
	must(t, h.Add(delivery("a", "alice", 101, notifyv1.DeliverySucceeded)))
	sub, _, err := h.Subscribe("alice", "", ptr(uint64(101)))
	must(t, err)
	must(t, h.Replace([]any{delivery("b", "alice", 150, notifyv1.DeliverySucceeded)}, "160"))
	if _, open := <-sub.Events; open {
		t.Fatal("a relist must close open subscribers")
	}
	_, st, err := h.Subscribe("alice", "", ptr(uint64(101)))
	must(t, err)
	if !st.Reset || st.SnapshotID != 160 || len(st.Snapshot) != 1 || st.Snapshot[0].Name != "b" {
		t.Fatalf("want a reset to the relisted state, got %+v", st)
	}
	// Out-of-order changes also restart the history.
	sub, _, err = h.Subscribe("alice", "", ptr(uint64(160)))
	must(t, err)
	must(t, h.Update(delivery("b", "alice", 155, notifyv1.DeliverySucceeded)))
	if _, open := <-sub.Events; open {
		t.Fatal("an out-of-order change must close open subscribers")
	}
}

func TestHubExpiresItems(t *testing.T) {
	h, clk := newTestHub(t, 100)
	d := delivery("a", "alice", 101, notifyv1.DeliverySucceeded)
	d.Spec.ExpiresAt = &metav1.Time{Time: clk.Now().Add(time.Minute)}
	must(t, h.Add(d))
	sub, _, err := h.Subscribe("alice", "", ptr(uint64(101)))
	must(t, err)
	items, _, _ := h.List("alice", "")
	if len(items) != 1 {
		t.Fatalf("want 1 item before expiry, got %d", len(items))
	}
	clk.Step(time.Minute)
	ev := <-sub.Events
	if ev.Type() != EventRemove || !ev.Expired || ev.ID != 101 {
		t.Fatalf("want an expiry remove at the head, got %+v", ev)
	}
	items, _, _ = h.List("alice", "")
	if len(items) != 0 {
		t.Fatalf("want no items after expiry, got %d", len(items))
	}
	// Already expired when it arrives: never visible.
	late := delivery("b", "alice", 102, notifyv1.DeliverySucceeded)
	late.Spec.ExpiresAt = &metav1.Time{Time: clk.Now().Add(-time.Second)}
	must(t, h.Add(late))
	if it, _ := h.Get("alice", "ns", "b"); it != nil {
		t.Fatal("an expired delivery must not be visible")
	}
}

func TestHubHidesOtherUsersItems(t *testing.T) {
	h, _ := newTestHub(t, 100)
	must(t, h.Add(delivery("a", "alice", 101, notifyv1.DeliverySucceeded)))
	email := delivery("e", "alice", 102, notifyv1.DeliverySucceeded)
	email.Spec.Channel = notifyv1.ChannelEmail
	must(t, h.Add(email))
	if it, _ := h.Get("bob", "ns", "a"); it != nil {
		t.Fatal("bob must not see alice's item")
	}
	if h.Delivery("bob", "ns", "a") != nil {
		t.Fatal("bob must not reach alice's delivery")
	}
	if it, _ := h.Get("alice", "ns", "e"); it != nil {
		t.Fatal("an email delivery is not an inbox item")
	}
	items, rv, _ := h.List("alice", "")
	if len(items) != 1 || rv != 102 {
		t.Fatalf("want alice's one item at 102, got %d at %d", len(items), rv)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

// An event is classified (item, update, remove or nothing to show) once,
// when it is published, and not again by each stream that reads it: the
// comparison of the two views is the costly part of an update.
func TestHubClassifiesAnEventOnce(t *testing.T) {
	h, _ := newTestHub(t, 100)
	must(t, h.Add(delivery("a", "alice", 101, notifyv1.DeliverySucceeded)))
	sub, _, err := h.Subscribe("alice", "", ptr(uint64(101)))
	must(t, err)
	read := delivery("a", "alice", 102, notifyv1.DeliverySucceeded)
	now := metav1.Now()
	read.Status.ReadTime = &now
	must(t, h.Update(read))
	ev := <-sub.Events
	if ev.Type() != EventUpdate {
		t.Fatalf("want an update, got %q", ev.Type())
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = ev.Type() }); allocs != 0 {
		t.Fatalf("Type compares the views again on every call (%v allocations a call)", allocs)
	}
}

// Acknowledging an item is a change its owner's stream shows, as an
// update that carries the acknowledgement.
func TestHubStreamsAnAcknowledgement(t *testing.T) {
	h, _ := newTestHub(t, 100)
	must(t, h.Add(delivery("a", "alice", 101, notifyv1.DeliverySucceeded)))
	sub, _, err := h.Subscribe("alice", "", ptr(uint64(101)))
	must(t, err)
	acked := delivery("a", "alice", 102, notifyv1.DeliverySucceeded)
	now := metav1.Now()
	acked.Status.AcknowledgedTime = &now
	must(t, h.Update(acked))
	ev := <-sub.Events
	if ev.Type() != EventUpdate {
		t.Fatalf("want an update, got %q", ev.Type())
	}
	if it := ev.New; it == nil || !it.Status.Acknowledged || it.Status.AcknowledgedTime == nil || it.Status.Read || ev.Old.Status.Acknowledged {
		t.Fatalf("the update does not carry the acknowledgement: %+v", ev.New)
	}
}
