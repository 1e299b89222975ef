package inboxitem

import (
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
)

// Snooze limits: a preset duration is at least a minute and at most 90
// days; an item without expiresAt can be snoozed for at most a year.
const (
	minSnooze       = time.Minute
	maxSnoozePreset = 90 * 24 * time.Hour
	maxSnooze       = 365 * 24 * time.Hour
)

// PresetTomorrow snoozes until 09:00 on the next day in the recipient's
// timezone.
const PresetTomorrow = "tomorrow"

// tomorrowHour is the hour "tomorrow" means.
const tomorrowHour = 9

// ResolveSnooze turns a SnoozeUntil into a time: until as given, or a
// preset ("tomorrow", or a duration such as "1h") from now. timezone is the
// recipient's IANA zone; empty or unknown means UTC.
func ResolveSnooze(s inboxv1.SnoozeUntil, now time.Time, timezone string) (time.Time, error) {
	switch {
	case s.Until != nil && s.Preset != "":
		return time.Time{}, fmt.Errorf("give either until or preset, not both")
	case s.Until != nil:
		return s.Until.Time, nil
	case s.Preset == "":
		return time.Time{}, fmt.Errorf("give until or preset")
	case strings.EqualFold(s.Preset, PresetTomorrow):
		loc := time.UTC
		if timezone != "" {
			if l, err := time.LoadLocation(timezone); err == nil {
				loc = l
			}
		}
		local := now.In(loc)
		return time.Date(local.Year(), local.Month(), local.Day()+1, tomorrowHour, 0, 0, 0, loc), nil
	}
	d, err := time.ParseDuration(s.Preset)
	if err != nil || d < minSnooze || d > maxSnoozePreset {
		return time.Time{}, fmt.Errorf("preset %q is neither %q nor a duration between 1m and 2160h (90 days), such as \"1h\"", s.Preset, PresetTomorrow)
	}
	return now.Add(d), nil
}

// checkSnooze refuses a snooze into the past, beyond the item's expiresAt,
// or more than a year ahead (422). Clearing a snooze (nil) is always fine.
func checkSnooze(it *inboxv1.InboxItem, until *metav1.Time, now time.Time) error {
	if until == nil {
		return nil
	}
	path := field.NewPath("status", "snoozedUntil")
	value := until.UTC().Format(time.RFC3339)
	var msg string
	switch {
	case !until.After(now):
		msg = fmt.Sprintf("cannot snooze into the past (now is %s)", now.UTC().Format(time.RFC3339))
	case it.Spec.ExpiresAt != nil && until.After(it.Spec.ExpiresAt.Time):
		msg = fmt.Sprintf("cannot snooze beyond the item's expiresAt %s", it.Spec.ExpiresAt.UTC().Format(time.RFC3339))
	case until.Sub(now) > maxSnooze:
		msg = "cannot snooze for more than a year"
	default:
		return nil
	}
	return apierrors.NewInvalid(inboxv1.GroupVersion.WithKind("InboxItem").GroupKind(), it.Name,
		field.ErrorList{field.Invalid(path, value, msg)})
}
