package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

const (
	// SignatureHeader carries the request's HMAC.
	SignatureHeader = "X-Herald-Signature"
	// TimestampHeader carries the Unix time the request was signed at.
	TimestampHeader = "X-Herald-Timestamp"
	// DefaultTolerance is the clock difference Verify accepts when given a
	// non-positive tolerance.
	DefaultTolerance = 5 * time.Minute

	signaturePrefix = "sha256="
)

// Errors returned by Verify, so receivers can log why a request was refused.
var (
	ErrNoSecret          = errors.New("webhook: no secret configured")
	ErrMalformed         = errors.New("webhook: malformed signature or timestamp")
	ErrTimestampExpired  = errors.New("webhook: timestamp outside tolerance")
	ErrSignatureMismatch = errors.New("webhook: signature mismatch")
)

// Sign returns the X-Herald-Signature value for body sent at timestamp.
func Sign(secret []byte, timestamp int64, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, strconv.FormatInt(timestamp, 10), body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a request's X-Herald-Timestamp and X-Herald-Signature
// headers against its raw body. It rejects timestamps more than tolerance
// away from now in either direction (a non-positive tolerance means
// DefaultTolerance), so both replays and badly skewed clocks are caught.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return ErrNoSecret
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	timestamp = strings.TrimSpace(timestamp)
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not Unix seconds", ErrMalformed, timestamp)
	}
	hexMAC, ok := strings.CutPrefix(strings.TrimSpace(signature), signaturePrefix)
	if !ok {
		return fmt.Errorf("%w: signature does not start with %q", ErrMalformed, signaturePrefix)
	}
	got, err := hex.DecodeString(hexMAC)
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%w: signature is not a hex SHA-256 digest", ErrMalformed)
	}
	// Compare in seconds: converting ts to a time.Time and subtracting can
	// overflow for absurd timestamps.
	skew := now.Unix() - ts
	if skew < 0 {
		skew = -skew
	}
	if skew < 0 || skew > int64(tolerance/time.Second) {
		return fmt.Errorf("%w: signed at %d, now %d", ErrTimestampExpired, ts, now.Unix())
	}
	if !hmac.Equal(got, mac(secret, timestamp, body)) {
		return ErrSignatureMismatch
	}
	return nil
}
