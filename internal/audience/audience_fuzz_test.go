package audience

import (
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// Resolve matches by name, role and label, so the fuzzer builds recipients
// and audiences from small pools where collisions are likely: duplicate
// names, shared roles, users that exist only as deleted recipients.
var (
	fuzzNames   = []string{"alice", "bob", "carol", "dave", "eve", "mallory", "", "Alice"}
	fuzzRoles   = []string{"sre", "dev", "approvers", "ceo"}
	fuzzTeams   = []string{"", "web", "platform", "sre"}
	fuzzEnvs    = []string{"", "prod", "dev", "prod,dev"}
	deletedAt   = metav1.NewTime(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	badOperator = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: "Near"}}}
)

// fuzzRecipients turns two bytes into each recipient: a name, deletion,
// a team and an env label, and a set of roles.
func fuzzRecipients(data []byte) []notifyv1.Recipient {
	var out []notifyv1.Recipient
	for i := 0; i+1 < len(data) && len(out) < 32; i += 2 {
		a, b := data[i], data[i+1]
		r := notifyv1.Recipient{ObjectMeta: metav1.ObjectMeta{Name: fuzzNames[a%8]}}
		r.Spec.Username = r.Name
		if a&0x08 != 0 {
			r.DeletionTimestamp = &deletedAt
		}
		team, env := fuzzTeams[a>>4&3], fuzzEnvs[a>>6]
		if team != "" || env != "" {
			r.Labels = map[string]string{}
			if team != "" {
				r.Labels["team"] = team
			}
			if env != "" {
				r.Labels["env"] = env
			}
		}
		for j, role := range fuzzRoles {
			if b&(1<<j) != 0 {
				r.Spec.Roles = append(r.Spec.Roles, role)
			}
		}
		if b&0x10 != 0 {
			r.Spec.Email = r.Name + "@example.com" // tells same-named recipients apart
		}
		out = append(out, r)
	}
	return out
}

// FuzzResolve checks Resolve against its definition: a recipient is in the
// audience when it is not being deleted and is named in users, has one of
// the roles or matches the selector. The result holds each such name once,
// sorted, as the first matching recipient of that name; Unresolved holds
// each user that names no live recipient, once, sorted; an invalid
// selector is an error; the input is left alone, and its order does not
// matter.
func FuzzResolve(f *testing.F) {
	// The recipients of TestResolve: dave (dev, team=web), alice (sre,
	// approvers), bob (sre, team=platform), carol (team=platform).
	table := []byte{3 | 1<<4, 0b0010, 0, 0b0101, 1 | 2<<4, 0b0001, 2 | 2<<4, 0}
	for _, c := range []struct {
		users, roles []byte
		selector     string
		useSelector  bool
	}{
		{users: []byte{1, 0}},
		{users: []byte{0, 5, 4}},
		{roles: []byte{0}},
		{selector: "team=platform", useSelector: true},
		{users: []byte{0, 3}, roles: []byte{0, 2}, selector: "team=platform", useSelector: true},
		{roles: []byte{3}},
		{selector: "team in (web,platform),!env", useSelector: true},
		{selector: "env notin (prod),team", useSelector: true},
		{selector: "", useSelector: true}, // matches everyone
		{selector: "team=", useSelector: true},
		{selector: "===", useSelector: true}, // unparsable: an invalid selector
		{users: []byte{4, 4, 0, 0, 6, 7}},    // duplicates, "", a case variant
	} {
		f.Add(table, c.users, c.roles, c.selector, c.useSelector)
	}
	// Deleted and duplicate recipients.
	f.Add([]byte{0 | 0x08, 0b0001, 0, 0b0010, 4 | 0x08, 0, 1, 0b0001, 1 | 0x10, 0b10011}, []byte{0, 4, 1}, []byte{0}, "", false)
	f.Add([]byte{}, []byte{0}, []byte{}, "team", true)

	f.Fuzz(func(t *testing.T, recipients, users, roles []byte, selector string, useSelector bool) {
		all := fuzzRecipients(recipients)
		var a notifyv1.Audience
		for _, u := range users {
			a.Users = append(a.Users, fuzzNames[u%8])
		}
		for _, r := range roles {
			a.Roles = append(a.Roles, fuzzRoles[r%4])
		}
		if useSelector {
			sel, err := metav1.ParseToLabelSelector(selector)
			if err != nil {
				sel = badOperator
			}
			a.Selector = sel
		}
		before := fuzzRecipients(recipients)

		res, err := Resolve(a, all)
		if !reflect.DeepEqual(all, before) {
			t.Fatal("Resolve changed its input")
		}

		var sel labels.Selector
		if a.Selector != nil {
			s, selErr := metav1.LabelSelectorAsSelector(a.Selector)
			if selErr != nil {
				if err == nil {
					t.Fatalf("Resolve with invalid selector %v: no error", a.Selector)
				}
				return
			}
			sel = s
		}
		if err != nil {
			t.Fatalf("Resolve(%+v): %v", a, err)
		}

		matches := func(r *notifyv1.Recipient) bool {
			if r.DeletionTimestamp != nil {
				return false
			}
			if slices.Contains(a.Users, r.Name) {
				return true
			}
			for _, role := range r.Spec.Roles {
				if slices.Contains(a.Roles, role) {
					return true
				}
			}
			return sel != nil && sel.Matches(labels.Set(r.Labels))
		}
		want := map[string]*notifyv1.Recipient{} // the first match of each name
		live := map[string]bool{}
		for i := range all {
			r := &all[i]
			if r.DeletionTimestamp == nil {
				live[r.Name] = true
			}
			if want[r.Name] == nil && matches(r) {
				want[r.Name] = r
			}
		}

		var names []string
		for i := range res.Recipients {
			names = append(names, res.Recipients[i].Name)
		}
		if !sort.StringsAreSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
			t.Fatalf("recipients %q are not distinct and sorted", names)
		}
		if len(names) != len(want) {
			t.Fatalf("recipients %q, want one for each of %v", names, keys(want))
		}
		for i := range res.Recipients {
			got := &res.Recipients[i]
			if w := want[got.Name]; w == nil || !reflect.DeepEqual(got, w) {
				t.Fatalf("resolved %+v, want the first matching recipient named %q: %+v", got, got.Name, w)
			}
		}

		var unresolved []string
		for _, u := range a.Users {
			if !live[u] && !slices.Contains(unresolved, u) {
				unresolved = append(unresolved, u)
			}
		}
		sort.Strings(unresolved)
		if !slices.Equal(res.Unresolved, unresolved) {
			t.Fatalf("unresolved %q for users %q, want %q", res.Unresolved, a.Users, unresolved)
		}

		// The informer cache lists in no particular order; with unique
		// names the order must not matter.
		if len(live) == len(all) {
			reversed := slices.Clone(all)
			slices.Reverse(reversed)
			if again, _ := Resolve(a, reversed); !reflect.DeepEqual(again, res) {
				t.Fatalf("Resolve depends on the order of recipients: %+v, reversed %+v", res, again)
			}
		}
	})
}

func keys(m map[string]*notifyv1.Recipient) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// decideSeed names FuzzDecide's arguments, for writing seeds.
type decideSeed struct {
	addresses            uint8 // bits: username, email, phone
	cat1                 string
	cat1Channels         uint8
	cat2                 string // a category muted on every channel
	start, end           string
	quietChannels        uint8
	allowCritical, quiet bool
	zone                 string
	optOut               uint8
	category             string
	typ, ch              uint8 // indexes into fuzzTypes, fuzzChannels
	at                   int64
	nearJump             int16 // minutes from the zone's next clock change, if not 0
}

var (
	fuzzChannels = []notifyv1.Channel{notifyv1.ChannelInApp, notifyv1.ChannelEmail, notifyv1.ChannelWhatsApp, notifyv1.ChannelWebhook}
	fuzzTypes    = []notifyv1.NotificationType{notifyv1.TypeInformational, notifyv1.TypeWarning, notifyv1.TypeCritical, notifyv1.TypeApproval, ""}
)

func fuzzChannelSet(bits uint8) []notifyv1.Channel {
	var out []notifyv1.Channel
	for i, ch := range fuzzChannels {
		if bits&(1<<i) != 0 {
			out = append(out, ch)
		}
	}
	return out
}

// FuzzDecide checks Decide against its definition, in order: no address
// for the channel skips (whatever the type); then, unless the type
// overrides opt-outs, an opted-out channel skips, and so does a category
// whose preference does not list the channel; otherwise the delivery is
// sent, and held while the recipient's quiet hours apply, until the first
// minute after at that lies outside the window on the recipient's clock.
// So a hold is never in the past, never longer than two days (a day and
// a DST change, or two when the clocks skip the minutes a window leaves
// free), and deciding again when it ends holds no longer.
func FuzzDecide(f *testing.F) {
	lateEvening := time.Date(2026, 11, 29, 22, 30, 0, 0, time.UTC).Unix()
	noon := time.Date(2026, 11, 29, 11, 0, 0, 0, time.UTC).Unix()
	add := func(s decideSeed) {
		f.Add(s.addresses, s.cat1, s.cat1Channels, s.cat2, s.start, s.end, s.quietChannels, s.allowCritical, s.quiet, s.zone, s.optOut, s.category, s.typ<<4|s.ch, s.at, s.nearJump)
	}
	// TestDecide's cases. alice: Berlin, opted out of WhatsApp,
	// deployments only in the app, marketing nowhere, quiet 22:00-07:00.
	for _, c := range []struct {
		typ, ch  uint8
		category string
		at       int64
	}{
		{0, 1, "", noon},
		{0, 2, "", noon},
		{2, 2, "", noon},
		{3, 2, "", noon},
		{1, 1, "deployments", noon},
		{1, 0, "deployments", noon},
		{0, 0, "marketing", noon},
		{2, 0, "marketing", noon},
		{0, 1, "", lateEvening},
		{0, 0, "", lateEvening},
		{2, 1, "", lateEvening},
		{0, 3, "", lateEvening},
		{4, 3, "marketing", lateEvening},
	} {
		add(decideSeed{
			addresses: 0b111, cat1: "deployments", cat1Channels: 0b0001, cat2: "marketing",
			start: "22:00", end: "07:00", quiet: true, zone: "Europe/Berlin", optOut: 1 << 2,
			category: c.category, typ: c.typ, ch: c.ch, at: c.at,
		})
	}
	// No phone, no username; TestQuietUntil's windows; clock changes;
	// malformed settings.
	day := func(h, m int) int64 { return time.Date(2026, 3, 28, h, m, 0, 0, time.UTC).Unix() }
	for _, s := range []decideSeed{
		{addresses: 0b011, typ: 2, ch: 2, at: noon},
		{addresses: 0b110, at: noon},
		{addresses: 0b111, start: "12:00", end: "13:30", quiet: true, ch: 1, at: day(11, 59)},
		{addresses: 0b111, start: "12:00", end: "13:30", quiet: true, ch: 1, at: day(12, 0)},
		{addresses: 0b111, start: "12:00", end: "13:30", quiet: true, ch: 1, at: day(13, 30)},
		{addresses: 0b111, start: "22:00", end: "07:00", quiet: true, zone: "UTC", ch: 1, at: day(23, 0)},
		{addresses: 0b111, start: "22:00", end: "07:00", quiet: true, zone: "UTC", ch: 1, at: day(3, 0)},
		{addresses: 0b111, start: "22:00", end: "07:00", quiet: true, zone: "Europe/Berlin", ch: 1, at: day(22, 0)},
		{addresses: 0b111, start: "12:00", end: "13:30", quiet: true, zone: "Mars/Olympus", ch: 1, at: day(12, 15)},
		{addresses: 0b111, start: "22:00", end: "01:30", quiet: true, zone: "America/New_York", quietChannels: 0b0110, allowCritical: true, typ: 2, ch: 1,
			at: time.Date(2026, 11, 1, 4, 10, 0, 0, time.UTC).Unix()},
		{addresses: 0b111, start: "22:00", end: "01:30", quiet: true, zone: "America/New_York", quietChannels: 0b0110, allowCritical: true, typ: 1, ch: 2,
			at: time.Date(2026, 11, 1, 4, 10, 0, 0, time.UTC).Unix()},
		{addresses: 0b111, start: "01:00", end: "02:30", quiet: true, zone: "Europe/London", ch: 1,
			at: time.Date(2026, 3, 29, 1, 10, 0, 0, time.UTC).Unix()},
		// The nights clocks change (see TestQuietUntil).
		{addresses: 0b111, start: "22:00", end: "01:30", quiet: true, zone: "America/New_York", ch: 1,
			at: time.Date(2026, 11, 1, 6, 10, 0, 0, time.UTC).Unix()},
		{addresses: 0b111, start: "22:00", end: "02:30", quiet: true, zone: "Europe/Berlin", ch: 1,
			at: time.Date(2026, 10, 25, 0, 10, 0, 0, time.UTC).Unix()},
		{addresses: 0b111, start: "01:00", end: "02:30", quiet: true, zone: "Europe/Berlin", ch: 1,
			at: time.Date(2026, 3, 29, 0, 45, 0, 0, time.UTC).Unix()},
		{addresses: 0b111, start: "02:31", end: "02:30", quiet: true, zone: "Europe/Berlin", ch: 1,
			at: time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC).Unix()},
		{addresses: 0b111, start: "22:00", end: "03:00", quiet: true, zone: "America/Santiago", ch: 1, at: noon, nearJump: -90},
		{addresses: 0b111, start: "01:30", end: "02:30", quiet: true, zone: "Australia/Lord_Howe", ch: 2, at: noon, nearJump: 20},
		{addresses: 0b111, start: "23:59", end: "00:00", quiet: true, zone: "Australia/Lord_Howe", ch: 1, at: noon},
		{addresses: 0b111, start: "00:00", end: "23:59", quiet: true, zone: "Asia/Kathmandu", ch: 3, at: noon},
		{addresses: 0b111, start: "7:00", end: "25:00", quiet: true, ch: 1, at: noon},
		{addresses: 0b111, start: "10:00", end: "10:00", quiet: true, ch: 1, at: noon},
	} {
		add(s)
	}

	f.Fuzz(func(t *testing.T, addresses uint8, cat1 string, cat1Channels uint8, cat2, start, end string, quietChannels uint8, allowCritical, quiet bool, zone string, optOut uint8, category string, typeAndChannel uint8, atUnix int64, nearJump int16) {
		r := recipient("alice", nil, nil)
		if addresses&1 == 0 {
			r.Spec.Username = ""
		}
		if addresses&2 == 0 {
			r.Spec.Email = ""
		}
		if addresses&4 != 0 {
			r.Spec.Phone = "+4915112345678"
		}
		r.Spec.Timezone = zone
		p := &r.Spec.Preferences
		p.OptOut = fuzzChannelSet(optOut)
		p.Categories = []notifyv1.CategoryPreference{
			{Category: cat1, Channels: fuzzChannelSet(cat1Channels)},
			{Category: cat2, Channels: []notifyv1.Channel{}},
		}
		if quiet {
			p.QuietHours = &notifyv1.QuietHours{Start: start, End: end, Channels: fuzzChannelSet(quietChannels), AllowCritical: allowCritical}
		}
		typ := fuzzTypes[int(typeAndChannel>>4)%len(fuzzTypes)]
		ch := fuzzChannels[typeAndChannel&3]
		// 1980 to 2100: zones with offsets in whole minutes.
		const from, span = 315532800, 120 * 365 * 24 * 3600
		at := time.Unix(from+((atUnix-from)%span+span)%span, 0).UTC()
		if nearJump != 0 {
			// Clock changes are where quiet hours go wrong, and a few
			// hours a year: move at to up to a day around the next one.
			if loc, err := time.LoadLocation(zone); err == nil {
				if _, next := at.In(loc).ZoneBounds(); !next.IsZero() {
					at = next.Add(time.Duration(nearJump%(24*60)) * time.Minute).UTC()
				}
			}
		}

		before := r.DeepCopy()
		d := Decide(&r, typ, category, ch, at)
		if !reflect.DeepEqual(&r, before) {
			t.Fatal("Decide changed the recipient")
		}
		if (d.Reason == "") != (d.Message == "") {
			t.Fatalf("Decide = %+v: a reason needs a message and a message a reason", d)
		}
		if !d.Send && d.NotBefore != nil {
			t.Fatalf("Decide = %+v: skipped but held", d)
		}

		missing := ch == notifyv1.ChannelInApp && r.Spec.Username == "" ||
			ch == notifyv1.ChannelEmail && r.Spec.Email == "" ||
			ch == notifyv1.ChannelWhatsApp && r.Spec.Phone == ""
		muted := false
		if category != "" {
			for _, cp := range p.Categories {
				if cp.Category == category && !slices.Contains(cp.Channels, ch) {
					muted = true
				}
			}
		}
		var wantReason string
		switch {
		case missing:
			wantReason = notifyv1.ReasonNoAddress
		case !typ.OverridesOptOut() && slices.Contains(p.OptOut, ch):
			wantReason = notifyv1.ReasonOptedOut
		case !typ.OverridesOptOut() && muted:
			wantReason = notifyv1.ReasonCategoryMuted
		}
		if wantReason != "" {
			if d.Send || d.Reason != wantReason {
				t.Fatalf("Decide(%s, %s, category %q) = %+v, want skipped: %s", typ, ch, category, d, wantReason)
			}
			return
		}
		if !d.Send {
			t.Fatalf("Decide(%s, %s, category %q) = %+v, want sent", typ, ch, category, d)
		}

		applies := quiet && !(allowCritical && typ.OverridesOptOut()) &&
			(len(p.QuietHours.Channels) == 0 && ch != notifyv1.ChannelInApp || slices.Contains(p.QuietHours.Channels, ch))
		var wantHold *time.Time
		if applies {
			wantHold = quietEnd(t, start, end, zone, at)
		}
		switch {
		case wantHold == nil && d.NotBefore == nil:
			if d.Reason != "" {
				t.Fatalf("Decide = %+v, want no reason when sent at once", d)
			}
			return
		case wantHold == nil || d.NotBefore == nil || !d.NotBefore.Equal(*wantHold):
			t.Fatalf("Decide(%s, %s) at %v (%s, quiet %s-%s) holds until %v, want %v", typ, ch, at, zone, start, end, d.NotBefore, wantHold)
		case d.Reason != notifyv1.ReasonQuietHours:
			t.Fatalf("Decide = %+v, want reason %s", d, notifyv1.ReasonQuietHours)
		case !d.NotBefore.After(at) || d.NotBefore.Sub(at) > 50*time.Hour:
			t.Fatalf("Decide at %v holds until %v", at, d.NotBefore)
		}
		if again := Decide(&r, typ, category, ch, *d.NotBefore); !again.Send || again.NotBefore != nil {
			t.Fatalf("Decide at %v holds until %v, but deciding then gives %+v", at, d.NotBefore, again)
		}
	})
}

// quietEnd is when a quiet window that contains at ends: the first minute
// after at whose time of day, on the recipient's clock, is outside the
// window. It is found by walking minute by minute, which is slow but
// cannot get clock changes wrong. nil means at is not inside a window.
func quietEnd(t *testing.T, start, end, zone string, at time.Time) *time.Time {
	s, err1 := time.Parse("15:04", start)
	e, err2 := time.Parse("15:04", end)
	if err1 != nil || err2 != nil || s.Equal(e) {
		return nil
	}
	loc, err := time.LoadLocation(zone)
	if err != nil || zone == "" {
		loc = time.UTC
	}
	from, to := s.Hour()*60+s.Minute(), e.Hour()*60+e.Minute()
	inside := func(at time.Time) bool {
		l := at.In(loc)
		m := l.Hour()*60 + l.Minute()
		if from < to {
			return from <= m && m < to
		}
		return m >= from || m < to
	}
	if !inside(at) {
		return nil
	}
	local := at.In(loc)
	minute := at.Add(-time.Duration(local.Second())*time.Second - time.Duration(local.Nanosecond()))
	for range 50 * 60 {
		minute = minute.Add(time.Minute)
		if !inside(minute) {
			return &minute
		}
	}
	t.Fatalf("quiet %s-%s in %s never ends after %v", start, end, zone, at)
	return nil
}
