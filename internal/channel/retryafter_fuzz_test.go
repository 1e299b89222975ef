package channel

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	// maxDuration is what ParseRetryAfter returns for a delay too long
	// for a time.Duration.
	maxDuration     = time.Duration(math.MaxInt64)
	maxDelaySeconds = uint64(maxDuration / time.Second)
	// maxHTTPDateUnix is 9999-12-31T23:59:59Z, the last HTTP-date.
	maxHTTPDateUnix = 253402300799
)

// fuzzNow turns a fuzzed Unix time into a clock reading between 1970 and
// 9999, the years an HTTP-date can express.
func fuzzNow(unix int64) time.Time {
	if unix < 0 {
		unix = -(unix + 1)
	}
	return time.Unix(unix%(maxHTTPDateUnix+1), 0).UTC()
}

// FuzzParseRetryAfter feeds arbitrary header values. Whatever comes in, the
// result is never negative, surrounding whitespace does not matter, digits
// give that many seconds (saturating), an HTTP-date gives the time until it
// (zero once past), and anything else, garbage included, gives zero.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for _, v := range []string{
		"", " ", "7", " 120 ", "0", "-3", "+5", "soon", "1.5", "0x10", "1e3",
		"\t42\n", "٣", // an Arabic-Indic digit: not delay-seconds
		now.Add(90 * time.Second).Format(http.TimeFormat),
		now.Add(-time.Minute).Format(http.TimeFormat),
		"Sunday, 29-Nov-26 12:01:30 GMT", // RFC 850
		"Sun Nov 29 12:01:30 2026",       // asctime
		"Sun, 29 Nov 2026 12:01:30 +0100",
		"9223372036",                            // the most seconds a time.Duration holds
		"9223372037",                            // one more: time.Duration overflows to negative
		"18446744074",                           // wraps time.Duration to a fraction of a second
		"99999999999999999999999999",            // beyond int64
		"-99999999999999999999999999",           // below int64
		"18700000000000000000A",                 // overflows before the syntax error: still garbage
		"Fri, 31 Dec 9999 23:59:59 GMT",         // the last HTTP-date
		"Mon, 01 Jan 0001 00:00:00 GMT",         // the first
		"Thu, 01 Jan 1970 00:00:00 GMT garbage", // a date with a tail
	} {
		f.Add(v, now.Unix())
	}
	f.Add("Thu, 01 Jan 1970 00:00:01 GMT", int64(0))
	f.Add("Fri, 31 Dec 9999 23:59:59 GMT", int64(maxHTTPDateUnix-1))

	f.Fuzz(func(t *testing.T, value string, nowUnix int64) {
		now := fuzzNow(nowUnix)
		d := ParseRetryAfter(value, now)
		if d < 0 {
			t.Fatalf("ParseRetryAfter(%q, %v) = %v, negative", value, now, d)
		}
		if padded := ParseRetryAfter(" \t"+value+"\r\n ", now); padded != d {
			t.Fatalf("ParseRetryAfter(%q) = %v but with surrounding whitespace %v", value, d, padded)
		}
		// The rest is RFC 9110's definition: delay-seconds (ASCII digits;
		// strconv's optional "+" is tolerated), saturating at the longest
		// time.Duration, or an HTTP-date; anything else means no wait.
		v := strings.TrimSpace(value)
		digits, _ := strings.CutPrefix(v, "+")
		at, dateErr := http.ParseTime(v)
		var want time.Duration
		switch {
		case digits != "" && strings.Trim(digits, "0123456789") == "":
			want = maxDuration
			if n, err := strconv.ParseUint(digits, 10, 64); err == nil && n <= maxDelaySeconds {
				want = time.Duration(n) * time.Second
			}
		case dateErr == nil:
			if at.After(now) {
				want = at.Sub(now)
			}
		}
		if d != want {
			t.Fatalf("ParseRetryAfter(%q, %v) = %v, want %v", value, now, d, want)
		}
	})
}

// FuzzParseRetryAfterRoundTrip writes a wait the two ways a server may
// write it and reads it back. delay-seconds come back exactly, or as the
// longest time.Duration when they do not fit one: a server asking for a very
// long wait must never be read as asking for a short one. An HTTP-date comes
// back as the time until it, and as zero once it has passed.
func FuzzParseRetryAfterRoundTrip(f *testing.F) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC).Unix()
	f.Add(uint64(7), now, int64(90))
	f.Add(uint64(0), now, int64(0))
	f.Add(uint64(120), now, int64(-60))
	f.Add(maxDelaySeconds, now, int64(1))
	f.Add(maxDelaySeconds+1, now, int64(-1))
	f.Add(uint64(18446744074), int64(0), int64(maxHTTPDateUnix))
	f.Add(uint64(math.MaxUint64), int64(maxHTTPDateUnix), int64(math.MinInt64))

	f.Fuzz(func(t *testing.T, secs uint64, nowUnix, offset int64) {
		now := fuzzNow(nowUnix)

		s := strconv.FormatUint(secs, 10)
		got := ParseRetryAfter(s, now)
		want := maxDuration
		if secs <= maxDelaySeconds {
			want = time.Duration(secs) * time.Second
		}
		if got != want {
			t.Fatalf("ParseRetryAfter(%q) = %v, want %v", s, got, want)
		}

		// fuzzNow keeps the date inside the years an HTTP-date can express.
		at := fuzzNow(now.Unix() + offset%(maxHTTPDateUnix+1))
		date := at.Format(http.TimeFormat)
		got = ParseRetryAfter(date, now)
		want = 0
		if at.After(now) {
			want = at.Sub(now)
		}
		if got != want {
			t.Fatalf("ParseRetryAfter(%q, %v) = %v, want %v", date, now, got, want)
		}
	})
}
