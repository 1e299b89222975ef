package webhook_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/internal/channel/webhook"
)

// wantSignature is the documented wire format, computed independently of
// Sign: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">.
func wantSignature(secret []byte, timestamp string, body []byte) string {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(timestamp + "."))
	h.Write(body)
	return "sha256=" + hex.EncodeToString(h.Sum(nil))
}

// effectiveTolerance is the window Verify applies, in whole seconds.
func effectiveTolerance(tol time.Duration) int64 {
	if tol <= 0 {
		tol = webhook.DefaultTolerance
	}
	return int64(tol / time.Second)
}

// FuzzSignVerify signs a body and checks that Verify accepts exactly that
// request inside the tolerance window, and refuses it outside the window or
// after any change to the body, the timestamp, the signature or the secret.
func FuzzSignVerify(f *testing.F) {
	signedAt := int64(1_800_000_000)
	body := []byte(`{"id":"n-1","title":"Disk almost full"}`)
	f.Add([]byte("s3cr3t"), signedAt, body, int64(60), int64(300), uint(0))
	f.Add([]byte("s3cr3t"), signedAt, body, int64(-60), int64(300), uint(7))
	f.Add([]byte("s3cr3t"), signedAt, body, int64(300), int64(300), uint(1))                   // on the edge
	f.Add([]byte("s3cr3t"), signedAt, body, int64(301), int64(300), uint(2))                   // just outside
	f.Add([]byte("s3cr3t"), signedAt, body, int64(-360), int64(0), uint(3))                    // default tolerance
	f.Add([]byte("s3cr3t"), signedAt, body, int64(299), int64(0), uint(4))                     // zero: default
	f.Add([]byte("s3cr3t"), signedAt, body, int64(-299), int64(-5), uint(4))                   // negative: default
	f.Add([]byte("k"), int64(0), []byte{}, int64(0), int64(1), uint(5))                        // empty body
	f.Add([]byte{}, signedAt, body, int64(0), int64(300), uint(0))                             // no secret
	f.Add(bytes.Repeat([]byte("k"), 65), int64(-1), []byte("x"), int64(0), int64(60), uint(9)) // key longer than a block
	f.Add([]byte("k1"), int64(1000), []byte("\x00\xff"), int64(-1), int64(60), uint(255))
	f.Add([]byte("s"), int64(-9223372036854775808), body, int64(0), int64(300), uint(0))
	f.Add([]byte("s"), int64(9223372036854775807), body, int64(0), int64(300), uint(0))

	f.Fuzz(func(t *testing.T, secret []byte, ts int64, body []byte, skew, tolSecs int64, pos uint) {
		tol := time.Duration(tolSecs%(1<<32)) * time.Second
		window := effectiveTolerance(tol)
		// Look at the window from inside to well outside, on both sides;
		// window is at least one second.
		skew %= 3*window + 2
		// Keep now where time.Unix(now, 0).Unix() == now: ±2^62 seconds is
		// still far beyond any clock.
		ts %= 1 << 62
		now := time.Unix(ts+skew, 0)
		tsText := strconv.FormatInt(ts, 10)

		sig := webhook.Sign(secret, ts, body)
		if want := wantSignature(secret, tsText, body); sig != want {
			t.Fatalf("Sign = %q, want %q", sig, want)
		}
		verify := func(secret []byte, tsText, sig string, body []byte) error {
			return webhook.Verify(secret, tsText, sig, body, now, tol)
		}
		err := verify(secret, tsText, sig, body)
		switch {
		case len(secret) == 0:
			if !errors.Is(err, webhook.ErrNoSecret) {
				t.Fatalf("Verify without a secret = %v, want ErrNoSecret", err)
			}
			return
		case skew > window || -skew > window:
			if !errors.Is(err, webhook.ErrTimestampExpired) {
				t.Fatalf("Verify %ds from the signing time, tolerance %ds = %v, want ErrTimestampExpired", skew, window, err)
			}
			return
		case err != nil:
			t.Fatalf("Verify of a fresh signature %ds from the signing time, tolerance %ds = %v", skew, window, err)
		}

		// Inside the window every change must be caught by the MAC.
		mismatch := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, webhook.ErrSignatureMismatch) {
				t.Fatalf("Verify after changing the %s = %v, want ErrSignatureMismatch", what, err)
			}
		}

		changed := append([]byte(nil), body...)
		if len(changed) == 0 {
			changed = []byte{byte(pos)}
		} else {
			changed[pos%uint(len(changed))] ^= 1 << (pos % 8)
		}
		mismatch("body", verify(secret, tsText, sig, changed))
		mismatch("body (appended byte)", verify(secret, tsText, sig, append(bytes.Clone(body), byte(pos))))

		// Another second inside the window (the MAC must catch it), and
		// the same second written differently (the MAC covers the header
		// as sent, not the number it parses to).
		other := now.Unix() - (int64(pos%uint(2*window+1)) - window)
		if other == ts {
			other = ts + 1
			if skew < 0 {
				other = ts - 1
			}
		}
		mismatch("timestamp", verify(secret, strconv.FormatInt(other, 10), sig, body))
		padded := "0" + tsText
		if ts < 0 {
			padded = "-0" + tsText[1:]
		}
		mismatch("timestamp's spelling", verify(secret, padded, sig, body))

		mac, err := hex.DecodeString(strings.TrimPrefix(sig, "sha256="))
		if err != nil || len(mac) != sha256.Size {
			t.Fatalf("Sign = %q, not sha256=<64 hex digits>", sig)
		}
		bit := pos % (8 * sha256.Size)
		mac[bit/8] ^= 1 << (bit % 8)
		mismatch("signature", verify(secret, tsText, "sha256="+hex.EncodeToString(mac), body))

		otherSecret := bytes.Clone(secret)
		otherSecret[pos%uint(len(otherSecret))] ^= 1 << (pos % 8)
		mismatch("secret", verify(otherSecret, tsText, sig, body))

		for _, bad := range []string{sig[:len(sig)-1], sig + "0", strings.TrimPrefix(sig, "sha256="), "sha1=" + sig[len("sha256="):]} {
			if err := verify(secret, tsText, bad, body); !errors.Is(err, webhook.ErrMalformed) {
				t.Fatalf("Verify(signature %q) = %v, want ErrMalformed", bad, err)
			}
		}
	})
}

// FuzzVerify feeds Verify arbitrary header values. It must not panic, must
// explain every refusal with one of its errors, and may only accept a
// request whose signature is the HMAC of its timestamp and body, signed
// inside the tolerance window.
func FuzzVerify(f *testing.F) {
	secret := []byte("s3cr3t")
	body := []byte(`{"id":"n-1"}`)
	signedAt := int64(1_800_000_000)
	sig := webhook.Sign(secret, signedAt, body)
	for _, c := range []struct{ ts, sig string }{
		{"1800000000", sig},
		{" 1800000000 ", " " + sig + "\t"},
		{"1800000000", strings.ToUpper(sig[:7]) + sig[7:]},
		{"1800000000", sig[:7] + strings.ToUpper(sig[7:])},
		{"1800000001", sig},
		{"+1800000000", sig},
		{"01800000000", sig},
		{"1800000000", strings.TrimPrefix(sig, "sha256=")},
		{"1800000000", "sha256=zz"},
		{"1800000000", sig[:20]},
		{"1800000000", sig + "00"},
		{"yesterday", sig},
		{"", ""},
		{"-9223372036854775808", sig},
		{"9223372036854775807", sig},
		{"99999999999999999999", sig},
		{"1800000000", "sha256=" + strings.Repeat("0", 64)},
		{"1800000000", "sha256=\u00e9\u00e9"},
	} {
		f.Add(secret, c.ts, c.sig, body, signedAt, int64(300))
	}
	f.Add([]byte(nil), "1800000000", sig, body, signedAt, int64(300))
	f.Add(secret, "1800000000", sig, body, signedAt+301, int64(300))
	f.Add(secret, "1800000000", sig, body, signedAt-300, int64(0))
	f.Add(secret, "1800000000", sig, []byte(`{"id":"n-2"}`), signedAt, int64(300))

	f.Fuzz(func(t *testing.T, secret []byte, ts, sig string, body []byte, nowUnix, tolSecs int64) {
		tol := time.Duration(tolSecs%(1<<32)) * time.Second
		now := time.Unix(nowUnix%(1<<62), 0)
		err := webhook.Verify(secret, ts, sig, body, now, tol)

		if len(secret) == 0 {
			if !errors.Is(err, webhook.ErrNoSecret) {
				t.Fatalf("Verify without a secret = %v, want ErrNoSecret", err)
			}
			return
		}
		tsText := strings.TrimSpace(ts)
		n, tsErr := strconv.ParseInt(tsText, 10, 64)
		if tsErr != nil {
			if !errors.Is(err, webhook.ErrMalformed) {
				t.Fatalf("Verify(timestamp %q) = %v, want ErrMalformed", ts, err)
			}
			return
		}
		if err != nil {
			known := 0
			for _, e := range []error{webhook.ErrMalformed, webhook.ErrTimestampExpired, webhook.ErrSignatureMismatch} {
				if errors.Is(err, e) {
					known++
				}
			}
			if known != 1 {
				t.Fatalf("Verify = %v, want exactly one of its documented errors", err)
			}
			return
		}
		// Accepted: it must be the right MAC, in time.
		if want := wantSignature(secret, tsText, body); !strings.EqualFold(strings.TrimSpace(sig), want) {
			t.Fatalf("Verify accepted signature %q for timestamp %q, want %q", sig, ts, want)
		}
		window := effectiveTolerance(tol)
		if d := now.Unix() - n; d > window || -d > window {
			t.Fatalf("Verify accepted timestamp %d at %d with tolerance %ds", n, now.Unix(), window)
		}
	})
}
