// Package webhook verifies the requests Herald's webhook channel sends.
//
// A receiver reads the raw body before parsing it and calls Verify with the
// signing secret, the request headers and a SeenStore:
//
//	err := webhook.Verify(r.Context(), secret, r.Header, body, webhook.VerifyOptions{Seen: seen})
//
// # The signature (scheme v2)
//
// With a signing secret every request carries
//
//	X-Herald-Timestamp: <unix seconds>
//	X-Herald-Delivery:  <namespace>/<name>
//	X-Herald-Attempt:   <attempt, from 1>
//	Idempotency-Key:    <delivery UID>
//	X-Herald-Signature: v2=<hex HMAC-SHA256(secret, signed string)>
//
// where the signed string is the version, the four header values as sent
// and the exact body bytes, joined by line feeds:
//
//	"v2\n" + timestamp + "\n" + delivery + "\n" + attempt + "\n" + idempotencyKey + "\n" + body
//
// A header that is absent is signed as the empty string. Header values
// cannot hold line feeds, so the string is unambiguous; Verify refuses
// values that contain one.
//
// Because the Idempotency-Key, delivery and attempt are inside the MAC, a
// captured request cannot be replayed under another key (which a receiver
// deduplicating by key would process again); because the timestamp is, it
// cannot be replayed after the tolerance window; and a SeenStore refuses the
// same signed request twice inside the window.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names Herald sets on every webhook request.
const (
	SignatureHeader      = "X-Herald-Signature"
	TimestampHeader      = "X-Herald-Timestamp"
	DeliveryHeader       = "X-Herald-Delivery"
	AttemptHeader        = "X-Herald-Attempt"
	IdempotencyKeyHeader = "Idempotency-Key"
)

const (
	// Version names the signature scheme; the signature header is
	// Version + "=" + hex MAC, and the signed string starts with it.
	Version = "v2"
	// DefaultTolerance is the clock difference Verify accepts when given a
	// non-positive tolerance.
	DefaultTolerance = 5 * time.Minute

	signaturePrefix = Version + "="
)

// Errors returned by Verify and VerifySignature, so receivers can log why a
// request was refused. ErrSeenStoreFull is temporary: answer 503 and Herald
// retries the delivery later with a fresh signature.
var (
	ErrNoSecret          = errors.New("webhook: no secret configured")
	ErrNoSeenStore       = errors.New("webhook: no seen-request store configured")
	ErrMalformed         = errors.New("webhook: malformed signature or signed header")
	ErrTimestampExpired  = errors.New("webhook: timestamp outside tolerance")
	ErrSignatureMismatch = errors.New("webhook: signature mismatch")
	ErrReplayed          = errors.New("webhook: request already received")
	ErrSeenStoreFull     = errors.New("webhook: seen-request store full")
)

// Fields are the signed header values, exactly as sent.
type Fields struct {
	Timestamp      string // X-Herald-Timestamp
	Delivery       string // X-Herald-Delivery
	Attempt        string // X-Herald-Attempt
	IdempotencyKey string // Idempotency-Key
}

// FieldsFromHeader reads the signed header values of a request.
func FieldsFromHeader(h http.Header) Fields {
	return Fields{
		Timestamp:      h.Get(TimestampHeader),
		Delivery:       h.Get(DeliveryHeader),
		Attempt:        h.Get(AttemptHeader),
		IdempotencyKey: h.Get(IdempotencyKeyHeader),
	}
}

// SigningString is the string the MAC covers (see the package comment).
func SigningString(f Fields, body []byte) []byte {
	var b []byte
	for _, s := range []string{Version, f.Timestamp, f.Delivery, f.Attempt, f.IdempotencyKey} {
		b = append(b, s...)
		b = append(b, '\n')
	}
	return append(b, body...)
}

// Sign returns the X-Herald-Signature value for a request with these signed
// header values and body. The values must not contain line feeds (HTTP
// header values cannot).
func Sign(secret []byte, f Fields, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, f, body))
}

func mac(secret []byte, f Fields, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write(SigningString(f, body))
	return h.Sum(nil)
}

// VerifySignature checks a signature against the signed header values and
// the raw body, and that the timestamp is no more than tolerance away from
// now in either direction (a non-positive tolerance means
// DefaultTolerance). It keeps no state: Verify adds replay protection.
func VerifySignature(secret []byte, f Fields, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	_, err := verify(secret, f, signature, body, now, tolerance)
	return err
}

// verify returns the MAC and the signing time of a valid request.
func verify(secret []byte, f Fields, signature string, body []byte, now time.Time, tolerance time.Duration) (signed, error) {
	if len(secret) == 0 {
		return signed{}, ErrNoSecret
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	f.Timestamp = strings.TrimSpace(f.Timestamp)
	ts, err := strconv.ParseInt(f.Timestamp, 10, 64)
	if err != nil {
		return signed{}, fmt.Errorf("%w: timestamp %q is not Unix seconds", ErrMalformed, f.Timestamp)
	}
	for name, v := range map[string]string{DeliveryHeader: f.Delivery, AttemptHeader: f.Attempt, IdempotencyKeyHeader: f.IdempotencyKey} {
		if strings.ContainsAny(v, "\r\n") {
			return signed{}, fmt.Errorf("%w: %s holds a line break", ErrMalformed, name)
		}
	}
	hexMAC, ok := strings.CutPrefix(strings.TrimSpace(signature), signaturePrefix)
	if !ok {
		return signed{}, fmt.Errorf("%w: signature does not start with %q", ErrMalformed, signaturePrefix)
	}
	got, err := hex.DecodeString(hexMAC)
	if err != nil || len(got) != sha256.Size {
		return signed{}, fmt.Errorf("%w: signature is not a hex SHA-256 digest", ErrMalformed)
	}
	// Compare in seconds: converting ts to a time.Time and subtracting can
	// overflow for absurd timestamps.
	window := int64(tolerance / time.Second)
	skew := now.Unix() - ts
	if skew < -window || skew > window {
		return signed{}, fmt.Errorf("%w: signed at %d, now %d", ErrTimestampExpired, ts, now.Unix())
	}
	if !hmac.Equal(got, mac(secret, f, body)) {
		return signed{}, ErrSignatureMismatch
	}
	return signed{mac: got, at: ts, window: window}, nil
}

type signed struct {
	mac    []byte
	at     int64
	window int64
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Seen remembers the requests accepted inside the tolerance window.
	// Required.
	Seen SeenStore
	// Tolerance is the accepted clock difference; DefaultTolerance if not
	// positive.
	Tolerance time.Duration
	// Now is the receiver's clock; time.Now() if zero.
	Now time.Time
}

// Verify checks a request's signature, headers and raw body against the
// secret within the tolerance window, and refuses a request it has already
// accepted (ErrReplayed). Only requests with a valid signature reach the
// SeenStore, so unsigned traffic cannot fill it.
//
// A retry by Herald is a new attempt, with a new timestamp and attempt
// number, and verifies; it carries the same Idempotency-Key, by which the
// receiver drops duplicates (answer them 2xx).
func Verify(ctx context.Context, secret []byte, header http.Header, body []byte, opts VerifyOptions) error {
	if opts.Seen == nil {
		return ErrNoSeenStore
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	s, err := verify(secret, FieldsFromHeader(header), header.Get(SignatureHeader), body, now, opts.Tolerance)
	if err != nil {
		return err
	}
	// Past ts+window the timestamp check refuses the request anyway.
	expires := time.Unix(min(s.at, 1<<62)+s.window+1, 0)
	seen, err := opts.Seen.Remember(ctx, hex.EncodeToString(s.mac), now, expires)
	if err != nil {
		return err
	}
	if seen {
		return ErrReplayed
	}
	return nil
}
