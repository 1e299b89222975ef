// Package schedule is the clock arithmetic of NotificationSchedules: parsing
// a cron expression in a time zone, finding the next run, and deciding what
// is due at a given instant after an outage or a suspension. It has no
// Kubernetes dependencies and takes every time as an argument, so that it
// is tested with fixed instants instead of waiting.
//
// Semantics follow Kubernetes CronJobs (robfig/cron expressions, at most
// one catch-up run, startingDeadlineSeconds), with one deliberate
// difference at daylight-saving changes, taken from Vixie/Debian cron: a
// job at a fixed local time (neither its minute nor its hour field is a
// wildcard) runs once per day even when that time does not exist or exists
// twice. See Schedule.Next.
package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"
	// The controller image may have no zoneinfo; embedding it (about
	// 450 KB) makes every IANA zone resolve the same everywhere.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"
)

// MinInterval is the shortest "@every" interval accepted. Notifications
// created by a schedule are named after the minute of their run, so two
// runs within one minute could not both exist.
const MinInterval = time.Minute

// Schedule is a parsed cron expression in a time zone.
type Schedule struct {
	spec cron.Schedule
	// fixed is the spec in its zone when the expression names a fixed
	// local time of day, nil otherwise (wildcards, @hourly, @every).
	fixed *cron.SpecSchedule
	loc   *time.Location
}

// Parse parses a five-field cron expression or a descriptor (@daily,
// @every 1h, ...) in the IANA zone timeZone ("" means UTC).
func Parse(expr, timeZone string) (*Schedule, error) {
	expr = strings.TrimSpace(expr)
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		return nil, errors.New("a time zone in the schedule is not supported: set spec.timeZone instead")
	}
	loc := time.UTC
	if timeZone != "" {
		// "Local" would make runs depend on where the controller runs.
		if timeZone == "Local" {
			return nil, fmt.Errorf("time zone %q is not an IANA time zone", timeZone)
		}
		l, err := time.LoadLocation(timeZone)
		if err != nil {
			return nil, fmt.Errorf("time zone %q is not an IANA time zone", timeZone)
		}
		loc = l
	}
	spec, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", expr, err)
	}
	s := &Schedule{spec: spec, loc: loc}
	switch sp := spec.(type) {
	case *cron.SpecSchedule:
		// The parser puts schedules without a zone in time.Local.
		sp.Location = loc
		if fixedTimeOfDay(expr) {
			s.fixed = sp
		}
	case cron.ConstantDelaySchedule:
		if sp.Delay < MinInterval {
			return nil, fmt.Errorf("schedule %q: @every must be at least %s", expr, MinInterval)
		}
	}
	return s, nil
}

// fixedTimeOfDay reports whether expr names a fixed local time of day: a
// descriptor that runs at midnight, or five fields whose minute and hour
// contain no '*'. Those are the jobs Vixie cron shields from DST changes.
func fixedTimeOfDay(expr string) bool {
	switch expr {
	case "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight":
		return true
	}
	if strings.HasPrefix(expr, "@") {
		return false
	}
	f := strings.Fields(expr)
	return len(f) == 5 && !strings.Contains(f[0], "*") && !strings.Contains(f[1], "*")
}

// Location is the schedule's time zone.
func (s *Schedule) Location() *time.Location { return s.loc }

// Next returns the first run strictly after t, or the zero time when there
// is none within five years.
//
// Runs at a fixed local time of day behave like Vixie cron at DST changes:
//   - spring forward: a run whose local time is skipped (02:30 on the day
//     clocks jump from 02:00 to 03:00) happens once, at the first instant
//     after the jump (03:00 new time);
//   - fall back: a run whose local time occurs twice (02:30 on the day
//     clocks go back from 03:00 to 02:00) happens once, the first time.
//
// Everything else (wildcard minutes or hours, @hourly, @every) follows the
// wall clock as robfig/cron does: runs in a skipped hour do not exist, runs
// in a repeated hour happen in both passes.
func (s *Schedule) Next(t time.Time) time.Time {
	if s.fixed == nil {
		return s.spec.Next(t)
	}
	cur := t
	// Each pass skips one repeated instant; a handful is plenty.
	for range 8 {
		n := s.spec.Next(cur)
		if n.IsZero() {
			return n
		}
		if g := s.gapRun(cur, n); !g.IsZero() {
			return g
		}
		if !s.repeated(n) {
			return n
		}
		cur = n
	}
	return time.Time{}
}

// gapRun looks for a spring-forward change in (after, before] whose skipped
// local times include a run, and returns the instant of that change.
func (s *Schedule) gapRun(after, before time.Time) time.Time {
	x := after.In(s.loc)
	for {
		_, end := x.ZoneBounds()
		if end.IsZero() || end.After(before) {
			return time.Time{}
		}
		_, off0 := end.Add(-time.Nanosecond).Zone()
		_, off1 := end.Zone()
		if off1 > off0 && end.After(after) {
			// The skipped local times are those from the change, read
			// in the old offset, for the length of the jump.
			old := *s.fixed
			old.Location = time.FixedZone("", off0)
			gap := time.Duration(off1-off0) * time.Second
			if m := old.Next(end.Add(-time.Nanosecond)); !m.IsZero() && m.Before(end.Add(gap)) {
				return end
			}
		}
		x = end.In(s.loc)
	}
}

// repeated reports whether t is in the second pass of a fall-back change:
// its local time already happened an hour (the overlap) earlier.
func (s *Schedule) repeated(t time.Time) bool {
	start, _ := t.In(s.loc).ZoneBounds()
	if start.IsZero() {
		return false
	}
	_, off0 := start.Add(-time.Nanosecond).Zone()
	_, off1 := start.Zone()
	overlap := time.Duration(off0-off1) * time.Second
	return overlap > 0 && t.Sub(start) < overlap
}

// Decision is what a schedule does at one instant.
type Decision struct {
	// Run is the one run to make now, or zero. It is the newest due run;
	// older due runs are never made up (no bursts).
	Run time.Time
	// Missed counts due runs that get no Notification: older than Run, or
	// all of them when even the newest is past the starting deadline.
	Missed int64
	// LastMissed is the newest of the missed runs, or zero.
	LastMissed time.Time
	// Next is the first run after now; zero while suspended.
	Next time.Time
}

// maxWalk bounds how many due runs Decide counts one by one (about 0.1 s).
// Beyond it (a minutely schedule down for ten weeks) Missed is a lower
// bound.
const maxWalk = 100_000

// Decide returns what to do at now for a schedule whose runs up to and
// including since are handled (made, or counted as missed). deadline is
// startingDeadlineSeconds: a run more than that late is missed; nil means
// no deadline. A suspended schedule makes nothing, counts nothing and has
// no next run; the caller decides from when to resume (see Since).
func (s *Schedule) Decide(since, now time.Time, deadline *time.Duration, suspended bool) Decision {
	if suspended {
		return Decision{}
	}
	var d Decision
	var latest, previous time.Time
	var due int64
	t := s.Next(since)
	for ; !t.IsZero() && !t.After(now) && due < maxWalk; t = s.Next(t) {
		previous, latest = latest, t
		due++
	}
	if !t.IsZero() && !t.After(now) {
		// Too many to count: jump to the newest due run directly.
		previous, latest = s.newestUpTo(latest, now)
		due++
	}
	// The next run follows the newest handled one, which for @every is
	// not the same as the first run after now.
	if due == 0 {
		d.Next = s.Next(since)
		return d
	}
	d.Next = s.Next(latest)
	if deadline != nil && now.Sub(latest) > *deadline {
		d.Missed, d.LastMissed = due, latest
		return d
	}
	d.Run = latest
	if due > 1 {
		d.Missed, d.LastMissed = due-1, previous
	}
	return d
}

// newestUpTo returns the newest run at or before now and the one before
// it, searching backwards from now in doubling steps, never before from
// (itself a due run).
func (s *Schedule) newestUpTo(from, now time.Time) (previous, latest time.Time) {
	for w := time.Minute; ; w *= 2 {
		start := now.Add(-w)
		if !start.After(from) {
			start = from
		}
		if n := s.Next(start); !n.IsZero() && !n.After(now) {
			for t := n; !t.IsZero() && !t.After(now); t = s.Next(t) {
				previous, latest = latest, t
			}
			if previous.IsZero() {
				// The run before is somewhere between from and start;
				// from is a close enough stand-in for a statistic.
				previous = from
			}
			return previous, latest
		}
		if start.Equal(from) {
			return time.Time{}, from
		}
	}
}

// Since returns the instant up to which a schedule's runs are handled: the
// latest of its creation, its last run, its last missed run and the moment
// it was last resumed (runs missed while suspended are skipped, not made
// up). Zero times are ignored.
func Since(times ...time.Time) time.Time {
	var out time.Time
	for _, t := range times {
		if t.After(out) {
			out = t
		}
	}
	return out
}
