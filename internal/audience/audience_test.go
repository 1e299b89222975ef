package audience

import (
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

func recipient(name string, roles []string, labels map[string]string) notifyv1.Recipient {
	return notifyv1.Recipient{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       notifyv1.RecipientSpec{Username: name, Email: name + "@example.com", Roles: roles},
	}
}

func names(rs []notifyv1.Recipient) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

func TestResolve(t *testing.T) {
	all := []notifyv1.Recipient{
		recipient("dave", []string{"dev"}, map[string]string{"team": "web"}),
		recipient("alice", []string{"sre", "approvers"}, nil),
		recipient("bob", []string{"sre"}, map[string]string{"team": "platform"}),
		recipient("carol", nil, map[string]string{"team": "platform"}),
	}
	cases := []struct {
		name       string
		audience   notifyv1.Audience
		want       []string
		unresolved []string
	}{
		{"users", notifyv1.Audience{Users: []string{"bob", "alice"}}, []string{"alice", "bob"}, nil},
		{"unknown user", notifyv1.Audience{Users: []string{"alice", "mallory", "eve"}}, []string{"alice"}, []string{"eve", "mallory"}},
		{"users named twice", notifyv1.Audience{Users: []string{"eve", "alice", "eve", "alice"}}, []string{"alice"}, []string{"eve"}},
		{"roles", notifyv1.Audience{Roles: []string{"sre"}}, []string{"alice", "bob"}, nil},
		{"selector", notifyv1.Audience{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "platform"}}}, []string{"bob", "carol"}, nil},
		{"union without duplicates", notifyv1.Audience{
			Users:    []string{"alice", "dave"},
			Roles:    []string{"sre", "approvers"},
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "platform"}},
		}, []string{"alice", "bob", "carol", "dave"}, nil},
		{"nobody", notifyv1.Audience{Roles: []string{"ceo"}}, []string{}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := Resolve(c.audience, all)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(res.Recipients); !reflect.DeepEqual(got, c.want) {
				t.Errorf("recipients = %v, want %v", got, c.want)
			}
			if !reflect.DeepEqual(res.Unresolved, c.unresolved) {
				t.Errorf("unresolved = %v, want %v", res.Unresolved, c.unresolved)
			}
		})
	}
}

func TestResolveBadSelector(t *testing.T) {
	_, err := Resolve(notifyv1.Audience{Selector: &metav1.LabelSelector{
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: "Near"}},
	}}, nil)
	if err == nil {
		t.Fatal("want an error for an invalid selector")
	}
}

func TestDecide(t *testing.T) {
	// 2026-11-29 23:30 in Berlin (UTC+1) is 22:30 UTC.
	lateEvening := time.Date(2026, 11, 29, 22, 30, 0, 0, time.UTC)
	noon := time.Date(2026, 11, 29, 11, 0, 0, 0, time.UTC)
	base := recipient("alice", nil, nil)
	base.Spec.Phone = "+4915112345678"
	base.Spec.Timezone = "Europe/Berlin"
	base.Spec.Preferences = notifyv1.Preferences{
		OptOut: []notifyv1.Channel{notifyv1.ChannelWhatsApp},
		Categories: []notifyv1.CategoryPreference{
			{Category: "deployments", Channels: []notifyv1.Channel{notifyv1.ChannelInApp}},
			{Category: "marketing", Channels: []notifyv1.Channel{}},
		},
		QuietHours: &notifyv1.QuietHours{Start: "22:00", End: "07:00"},
	}
	noPhone := recipient("bob", nil, nil)
	noUser := recipient("carol", nil, nil)
	noUser.Spec.Username = ""

	berlinMorning := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC) // 07:00 in Berlin

	cases := []struct {
		name      string
		r         notifyv1.Recipient
		typ       notifyv1.NotificationType
		category  string
		ch        notifyv1.Channel
		at        time.Time
		send      bool
		reason    string
		notBefore *time.Time
	}{
		{"plain email at noon", base, notifyv1.TypeInformational, "", notifyv1.ChannelEmail, noon, true, "", nil},
		{"opted out of whatsapp", base, notifyv1.TypeInformational, "", notifyv1.ChannelWhatsApp, noon, false, notifyv1.ReasonOptedOut, nil},
		{"critical overrides opt-out", base, notifyv1.TypeCritical, "", notifyv1.ChannelWhatsApp, noon, true, "", nil},
		{"approval overrides opt-out", base, notifyv1.TypeApproval, "", notifyv1.ChannelWhatsApp, noon, true, "", nil},
		{"category limits channels", base, notifyv1.TypeWarning, "deployments", notifyv1.ChannelEmail, noon, false, notifyv1.ReasonCategoryMuted, nil},
		{"category allows its channel", base, notifyv1.TypeWarning, "deployments", notifyv1.ChannelInApp, noon, true, "", nil},
		{"muted category", base, notifyv1.TypeInformational, "marketing", notifyv1.ChannelInApp, noon, false, notifyv1.ReasonCategoryMuted, nil},
		{"critical overrides muted category", base, notifyv1.TypeCritical, "marketing", notifyv1.ChannelInApp, noon, true, "", nil},
		{"quiet hours defer email", base, notifyv1.TypeInformational, "", notifyv1.ChannelEmail, lateEvening, true, notifyv1.ReasonQuietHours, &berlinMorning},
		{"quiet hours spare inApp", base, notifyv1.TypeInformational, "", notifyv1.ChannelInApp, lateEvening, true, "", nil},
		{"quiet hours defer critical too", base, notifyv1.TypeCritical, "", notifyv1.ChannelEmail, lateEvening, true, notifyv1.ReasonQuietHours, &berlinMorning},
		{"no phone", noPhone, notifyv1.TypeCritical, "", notifyv1.ChannelWhatsApp, noon, false, notifyv1.ReasonNoAddress, nil},
		{"no username for inApp", noUser, notifyv1.TypeInformational, "", notifyv1.ChannelInApp, noon, false, notifyv1.ReasonNoAddress, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(&c.r, c.typ, c.category, c.ch, c.at)
			if d.Send != c.send || d.Reason != c.reason {
				t.Fatalf("Decide = send %v reason %q (%s), want send %v reason %q", d.Send, d.Reason, d.Message, c.send, c.reason)
			}
			if (d.NotBefore == nil) != (c.notBefore == nil) || (d.NotBefore != nil && !d.NotBefore.Equal(*c.notBefore)) {
				t.Fatalf("NotBefore = %v, want %v", d.NotBefore, c.notBefore)
			}
		})
	}
}

func TestQuietUntil(t *testing.T) {
	day := &notifyv1.QuietHours{Start: "12:00", End: "13:30"}
	night := &notifyv1.QuietHours{Start: "22:00", End: "07:00"}
	utc := func(h, m int) time.Time { return time.Date(2026, 3, 28, h, m, 0, 0, time.UTC) }
	cases := []struct {
		name  string
		qh    *notifyv1.QuietHours
		zone  string
		at    time.Time
		quiet bool
		until time.Time
	}{
		{"before day window", day, "", utc(11, 59), false, time.Time{}},
		{"in day window", day, "", utc(12, 0), true, utc(13, 30)},
		{"end is exclusive", day, "", utc(13, 30), false, time.Time{}},
		{"night, before midnight", night, "UTC", utc(23, 0), true, time.Date(2026, 3, 29, 7, 0, 0, 0, time.UTC)},
		{"night, after midnight", night, "UTC", utc(3, 0), true, utc(7, 0)},
		{"night, daytime", night, "UTC", utc(15, 0), false, time.Time{}},
		// Berlin moves to summer time on 2026-03-29 at 02:00; 07:00 CEST
		// is 05:00 UTC.
		{"across the DST change", night, "Europe/Berlin", utc(22, 0), true, time.Date(2026, 3, 29, 5, 0, 0, 0, time.UTC)},
		{"unknown zone falls back to UTC", day, "Mars/Olympus", utc(12, 15), true, utc(13, 30)},
		// New York goes back from 02:00 EDT to 01:00 EST on 2026-11-01,
		// so 01:30 comes twice: at 05:30 and 06:30 UTC. The window ends at
		// the first 01:30 after at.
		{"clocks go back, first 01:10", &notifyv1.QuietHours{Start: "22:00", End: "01:30"}, "America/New_York",
			time.Date(2026, 11, 1, 5, 10, 0, 0, time.UTC), true, time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC)},
		{"clocks go back, second 01:10", &notifyv1.QuietHours{Start: "22:00", End: "01:30"}, "America/New_York",
			time.Date(2026, 11, 1, 6, 10, 0, 0, time.UTC), true, time.Date(2026, 11, 1, 6, 30, 0, 0, time.UTC)},
		// Berlin goes back from 03:00 CEST to 02:00 CET on 2026-10-25:
		// 02:30 comes at 00:30 and 01:30 UTC.
		{"clocks go back, first 02:10 in Berlin", &notifyv1.QuietHours{Start: "22:00", End: "02:30"}, "Europe/Berlin",
			time.Date(2026, 10, 25, 0, 10, 0, 0, time.UTC), true, time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC)},
		{"clocks go back, second 02:10 in Berlin", &notifyv1.QuietHours{Start: "22:00", End: "02:30"}, "Europe/Berlin",
			time.Date(2026, 10, 25, 1, 10, 0, 0, time.UTC), true, time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC)},
		// Berlin jumps from 02:00 CET to 03:00 CEST on 2026-03-29: a window
		// ending at 02:30 ends at the jump, 01:00 UTC.
		{"end skipped by the clocks going forward", &notifyv1.QuietHours{Start: "01:00", End: "02:30"}, "Europe/Berlin",
			time.Date(2026, 3, 29, 0, 45, 0, 0, time.UTC), true, time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)},
		// A window open all day but 02:30-02:31, which that night skips:
		// the jump lands inside the window, which goes on a day.
		{"free minute skipped by the clocks going forward", &notifyv1.QuietHours{Start: "02:31", End: "02:30"}, "Europe/Berlin",
			time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC), true, time.Date(2026, 3, 30, 0, 30, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			until, quiet := QuietUntil(c.qh, c.zone, c.at)
			if quiet != c.quiet || !until.Equal(c.until) {
				t.Fatalf("QuietUntil = %v, %v; want %v, %v", until, quiet, c.until, c.quiet)
			}
		})
	}
}
