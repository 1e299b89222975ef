package preferences_test

import (
	"reflect"
	"strings"
	"testing"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/inbox/registry/preferences"
)

func TestValidate(t *testing.T) {
	locked := []string{"security"}
	for _, tc := range []struct {
		name string
		spec inboxv1.InboxPreferencesSpec
		want string // substring of the errors; "" means valid
	}{
		{name: "empty"},
		{name: "full", spec: inboxv1.InboxPreferencesSpec{Timezone: "Europe/Berlin", OptOut: []string{"webhook"},
			Categories: []inboxv1.InboxCategoryPreference{{Category: "deployments", Channels: []string{"inApp"}}},
			QuietHours: &inboxv1.InboxQuietHours{Start: "22:00", End: "07:00", AllowCritical: true}}},
		{name: "bad zone", spec: inboxv1.InboxPreferencesSpec{Timezone: "Moon/Base"}, want: "IANA"},
		{name: "bad channel", spec: inboxv1.InboxPreferencesSpec{OptOut: []string{"fax"}}, want: "Unsupported value"},
		{name: "duplicate channel", spec: inboxv1.InboxPreferencesSpec{OptOut: []string{"email", "email"}}, want: "Duplicate"},
		{name: "locked", spec: inboxv1.InboxPreferencesSpec{Categories: []inboxv1.InboxCategoryPreference{{Category: "security"}}}, want: "locked"},
		{name: "duplicate category", spec: inboxv1.InboxPreferencesSpec{Categories: []inboxv1.InboxCategoryPreference{{Category: "a"}, {Category: "a"}}}, want: "Duplicate"},
		{name: "empty category", spec: inboxv1.InboxPreferencesSpec{Categories: []inboxv1.InboxCategoryPreference{{}}}, want: "1 to 63"},
		{name: "bad clock", spec: inboxv1.InboxPreferencesSpec{QuietHours: &inboxv1.InboxQuietHours{Start: "25:00", End: "07:00"}}, want: "HH:MM"},
		{name: "empty window", spec: inboxv1.InboxPreferencesSpec{QuietHours: &inboxv1.InboxQuietHours{Start: "07:00", End: "07:00"}}, want: "differ"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := preferences.Validate(&tc.spec, locked)
			switch {
			case tc.want == "" && len(errs) > 0:
				t.Fatalf("want valid, got %v", errs)
			case tc.want != "" && !strings.Contains(errs.ToAggregate().Error(), tc.want):
				t.Fatalf("want %q, got %v", tc.want, errs)
			}
		})
	}
}

// Preferences go to the Recipient and come back unchanged.
func TestRoundTrip(t *testing.T) {
	spec := inboxv1.InboxPreferencesSpec{Timezone: "Asia/Tokyo", OptOut: []string{"whatsapp"},
		Categories: []inboxv1.InboxCategoryPreference{{Category: "builds", Channels: []string{}}},
		QuietHours: &inboxv1.InboxQuietHours{Start: "22:00", End: "07:00", Channels: []string{"email"}}}
	prefs, tz := preferences.ToRecipient(spec)
	if prefs.Categories[0].Channels == nil || prefs.OptOut[0] != notifyv1.ChannelWhatsApp {
		t.Fatalf("a muted category must keep an empty, not absent, channel list: %+v", prefs)
	}
	back := preferences.FromRecipient(notifyv1.RecipientSpec{Timezone: tz, Preferences: prefs})
	if !reflect.DeepEqual(back, spec) {
		t.Fatalf("round trip: want %+v, got %+v", spec, back)
	}
}

func TestParseLocked(t *testing.T) {
	if got := preferences.ParseLocked(" security,,compliance, security "); !reflect.DeepEqual(got, []string{"compliance", "security"}) {
		t.Fatalf("got %q", got)
	}
	if got := preferences.ParseLocked(""); got != nil {
		t.Fatalf("got %q", got)
	}
}
