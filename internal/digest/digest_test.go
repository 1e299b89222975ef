package digest

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestFind(t *testing.T) {
	prefs := []notifyv1.DigestPreference{
		{Categories: []string{"deployments"}, Every: &metav1.Duration{Duration: time.Hour}},
		{Types: []notifyv1.NotificationType{notifyv1.TypeInformational}, Schedule: "0 9 * * *"},
	}
	tests := []struct {
		typ      notifyv1.NotificationType
		category string
		ch       notifyv1.Channel
		want     int // index into prefs, -1 for none
	}{
		{notifyv1.TypeWarning, "deployments", notifyv1.ChannelEmail, 0},
		{"", "deployments", notifyv1.ChannelSlack, 0},
		{notifyv1.TypeInformational, "builds", notifyv1.ChannelWhatsApp, 1},
		{notifyv1.TypeWarning, "builds", notifyv1.ChannelEmail, -1},
		{notifyv1.TypeCritical, "deployments", notifyv1.ChannelEmail, -1},
		{notifyv1.TypeApproval, "deployments", notifyv1.ChannelEmail, -1},
		{notifyv1.TypeInformational, "deployments", notifyv1.ChannelInApp, -1},
		{notifyv1.TypeInformational, "deployments", notifyv1.ChannelWebhook, -1},
		{notifyv1.TypeInformational, "deployments", notifyv1.ChannelTelegram, 0},
	}
	for _, tc := range tests {
		got := Find(prefs, tc.typ, tc.category, tc.ch)
		switch {
		case tc.want < 0 && got != nil:
			t.Errorf("Find(%s, %s, %s) = %+v, want none", tc.typ, tc.category, tc.ch, got)
		case tc.want >= 0 && got != &prefs[tc.want]:
			t.Errorf("Find(%s, %s, %s) = %+v, want prefs[%d]", tc.typ, tc.category, tc.ch, got, tc.want)
		}
	}
}

func TestWindowEnd(t *testing.T) {
	hourly := &notifyv1.DigestPreference{Every: &metav1.Duration{Duration: time.Hour}}
	daily9 := &notifyv1.DigestPreference{Schedule: "0 9 * * *"}
	at0230 := &notifyv1.DigestPreference{Schedule: "30 2 * * *"}
	tests := []struct {
		name string
		p    *notifyv1.DigestPreference
		tz   string
		now  string
		want string
	}{
		{"every 1h: on the hour", hourly, "", "2026-11-28T10:09:59Z", "2026-11-28T11:00:00Z"},
		{"every 1h: a boundary starts the next window", hourly, "", "2026-11-28T11:00:00Z", "2026-11-28T12:00:00Z"},
		{"every 1h ignores the timezone's offset", hourly, "Asia/Kolkata", "2026-11-28T10:40:00Z", "2026-11-28T11:00:00Z"},
		{"09:00 Berlin in winter is 08:00Z", daily9, "Europe/Berlin", "2026-03-27T10:00:00Z", "2026-03-28T08:00:00Z"},
		// Clocks go forward on 2026-03-29 at 02:00 CET.
		{"09:00 Berlin the day clocks go forward is 07:00Z", daily9, "Europe/Berlin", "2026-03-28T08:00:00Z", "2026-03-29T07:00:00Z"},
		{"02:30 Berlin does not exist that day: at 03:00 CEST", at0230, "Europe/Berlin", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z"},
		// Clocks go back on 2026-10-25 at 03:00 CEST.
		{"02:30 Berlin happens twice: the first one only", at0230, "Europe/Berlin", "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z"},
		{"after the first 02:30 the next window ends the day after", at0230, "Europe/Berlin", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"},
		{"09:00 Berlin after clocks went back is 08:00Z", daily9, "Europe/Berlin", "2026-10-25T07:00:00Z", "2026-10-25T08:00:00Z"},
		{"schedule without a timezone is UTC", daily9, "", "2026-11-28T09:00:00Z", "2026-11-29T09:00:00Z"},
	}
	for _, tc := range tests {
		got, err := WindowEnd(tc.p, tc.tz, at(t, tc.now))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !got.Equal(at(t, tc.want)) {
			t.Errorf("%s: WindowEnd = %s, want %s", tc.name, got.Format(time.RFC3339), tc.want)
		}
	}
	if _, err := WindowEnd(&notifyv1.DigestPreference{Schedule: "every hour"}, "", time.Now()); err == nil {
		t.Error("a malformed schedule was accepted")
	}
	if _, err := WindowEnd(daily9, "Mars/Olympus", time.Now()); err == nil {
		t.Error("an unknown timezone was accepted")
	}
}

func TestDeliveryName(t *testing.T) {
	end := at(t, "2026-11-28T11:00:00Z")
	a := DeliveryName("alice", notifyv1.ChannelEmail, end, "")
	if a != DeliveryName("alice", notifyv1.ChannelEmail, end, "") {
		t.Fatal("not deterministic")
	}
	if !strings.HasPrefix(a, "digest-alice-email-") {
		t.Errorf("name %q", a)
	}
	for _, b := range []string{
		DeliveryName("alice", notifyv1.ChannelWhatsApp, end, ""),
		DeliveryName("alice", notifyv1.ChannelEmail, end.Add(time.Hour), ""),
		DeliveryName("Alice", notifyv1.ChannelEmail, end, ""),
		// Each controller shard makes its own digest.
		DeliveryName("alice", notifyv1.ChannelEmail, end, "a"),
	} {
		if a == b {
			t.Errorf("%s collides", b)
		}
	}
	if DeliveryName("alice", notifyv1.ChannelEmail, end, "a") == DeliveryName("alice", notifyv1.ChannelEmail, end, "b") {
		t.Error("two shards share a digest")
	}
	if n := DeliveryName(strings.Repeat("x", 253), notifyv1.ChannelTelegram, end, strings.Repeat("s", 63)); len(n) > 253 {
		t.Errorf("%d characters", len(n))
	}
}

func TestContentListsEveryItem(t *testing.T) {
	var items []Item
	for i := range 20 {
		items = append(items, Item{Title: "Deployed web " + string(rune('a'+i)), Message: "rolled out\nsecond line", Category: "deployments",
			Time: at(t, "2026-11-28T10:00:00Z").Add(time.Duration(i) * time.Minute)})
	}
	title, msg := Content(items, "Europe/Berlin")
	if title != "Digest: 20 notifications (deployments)" {
		t.Errorf("title %q", title)
	}
	for i := range 20 {
		if !strings.Contains(msg, "Deployed web "+string(rune('a'+i))) {
			t.Errorf("item %d missing from\n%s", i, msg)
		}
	}
	if !strings.Contains(msg, "1. [2026-11-28 11:00 CET] Deployed web a\n   rolled out") || strings.Contains(msg, "second line") {
		t.Errorf("message:\n%s", msg)
	}
}

// WindowEnd never panics on what a Recipient may hold, and a window it
// gives always ends after now.
func FuzzWindowEnd(f *testing.F) {
	f.Add("0 9 * * 1-5", "Europe/Berlin", int64(1774749600), int64(0))
	f.Add("30 2 * * *", "America/New_York", int64(1793520000), int64(0))
	f.Add("", "", int64(1764590400), int64(3600))
	f.Add("@every 1m", "Asia/Kolkata", int64(0), int64(0))
	f.Fuzz(func(t *testing.T, schedule, tz string, unix, everySeconds int64) {
		p := &notifyv1.DigestPreference{Schedule: schedule}
		if everySeconds != 0 {
			p = &notifyv1.DigestPreference{Every: &metav1.Duration{Duration: time.Duration(everySeconds) * time.Second}}
		}
		now := time.Unix(unix%(1<<40), 0)
		end, err := WindowEnd(p, tz, now)
		if err == nil && !end.After(now) {
			t.Fatalf("WindowEnd(%q, %q, every %ds, %s) = %s, not after now", schedule, tz, everySeconds, now, end)
		}
	})
}
