package inboxitem_test

import (
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	"github.com/herald-dev/herald/internal/inbox/registry/inboxitem"
)

func TestResolveSnooze(t *testing.T) {
	// 2026-11-29 12:00 UTC is 13:00 in Berlin and 04:00 in Los Angeles.
	until := metav1.NewTime(t0.Add(3 * time.Hour))
	for _, tc := range []struct {
		name    string
		in      inboxv1.SnoozeUntil
		tz      string
		want    time.Time
		wantErr string
	}{
		{name: "until", in: inboxv1.SnoozeUntil{Until: &until}, want: until.Time},
		{name: "1h", in: inboxv1.SnoozeUntil{Preset: "1h"}, want: t0.Add(time.Hour)},
		{name: "30m", in: inboxv1.SnoozeUntil{Preset: "30m"}, want: t0.Add(30 * time.Minute)},
		{name: "tomorrow UTC", in: inboxv1.SnoozeUntil{Preset: "tomorrow"}, want: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)},
		{name: "tomorrow Berlin", in: inboxv1.SnoozeUntil{Preset: "tomorrow"}, tz: "Europe/Berlin", want: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)},
		{name: "tomorrow Los Angeles", in: inboxv1.SnoozeUntil{Preset: "Tomorrow"}, tz: "America/Los_Angeles", want: time.Date(2026, 11, 30, 17, 0, 0, 0, time.UTC)},
		{name: "unknown zone is UTC", in: inboxv1.SnoozeUntil{Preset: "tomorrow"}, tz: "Mars/Olympus", want: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)},
		{name: "both", in: inboxv1.SnoozeUntil{Until: &until, Preset: "1h"}, wantErr: "not both"},
		{name: "neither", in: inboxv1.SnoozeUntil{}, wantErr: "give until or preset"},
		{name: "too short", in: inboxv1.SnoozeUntil{Preset: "10s"}, wantErr: "neither"},
		{name: "too long", in: inboxv1.SnoozeUntil{Preset: "2161h"}, wantErr: "neither"},
		{name: "negative", in: inboxv1.SnoozeUntil{Preset: "-1h"}, wantErr: "neither"},
		{name: "word", in: inboxv1.SnoozeUntil{Preset: "later"}, wantErr: "neither"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := inboxitem.ResolveSnooze(tc.in, t0, tc.tz)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want an error with %q, got %v, %v", tc.wantErr, got, err)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) {
				t.Fatalf("want %v, got %v, %v", tc.want, got, err)
			}
		})
	}
}

// Whatever the preset, a resolved snooze lies ahead of now, at most 90
// days away, or is refused.
func FuzzResolveSnooze(f *testing.F) {
	for _, s := range []string{"1h", "tomorrow", "90m", "2160h", "1e9h", "", "-5m", "1h30m"} {
		f.Add(s, "Europe/Berlin")
	}
	f.Fuzz(func(t *testing.T, preset, tz string) {
		got, err := inboxitem.ResolveSnooze(inboxv1.SnoozeUntil{Preset: preset}, t0, tz)
		if err != nil {
			return
		}
		if !got.After(t0) || got.Sub(t0) > 90*24*time.Hour {
			t.Fatalf("preset %q in %q resolved to %v", preset, tz, got)
		}
	})
}

// A snooze is written to the delivery's status; one into the past, beyond
// expiresAt or more than a year ahead is 422 Invalid with a message that
// says which.
func TestSnoozeIsValidated(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	d := newDelivery()
	d.Spec.ExpiresAt = &metav1.Time{Time: t0.Add(24 * time.Hour)}
	c, d := newClient(t, d)
	items, _ := inboxitem.NewREST(newFakeHub(d), c, clk)
	snooze := func(at time.Time) error {
		_, _, err := items.Update(as("alice"), "d", patchOf(func(it *inboxv1.InboxItem) {
			it.Status.SnoozedUntil = &metav1.Time{Time: at}
		}), nil, nil, false, &metav1.UpdateOptions{})
		return err
	}
	for at, want := range map[time.Time]string{
		t0.Add(-time.Minute):   "cannot snooze into the past",
		t0:                     "cannot snooze into the past",
		t0.Add(25 * time.Hour): "cannot snooze beyond the item's expiresAt 2026-11-30T12:00:00Z",
	} {
		if err := snooze(at); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), want) {
			t.Fatalf("snooze until %v: want 422 %q, got %v", at, want, err)
		}
	}
	if len(c.patches) != 0 {
		t.Fatalf("a refused snooze wrote: %q", c.patches)
	}
	if err := snooze(t0.Add(2*time.Hour + 500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if got := get(t, c).Status.SnoozedUntil; got == nil || !got.Time.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("snoozedUntil: want %v, got %v", t0.Add(2*time.Hour), got)
	}
}

// A snoozed item can be unsnoozed, or snoozed for another time, by its
// owner only.
func TestUnsnooze(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	d := newDelivery()
	d.Status.SnoozedUntil = &metav1.Time{Time: t0.Add(time.Hour)}
	c, d := newClient(t, d)
	items, _ := inboxitem.NewREST(newFakeHub(d), c, clk)
	unsnooze := patchOf(func(it *inboxv1.InboxItem) { it.Status.SnoozedUntil = nil })
	if _, _, err := items.Update(as("bob"), "d", unsnooze, nil, nil, false, &metav1.UpdateOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("bob: want NotFound, got %v", err)
	}
	obj, _, err := items.Update(as("alice"), "d", unsnooze, nil, nil, false, &metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if obj.(*inboxv1.InboxItem).Status.SnoozedUntil != nil || get(t, c).Status.SnoozedUntil != nil {
		t.Fatalf("still snoozed: %+v", get(t, c).Status)
	}
}

// seen is separate from read: reading sees, marking unread keeps it seen,
// and marking unseen clears only the seen mark.
func TestSeenAndRead(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	c, d := newClient(t, newDelivery())
	h := newFakeHub(d)
	items, _ := inboxitem.NewREST(h, c, clk)
	write := func(change func(*inboxv1.InboxItem)) *inboxv1.InboxItem {
		t.Helper()
		obj, _, err := items.Update(as("alice"), "d", patchOf(change), nil, nil, false, &metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		h.cache(get(t, c))
		return obj.(*inboxv1.InboxItem)
	}
	it := write(func(it *inboxv1.InboxItem) { it.Status.Seen = true })
	if !it.Status.Seen || it.Status.Read || get(t, c).Status.SeenTime == nil {
		t.Fatalf("seen: %+v", it.Status)
	}
	clk.Step(time.Minute)
	it = write(markRead)
	if !it.Status.Seen || !it.Status.Read || !it.Status.SeenTime.Time.Equal(t0) {
		t.Fatalf("read keeps the first seenTime: %+v", it.Status)
	}
	it = write(func(it *inboxv1.InboxItem) { it.Status.Read = false })
	if !it.Status.Seen || it.Status.Read || it.Status.ReadTime != nil {
		t.Fatalf("unread stays seen: %+v", it.Status)
	}
	it = write(func(it *inboxv1.InboxItem) { it.Status.Seen = false })
	if it.Status.Seen || get(t, c).Status.SeenTime != nil {
		t.Fatalf("unseen: %+v", it.Status)
	}
	// Read without ever being marked seen: seen, with readTime as seenTime,
	// and only readTime written.
	it = write(markRead)
	if !it.Status.Seen || get(t, c).Status.SeenTime != nil || !it.Status.SeenTime.Equal(it.Status.ReadTime) {
		t.Fatalf("read implies seen: %+v", it.Status)
	}
	it = write(func(it *inboxv1.InboxItem) { it.Status.Archived = true })
	it = write(func(it *inboxv1.InboxItem) { it.Status.Archived = false })
	if it.Status.Archived || get(t, c).Status.ArchivedTime != nil {
		t.Fatalf("unarchive: %+v", it.Status)
	}
}
