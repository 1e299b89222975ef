// Package audience turns a Notification's audience into Recipients and
// decides, per recipient and channel, whether and when a delivery is made.
//
// Resolution is confined to one namespace (the tenant) and works on a list
// of Recipients the caller supplies, usually from the informer cache, so it
// does no API calls of its own and is cheap to test.
package audience

import (
	"fmt"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// Resolution is the outcome of resolving an audience.
type Resolution struct {
	// Recipients are distinct and sorted by name, so fan-out order (and
	// therefore anything derived from it) is stable across restarts.
	Recipients []notifyv1.Recipient
	// Unresolved lists audience users that name no Recipient, once each,
	// sorted.
	Unresolved []string
}

// Resolve selects the Recipients of all that match the audience: named
// users, anyone with one of the roles, and anyone the selector matches.
func Resolve(a notifyv1.Audience, all []notifyv1.Recipient) (Resolution, error) {
	var selector labels.Selector
	if a.Selector != nil {
		s, err := metav1.LabelSelectorAsSelector(a.Selector)
		if err != nil {
			return Resolution{}, fmt.Errorf("invalid audience selector: %w", err)
		}
		selector = s
	}
	wantUser := make(map[string]bool, len(a.Users))
	for _, u := range a.Users {
		wantUser[u] = true
	}
	wantRole := make(map[string]bool, len(a.Roles))
	for _, r := range a.Roles {
		wantRole[r] = true
	}

	found := make(map[string]bool, len(a.Users))
	var res Resolution
	seen := make(map[string]bool)
	for i := range all {
		r := &all[i]
		if seen[r.Name] || r.DeletionTimestamp != nil {
			continue
		}
		match := wantUser[r.Name]
		if match {
			found[r.Name] = true
		}
		if !match && len(wantRole) > 0 {
			for _, role := range r.Spec.Roles {
				if wantRole[role] {
					match = true
					break
				}
			}
		}
		if !match && selector != nil && selector.Matches(labels.Set(r.Labels)) {
			match = true
		}
		if match {
			seen[r.Name] = true
			res.Recipients = append(res.Recipients, *r)
		}
	}
	for _, u := range a.Users {
		if !found[u] {
			res.Unresolved = append(res.Unresolved, u)
			found[u] = true // list a user named twice once
		}
	}
	sort.Slice(res.Recipients, func(i, j int) bool { return res.Recipients[i].Name < res.Recipients[j].Name })
	sort.Strings(res.Unresolved)
	return res, nil
}

// IntendedSkip reports whether a skip reflects the recipient's own choice,
// which counts as delivered-as-intended rather than as a problem.
func IntendedSkip(reason string) bool {
	return reason == notifyv1.ReasonOptedOut || reason == notifyv1.ReasonCategoryMuted
}

// Decision says whether a recipient gets a notification on a channel.
type Decision struct {
	// Send is false when the delivery is skipped; Reason and Message say
	// why.
	Send    bool
	Reason  string
	Message string
	// NotBefore, when set, defers the delivery (quiet hours). It is never
	// a reason to drop it.
	NotBefore *time.Time
}

// Decide applies a recipient's address and preferences to one channel. at
// is when the delivery would otherwise go out (now, or deliverAfter).
func Decide(r *notifyv1.Recipient, typ notifyv1.NotificationType, category string, ch notifyv1.Channel, at time.Time) Decision {
	if msg := missingAddress(r, ch); msg != "" {
		return Decision{Reason: notifyv1.ReasonNoAddress, Message: msg}
	}
	prefs := r.Spec.Preferences
	if !typ.OverridesOptOut() {
		for _, c := range prefs.OptOut {
			if c == ch {
				return Decision{Reason: notifyv1.ReasonOptedOut, Message: fmt.Sprintf("%s opted out of %s", r.Name, ch)}
			}
		}
		if category != "" {
			for _, cp := range prefs.Categories {
				if cp.Category != category {
					continue
				}
				allowed := false
				for _, c := range cp.Channels {
					if c == ch {
						allowed = true
					}
				}
				if !allowed {
					return Decision{Reason: notifyv1.ReasonCategoryMuted, Message: fmt.Sprintf("%s does not want %q notifications on %s", r.Name, category, ch)}
				}
			}
		}
	}
	d := Decision{Send: true}
	if qh := prefs.QuietHours; qh != nil && quietHoursApply(qh, typ, ch) {
		if end, ok := QuietUntil(qh, r.Spec.Timezone, at); ok {
			d.NotBefore = &end
			d.Reason = notifyv1.ReasonQuietHours
			d.Message = fmt.Sprintf("held until %s, the end of %s's quiet hours", end.UTC().Format(time.RFC3339), r.Name)
		}
	}
	return d
}

func missingAddress(r *notifyv1.Recipient, ch notifyv1.Channel) string {
	switch ch {
	case notifyv1.ChannelInApp:
		if r.Spec.Username == "" {
			return fmt.Sprintf("recipient %s has no username, so has no inbox", r.Name)
		}
	case notifyv1.ChannelEmail:
		if r.Spec.Email == "" {
			return fmt.Sprintf("recipient %s has no email address", r.Name)
		}
	case notifyv1.ChannelWhatsApp:
		if r.Spec.Phone == "" {
			return fmt.Sprintf("recipient %s has no phone number", r.Name)
		}
	case notifyv1.ChannelTelegram:
		if r.Spec.Telegram == nil {
			return fmt.Sprintf("recipient %s has no telegram chatID", r.Name)
		}
	}
	// Webhook, Slack and Teams deliveries may use the provider's URL,
	// default channel or default room, known only at send time; the
	// sender reports a missing address then.
	return ""
}

func quietHoursApply(qh *notifyv1.QuietHours, typ notifyv1.NotificationType, ch notifyv1.Channel) bool {
	if qh.AllowCritical && typ.OverridesOptOut() {
		return false
	}
	if len(qh.Channels) == 0 {
		return ch != notifyv1.ChannelInApp
	}
	for _, c := range qh.Channels {
		if c == ch {
			return true
		}
	}
	return false
}

// QuietUntil reports whether at falls inside the daily quiet window in the
// given IANA zone (UTC when empty or unknown), and if so when the window
// ends. Windows may wrap past midnight ("22:00"-"07:00").
func QuietUntil(qh *notifyv1.QuietHours, zone string, at time.Time) (time.Time, bool) {
	loc, err := time.LoadLocation(zone)
	if err != nil || zone == "" {
		loc = time.UTC
	}
	start, err1 := parseClock(qh.Start)
	end, err2 := parseClock(qh.End)
	if err1 != nil || err2 != nil || start == end {
		return time.Time{}, false
	}
	inside := func(t time.Time) bool {
		l := t.In(loc)
		m := l.Hour()*60 + l.Minute()
		if start < end {
			return start <= m && m < end
		}
		return m >= start || m < end // the window wraps midnight
	}
	if !inside(at) {
		return time.Time{}, false
	}
	local := at.In(loc)
	y, mo, d := local.Date()
	if start > end && local.Hour()*60+local.Minute() >= start {
		d++ // the window ends tomorrow; time.Date normalises the day
	}
	_, offset := local.Zone()
	// The window ends the first time after at that the clock shows end.
	// time.Date alone gets that wrong on the nights clocks change: a time
	// that occurs twice (clocks going back) may come out as the occurrence
	// before at or the later of two after it, and a time that is skipped
	// (clocks going forward) comes out shifted past the jump.
	var until time.Time
	for range 3 {
		until = time.Date(y, mo, d, end/60, end%60, 0, 0, loc)
		if until.Hour()*60+until.Minute() != end {
			// Skipped: the window ends when the clock jumps past end.
			until, _ = until.ZoneBounds()
		} else if alt := time.Date(y, mo, d, end/60, end%60, 0, 0, time.FixedZone("", offset)).In(loc); alt.Hour()*60+alt.Minute() == end &&
			alt.After(at) && (alt.Before(until) || !until.After(at)) {
			// Repeated: the occurrence at at's UTC offset comes first.
			until = alt
		}
		if !inside(until) {
			break
		}
		// Only a window open all day but for minutes that the clocks
		// skip gets here: it goes on until the next day's end.
		d++
	}
	return until, true
}

func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, err
	}
	return t.Hour()*60 + t.Minute(), nil
}
