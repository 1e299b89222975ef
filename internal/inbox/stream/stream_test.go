package stream_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	clocktesting "k8s.io/utils/clock/testing"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/inbox/hub"
	"github.com/herald-dev/herald/internal/inbox/stream"
	"github.com/herald-dev/herald/internal/inbox/stream/ssetest"
)

// These tests serve the stream from a real hub fed by hand, without a
// control plane; the envtest suite in internal/inbox runs it through
// kube-apiserver's aggregator.

func delivery(name string, rv int, phase notifyv1.DeliveryPhase) *notifyv1.ChannelDelivery {
	return &notifyv1.ChannelDelivery{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", ResourceVersion: strconv.Itoa(rv)},
		Spec: notifyv1.ChannelDeliverySpec{
			Channel:   notifyv1.ChannelInApp,
			Recipient: notifyv1.RecipientSnapshot{Name: "alice", Username: "alice"},
			Content:   notifyv1.RenderedContent{Title: name},
		},
		Status: notifyv1.ChannelDeliveryStatus{Phase: phase},
	}
}

// open serves h's stream to alice from cursor and returns its events.
func open(t *testing.T, h *hub.Hub, cursor string) <-chan ssetest.Event {
	return openURL(t, h, cursor, "")
}

// openURL is open with a query string.
func openURL(t *testing.T, h *hub.Hub, cursor, query string) <-chan ssetest.Event {
	t.Helper()
	handler := stream.NewHandler(h, time.Hour, clocktesting.NewFakeClock(time.Now()), logr.Discard())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := genericapirequest.WithUser(r.Context(), &user.DefaultInfo{Name: "alice"})
		ctx = genericapirequest.WithRequestInfo(ctx, &genericapirequest.RequestInfo{Namespace: "ns"})
		handler.ServeHTTP(w, r.WithContext(ctx))
	}))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); srv.Close() })
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Last-Event-ID", cursor)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan ssetest.Event, 100)
	go func() {
		defer resp.Body.Close()
		defer close(events)
		ssetest.Read(resp.Body, func(ev ssetest.Event) {
			if ev.Type != "" {
				events <- ev
			}
		})
	}()
	return events
}

func next(t *testing.T, events <-chan ssetest.Event) ssetest.Event {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return ssetest.Event{}
}

// An item that leaves the inbox, whether its delivery is deleted or only
// stops being visible, is removed with the resourceVersion of that change,
// in the event's id and in its payload alike.
func TestRemoveCarriesTheResourceVersionOfItsChange(t *testing.T) {
	h := hub.New(100, clocktesting.NewFakeClock(time.Now()), logr.Discard())
	must(t, h.Replace(nil, "100"))
	must(t, h.Add(delivery("hidden", 101, notifyv1.DeliverySucceeded)))
	must(t, h.Add(delivery("deleted", 102, notifyv1.DeliverySucceeded)))
	events := open(t, h, "102")
	must(t, h.Update(delivery("hidden", 103, notifyv1.DeliveryFailed)))
	must(t, h.Delete(delivery("deleted", 104, notifyv1.DeliverySucceeded)))

	for _, want := range []struct{ id, name string }{{"103", "hidden"}, {"104", "deleted"}} {
		ev := next(t, events)
		var it inboxv1.InboxItem
		must(t, json.Unmarshal([]byte(ev.Data), &it))
		if ev.Type != hub.EventRemove || ev.ID != want.id || it.Name != want.name || it.ResourceVersion != want.id {
			t.Fatalf("want remove %s of %s with resourceVersion %s, got %s %s of %s with resourceVersion %s",
				want.id, want.name, want.id, ev.Type, ev.ID, it.Name, it.ResourceVersion)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func unreadOf(t *testing.T, ev ssetest.Event) int32 {
	t.Helper()
	var c inboxv1.InboxCounts
	must(t, json.Unmarshal([]byte(ev.Data), &c))
	if ev.ID != "" || c.Kind != "InboxCounts" || c.Name != "ns" {
		t.Fatalf("a counts event of namespace ns without id, got id %q: %s", ev.ID, ev.Data)
	}
	return c.Counts.Unread
}

// With counts=true the stream follows its first events with the counts,
// and sends them again when, and only when, they change.
func TestCountsEvents(t *testing.T) {
	h := hub.New(100, clocktesting.NewFakeClock(time.Now()), logr.Discard())
	must(t, h.Replace(nil, "100"))
	must(t, h.Add(delivery("a", 101, notifyv1.DeliverySucceeded)))
	events := openURL(t, h, "", "?counts=true")
	if ev := next(t, events); ev.Type != hub.EventReset {
		t.Fatalf("want a reset first, got %s", ev.Type)
	}
	if ev := next(t, events); ev.Type != stream.EventCounts || unreadOf(t, ev) != 1 {
		t.Fatalf("want counts with 1 unread, got %s %s", ev.Type, ev.Data)
	}
	must(t, h.Add(delivery("b", 102, notifyv1.DeliverySucceeded)))
	if ev := next(t, events); ev.Type != hub.EventItem {
		t.Fatalf("want the item, got %s", ev.Type)
	}
	if ev := next(t, events); ev.Type != stream.EventCounts || unreadOf(t, ev) != 2 {
		t.Fatalf("want counts with 2 unread, got %s %s", ev.Type, ev.Data)
	}
	// A change the counts do not see: an update, and no counts after it.
	retitled := delivery("b", 103, notifyv1.DeliverySucceeded)
	retitled.Spec.Content.Title = "new title"
	must(t, h.Update(retitled))
	if ev := next(t, events); ev.Type != hub.EventUpdate {
		t.Fatalf("want the update, got %s", ev.Type)
	}
	read := delivery("a", 104, notifyv1.DeliverySucceeded)
	now := metav1.Now()
	read.Status.ReadTime = &now
	must(t, h.Update(read))
	// The next event is the read, not counts about the retitle.
	for _, want := range []string{hub.EventUpdate, stream.EventCounts} {
		ev := next(t, events)
		if ev.Type != want {
			t.Fatalf("want %s, got %s %s", want, ev.Type, ev.Data)
		}
		if ev.Type == stream.EventCounts && unreadOf(t, ev) != 1 {
			t.Fatalf("want 1 unread, got %s", ev.Data)
		}
	}

	// Without counts=true there are none.
	plain := open(t, h, "100")
	for _, want := range []string{hub.EventItem, hub.EventItem, hub.EventUpdate, hub.EventUpdate} {
		if ev := next(t, plain); ev.Type != want {
			t.Fatalf("plain stream: want %s, got %s", want, ev.Type)
		}
	}
}
