package schedule_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/internal/schedule"
)

var berlin = mustZone("Europe/Berlin")

func mustZone(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

// utc parses "2006-01-02 15:04" in UTC.
func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

// local parses "2006-01-02 15:04" in loc.
func local(s string, loc *time.Location) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		panic(err)
	}
	return t
}

func mustParse(t *testing.T, expr, zone string) *schedule.Schedule {
	t.Helper()
	s, err := schedule.Parse(expr, zone)
	if err != nil {
		t.Fatalf("Parse(%q, %q): %v", expr, zone, err)
	}
	return s
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ expr, zone, want string }{
		{"61 * * * *", "", "end of range (61) above maximum (59)"},
		{"0 9 * *", "", "expected exactly 5 fields"},
		{"@fortnightly", "", "unrecognized descriptor"},
		{"0 9 * * *", "Mars/Olympus", `"Mars/Olympus" is not an IANA time zone`},
		{"0 9 * * *", "Local", "not an IANA time zone"},
		{"CRON_TZ=Europe/Berlin 0 9 * * *", "", "set spec.timeZone instead"},
		{"@every 30s", "", "at least 1m0s"},
	}
	for _, tc := range tests {
		_, err := schedule.Parse(tc.expr, tc.zone)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q, %q) = %v, want an error containing %q", tc.expr, tc.zone, err, tc.want)
		}
	}
}

// TestNext walks schedules over the 2026 DST changes in Europe/Berlin:
// clocks jump from 02:00 CET to 03:00 CEST on 29 March and fall back from
// 03:00 CEST to 02:00 CET on 25 October.
func TestNext(t *testing.T) {
	tests := []struct {
		name, expr, zone string
		from             time.Time
		want             []time.Time // successive runs, in UTC
	}{
		{
			name: "09:00 local stays 09:00 local across spring forward",
			expr: "0 9 * * *", zone: "Europe/Berlin",
			from: local("2026-03-27 12:00", berlin),
			want: []time.Time{utc("2026-03-28 08:00"), utc("2026-03-29 07:00"), utc("2026-03-30 07:00")},
		},
		{
			name: "09:00 local stays 09:00 local across fall back",
			expr: "0 9 * * *", zone: "Europe/Berlin",
			from: local("2026-10-24 00:00", berlin),
			want: []time.Time{utc("2026-10-24 07:00"), utc("2026-10-25 08:00"), utc("2026-10-26 08:00")},
		},
		{
			name: "02:30 does not exist on 29 March: it runs once, at 03:00 CEST",
			expr: "30 2 * * *", zone: "Europe/Berlin",
			from: local("2026-03-28 03:00", berlin),
			want: []time.Time{utc("2026-03-29 01:00"), utc("2026-03-30 00:30"), utc("2026-03-31 00:30")},
		},
		{
			name: "02:00 is the first skipped minute: also runs at 03:00 CEST",
			expr: "0 2 * * *", zone: "Europe/Berlin",
			from: local("2026-03-28 03:00", berlin),
			want: []time.Time{utc("2026-03-29 01:00"), utc("2026-03-30 00:00")},
		},
		{
			name: "03:00 exists and is not moved",
			expr: "0 3 * * *", zone: "Europe/Berlin",
			from: local("2026-03-28 04:00", berlin),
			want: []time.Time{utc("2026-03-29 01:00"), utc("2026-03-30 01:00")},
		},
		{
			name: "two skipped runs on the same day collapse into one",
			expr: "0,30 2 * * *", zone: "Europe/Berlin",
			from: local("2026-03-28 03:00", berlin),
			want: []time.Time{utc("2026-03-29 01:00"), utc("2026-03-30 00:00"), utc("2026-03-30 00:30")},
		},
		{
			name: "02:30 exists twice on 25 October: it runs once, the first time",
			expr: "30 2 * * *", zone: "Europe/Berlin",
			from: local("2026-10-24 03:00", berlin),
			want: []time.Time{utc("2026-10-25 00:30"), utc("2026-10-26 01:30")},
		},
		{
			name: "hourly follows the wall clock: the repeated hour runs twice",
			expr: "0 * * * *", zone: "Europe/Berlin",
			from: local("2026-10-25 01:30", berlin),
			want: []time.Time{utc("2026-10-25 00:00"), utc("2026-10-25 01:00"), utc("2026-10-25 02:00")},
		},
		{
			name: "wildcard minutes follow the wall clock: the skipped hour has no runs",
			expr: "*/30 1-3 * * *", zone: "Europe/Berlin",
			from: local("2026-03-29 00:00", berlin),
			want: []time.Time{utc("2026-03-29 00:00"), utc("2026-03-29 00:30"), utc("2026-03-29 01:00"), utc("2026-03-29 01:30")},
		},
		{
			name: "two runs in the repeated hour: each once, in the first pass",
			expr: "0,30 2 * * *", zone: "Europe/Berlin",
			from: local("2026-10-24 03:00", berlin),
			want: []time.Time{utc("2026-10-25 00:00"), utc("2026-10-25 00:30"), utc("2026-10-26 01:00")},
		},
		{
			name: "wildcard minutes follow the wall clock: the repeated hour runs twice",
			expr: "*/30 1-3 * * *", zone: "Europe/Berlin",
			from: local("2026-10-25 01:45", berlin),
			want: []time.Time{utc("2026-10-25 00:00"), utc("2026-10-25 00:30"), utc("2026-10-25 01:00"), utc("2026-10-25 01:30"), utc("2026-10-25 02:00")},
		},
		{
			name: "hourly follows the wall clock: the skipped hour has no run",
			expr: "0 * * * *", zone: "Europe/Berlin",
			from: local("2026-03-29 00:30", berlin),
			want: []time.Time{utc("2026-03-29 00:00"), utc("2026-03-29 01:00")},
		},
		{
			name: "@daily is local midnight",
			expr: "@daily", zone: "Europe/Berlin",
			from: local("2026-03-28 12:00", berlin),
			want: []time.Time{utc("2026-03-28 23:00"), utc("2026-03-29 22:00")},
		},
		{
			name: "no zone means UTC",
			expr: "0 9 * * 1", zone: "",
			from: utc("2026-11-25 00:00"), // a Wednesday
			want: []time.Time{utc("2026-11-30 09:00"), utc("2026-12-07 09:00")},
		},
		{
			name: "half-hour offset zone",
			expr: "0 9 * * *", zone: "Asia/Kolkata",
			from: utc("2026-11-25 00:00"),
			want: []time.Time{utc("2026-11-25 03:30"), utc("2026-11-26 03:30")},
		},
		{
			name: "@every counts from the given instant",
			expr: "@every 90m", zone: "Europe/Berlin",
			from: utc("2026-03-29 00:15"),
			want: []time.Time{utc("2026-03-29 01:45"), utc("2026-03-29 03:15")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustParse(t, tc.expr, tc.zone)
			at := tc.from
			for i, want := range tc.want {
				got := s.Next(at)
				if !got.Equal(want) {
					t.Fatalf("run %d after %s: got %s (%s), want %s (%s)", i+1, at.In(s.Location()),
						got.UTC(), got.In(s.Location()), want, want.In(s.Location()))
				}
				at = got
			}
		})
	}
}

func TestDecide(t *testing.T) {
	dur := func(d time.Duration) *time.Duration { return &d }
	tests := []struct {
		name      string
		expr      string
		zone      string
		since     time.Time
		now       time.Time
		deadline  *time.Duration
		suspended bool
		want      schedule.Decision
	}{
		{
			name: "nothing due yet",
			expr: "0 9 * * *", since: utc("2026-11-28 08:00"), now: utc("2026-11-28 08:59"),
			want: schedule.Decision{Next: utc("2026-11-28 09:00")},
		},
		{
			name: "due on time",
			expr: "0 9 * * *", since: utc("2026-11-28 08:00"), now: utc("2026-11-28 09:00").Add(200 * time.Millisecond),
			want: schedule.Decision{Run: utc("2026-11-28 09:00"), Next: utc("2026-11-29 09:00")},
		},
		{
			name: "the run already made is not made again",
			expr: "0 9 * * *", since: utc("2026-11-28 09:00"), now: utc("2026-11-28 09:00").Add(3 * time.Second),
			want: schedule.Decision{Next: utc("2026-11-29 09:00")},
		},
		{
			name: "late but within the deadline",
			expr: "0 9 * * *", since: utc("2026-11-28 08:00"), now: utc("2026-11-28 09:30"), deadline: dur(time.Hour),
			want: schedule.Decision{Run: utc("2026-11-28 09:00"), Next: utc("2026-11-29 09:00")},
		},
		{
			name: "past the deadline: skipped and counted",
			expr: "0 9 * * *", since: utc("2026-11-28 08:00"), now: utc("2026-11-28 10:30"), deadline: dur(time.Hour),
			want: schedule.Decision{Missed: 1, LastMissed: utc("2026-11-28 09:00"), Next: utc("2026-11-29 09:00")},
		},
		{
			name: "a deadline of zero misses any late run",
			expr: "0 9 * * *", since: utc("2026-11-28 08:00"), now: utc("2026-11-28 09:00").Add(time.Second), deadline: dur(0),
			want: schedule.Decision{Missed: 1, LastMissed: utc("2026-11-28 09:00"), Next: utc("2026-11-29 09:00")},
		},
		{
			name: "a three-day outage ending within the deadline of the newest run: one catch-up run",
			expr: "0 * * * *", since: utc("2026-11-25 10:00"), now: utc("2026-11-28 10:05"), deadline: dur(10 * time.Minute),
			want: schedule.Decision{Run: utc("2026-11-28 10:00"), Missed: 71, LastMissed: utc("2026-11-28 09:00"), Next: utc("2026-11-28 11:00")},
		},
		{
			name: "a three-day outage past the deadline: no run at all, every run counted",
			expr: "0 * * * *", since: utc("2026-11-25 10:00"), now: utc("2026-11-28 10:20"), deadline: dur(10 * time.Minute),
			want: schedule.Decision{Missed: 72, LastMissed: utc("2026-11-28 10:00"), Next: utc("2026-11-28 11:00")},
		},
		{
			name: "without a deadline an outage still gives a single run",
			expr: "0 9 * * *", since: utc("2026-11-20 10:00"), now: utc("2026-11-28 12:00"),
			want: schedule.Decision{Run: utc("2026-11-28 09:00"), Missed: 7, LastMissed: utc("2026-11-27 09:00"), Next: utc("2026-11-29 09:00")},
		},
		{
			name: "suspended: nothing runs, nothing is counted, no next run",
			expr: "0 9 * * *", since: utc("2026-11-20 10:00"), now: utc("2026-11-28 12:00"), suspended: true,
			want: schedule.Decision{},
		},
		{
			name: "@every from the last run",
			expr: "@every 2h", since: utc("2026-11-28 08:10"), now: utc("2026-11-28 10:11"),
			want: schedule.Decision{Run: utc("2026-11-28 10:10"), Next: utc("2026-11-28 12:10")},
		},
		{
			name: "@every after an outage past the deadline",
			expr: "@every 1h", since: utc("2026-11-28 08:10"), now: utc("2026-11-28 12:00"), deadline: dur(5 * time.Minute),
			want: schedule.Decision{Missed: 3, LastMissed: utc("2026-11-28 11:10"), Next: utc("2026-11-28 12:10")},
		},
		{
			name: "the skipped spring-forward run is due at 03:00 CEST",
			expr: "30 2 * * *", zone: "Europe/Berlin", since: local("2026-03-28 12:00", berlin), now: local("2026-03-29 03:00", berlin).Add(time.Second),
			deadline: dur(time.Minute),
			want:     schedule.Decision{Run: utc("2026-03-29 01:00"), Next: utc("2026-03-30 00:30")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustParse(t, tc.expr, tc.zone)
			got := s.Decide(tc.since, tc.now, tc.deadline, tc.suspended)
			if !got.Run.Equal(tc.want.Run) || got.Missed != tc.want.Missed || !got.LastMissed.Equal(tc.want.LastMissed) || !got.Next.Equal(tc.want.Next) {
				t.Fatalf("got  %s\nwant %s", show(got), show(tc.want))
			}
		})
	}
}

// TestDecideResume checks that runs missed while suspended are skipped on
// resume rather than made up: the reconciler passes the resume time to
// Since.
func TestDecideResume(t *testing.T) {
	s := mustParse(t, "0 9 * * *", "")
	created := utc("2026-11-01 12:00")
	lastRun := utc("2026-11-20 09:00")
	resumed := utc("2026-11-28 12:00")
	since := schedule.Since(created, lastRun, time.Time{}, resumed)
	if !since.Equal(resumed) {
		t.Fatalf("since = %s, want the resume time", since)
	}
	got := s.Decide(since, resumed.Add(time.Second), nil, false)
	if !got.Run.IsZero() || got.Missed != 0 {
		t.Fatalf("resume made up runs: %s", show(got))
	}
	if want := utc("2026-11-29 09:00"); !got.Next.Equal(want) {
		t.Fatalf("next = %s, want %s", got.Next, want)
	}
	// Without a resume the same instant catches up once.
	got = s.Decide(schedule.Since(created, lastRun), resumed, nil, false)
	if want := utc("2026-11-28 09:00"); !got.Run.Equal(want) || got.Missed != 7 {
		t.Fatalf("catch-up: %s", show(got))
	}
}

// TestDecideHugeOutage bounds the work for a minutely schedule that was
// down for years: still one run, the newest.
func TestDecideHugeOutage(t *testing.T) {
	s := mustParse(t, "* * * * *", "")
	now := utc("2026-11-28 12:00").Add(30 * time.Second)
	start := time.Now()
	got := s.Decide(utc("2024-11-28 12:00"), now, nil, false)
	if want := utc("2026-11-28 12:00"); !got.Run.Equal(want) {
		t.Fatalf("run = %s, want %s", got.Run, want)
	}
	if got.Missed < 100_000 {
		t.Fatalf("missed = %d, want at least the walk bound", got.Missed)
	}
	t.Logf("decided over two years of minutes in %s (missed >= %d)", time.Since(start), got.Missed)
}

func show(d schedule.Decision) string {
	f := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	return "run=" + f(d.Run) + " missed=" + strconv.FormatInt(d.Missed, 10) + " lastMissed=" + f(d.LastMissed) + " next=" + f(d.Next)
}
