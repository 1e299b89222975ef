package channel

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ParseRetryAfter reads an HTTP Retry-After value, either delay-seconds or an
// HTTP-date (RFC 9110 section 10.2.3). It returns zero when the value is
// absent, malformed or already in the past. delay-seconds too large for a
// time.Duration (about 292 years) give the largest one: multiplying would
// wrap around, and a server asking for a very long wait must not be read as
// asking for a short (or negative) one.
func ParseRetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	// ParseInt reports a number beyond int64 as ErrRange, with secs set to
	// the nearest bound. It does so as soon as the digits overflow, before
	// looking at the rest, so ErrRange alone does not mean value is a number.
	if secs, err := strconv.ParseInt(value, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) && isInteger(value) {
		switch {
		case secs <= 0:
			return 0
		case secs > int64(math.MaxInt64/time.Second):
			return math.MaxInt64
		}
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(value); err == nil {
		if d := at.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// isInteger reports whether s is what strconv.ParseInt reads in base 10: ASCII
// digits with an optional sign.
func isInteger(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	return s != "" && strings.Trim(s, "0123456789") == ""
}
