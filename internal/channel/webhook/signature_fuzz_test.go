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

	hook "github.com/herald-dev/herald/pkg/webhook"
)

// wantSignature is the documented wire format (docs/channels.md), computed
// independently of Sign: v2=<hex HMAC-SHA256 of
// "v2\n<timestamp>\n<delivery>\n<attempt>\n<idempotency key>\n<body>">.
func wantSignature(secret []byte, f hook.Fields, body []byte) string {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("v2\n" + f.Timestamp + "\n" + f.Delivery + "\n" + f.Attempt + "\n" + f.IdempotencyKey + "\n"))
	h.Write(body)
	return "v2=" + hex.EncodeToString(h.Sum(nil))
}

// effectiveTolerance is the window Verify applies, in whole seconds.
func effectiveTolerance(tol time.Duration) int64 {
	if tol <= 0 {
		tol = hook.DefaultTolerance
	}
	return int64(tol / time.Second)
}

func hasLineBreak(f hook.Fields) bool {
	return strings.ContainsAny(f.Delivery+f.Attempt+f.IdempotencyKey, "\r\n")
}

// flip changes one byte of s (or appends one to an empty s).
func flip(s string, pos uint) string {
	if s == "" {
		return string(rune('a' + pos%26))
	}
	b := []byte(s)
	i := pos % uint(len(b))
	b[i] ^= 1 << (pos % 7) // stays ASCII-or-not as it was; never becomes \n from a letter
	if b[i] == '\n' || b[i] == '\r' {
		b[i] = 'x'
	}
	if string(b) == s {
		b = append(b, 'x')
	}
	return string(b)
}

// FuzzSignVerify signs a request and checks that VerifySignature accepts
// exactly that request inside the tolerance window, and refuses it outside
// the window or after any change to the body, the timestamp, the delivery,
// the attempt, the Idempotency-Key, the signature or the secret.
func FuzzSignVerify(f *testing.F) {
	signedAt := int64(1_800_000_000)
	body := []byte(`{"id":"n-1","title":"Disk almost full"}`)
	d, key := "team-a/disk-full-alice-webhook", "5f0c6c8e-1d1b-4c43-9d7b-3a9f0b7c1e11"
	f.Add([]byte("s3cr3t"), signedAt, d, "1", key, body, int64(60), int64(300), uint(0))
	f.Add([]byte("s3cr3t"), signedAt, d, "2", key, body, int64(-60), int64(300), uint(7))
	f.Add([]byte("s3cr3t"), signedAt, d, "1", key, body, int64(300), int64(300), uint(1)) // on the edge
	f.Add([]byte("s3cr3t"), signedAt, d, "1", key, body, int64(301), int64(300), uint(2)) // just outside
	f.Add([]byte("s3cr3t"), signedAt, d, "1", key, body, int64(-360), int64(0), uint(3))  // default tolerance
	f.Add([]byte("s3cr3t"), signedAt, d, "1", key, body, int64(299), int64(0), uint(4))   // zero: default
	f.Add([]byte("s3cr3t"), signedAt, d, "1", key, body, int64(-299), int64(-5), uint(4)) // negative: default
	f.Add([]byte("k"), int64(0), "", "", "", []byte{}, int64(0), int64(1), uint(5))       // empty everything
	f.Add([]byte{}, signedAt, d, "1", key, body, int64(0), int64(300), uint(0))           // no secret
	f.Add([]byte("s"), signedAt, "a\nb", "1", key, body, int64(0), int64(300), uint(0))   // line break
	f.Add([]byte("s"), signedAt, d, "1", key+"\n1", body, int64(0), int64(300), uint(0))  // line break in key
	f.Add(bytes.Repeat([]byte("k"), 65), int64(-1), d, "1", key, []byte("x"), int64(0), int64(60), uint(9))
	f.Add([]byte("k1"), int64(1000), d, "10", key, []byte("\x00\xff"), int64(-1), int64(60), uint(255))
	f.Add([]byte("s"), int64(-9223372036854775808), d, "1", key, body, int64(0), int64(300), uint(0))
	f.Add([]byte("s"), int64(9223372036854775807), d, "1", key, body, int64(0), int64(300), uint(0))

	f.Fuzz(func(t *testing.T, secret []byte, ts int64, delivery, attempt, key string, body []byte, skew, tolSecs int64, pos uint) {
		tol := time.Duration(tolSecs%(1<<32)) * time.Second
		window := effectiveTolerance(tol)
		skew %= 3*window + 2
		// Keep now where time.Unix(now, 0).Unix() == now.
		ts %= 1 << 62
		now := time.Unix(ts+skew, 0)
		fields := hook.Fields{Timestamp: strconv.FormatInt(ts, 10), Delivery: delivery, Attempt: attempt, IdempotencyKey: key}

		sig := hook.Sign(secret, fields, body)
		if want := wantSignature(secret, fields, body); sig != want {
			t.Fatalf("Sign = %q, want %q", sig, want)
		}
		verify := func(secret []byte, f hook.Fields, sig string, body []byte) error {
			return hook.VerifySignature(secret, f, sig, body, now, tol)
		}
		err := verify(secret, fields, sig, body)
		switch {
		case len(secret) == 0:
			if !errors.Is(err, hook.ErrNoSecret) {
				t.Fatalf("Verify without a secret = %v, want ErrNoSecret", err)
			}
			return
		case hasLineBreak(fields):
			// Header values cannot hold line breaks; allowing them would
			// make the signed string ambiguous.
			if !errors.Is(err, hook.ErrMalformed) {
				t.Fatalf("Verify of fields with a line break = %v, want ErrMalformed", err)
			}
			return
		case skew > window || -skew > window:
			if !errors.Is(err, hook.ErrTimestampExpired) {
				t.Fatalf("Verify %ds from the signing time, tolerance %ds = %v, want ErrTimestampExpired", skew, window, err)
			}
			return
		case err != nil:
			t.Fatalf("Verify of a fresh signature %ds from the signing time, tolerance %ds = %v", skew, window, err)
		}

		// Inside the window every change must be caught by the MAC.
		mismatch := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, hook.ErrSignatureMismatch) {
				t.Fatalf("Verify after changing the %s = %v, want ErrSignatureMismatch", what, err)
			}
		}

		changed := append([]byte(nil), body...)
		if len(changed) == 0 {
			changed = []byte{byte(pos)}
		} else {
			changed[pos%uint(len(changed))] ^= 1 << (pos % 8)
		}
		mismatch("body", verify(secret, fields, sig, changed))
		mismatch("body (appended byte)", verify(secret, fields, sig, append(bytes.Clone(body), byte(pos))))

		// The headers a replay would change to pass a receiver's
		// de-duplication.
		for what, g := range map[string]func(hook.Fields) hook.Fields{
			"Idempotency-Key": func(f hook.Fields) hook.Fields { f.IdempotencyKey = flip(f.IdempotencyKey, pos); return f },
			"delivery":        func(f hook.Fields) hook.Fields { f.Delivery = flip(f.Delivery, pos); return f },
			"attempt":         func(f hook.Fields) hook.Fields { f.Attempt = flip(f.Attempt, pos); return f },
			// Moving text between fields keeps the concatenation but not
			// the signed string.
			"field boundary": func(f hook.Fields) hook.Fields {
				f.Delivery, f.Attempt = f.Delivery+f.Attempt, ""
				if f.Attempt == "" && f.Delivery == delivery {
					f.Attempt = "x"
				}
				return f
			},
		} {
			mismatch(what, verify(secret, g(fields), sig, body))
		}

		// Another second inside the window, and the same second written
		// differently (the MAC covers the header as sent).
		other := now.Unix() - (int64(pos%uint(2*window+1)) - window)
		if other == ts {
			other = ts + 1
			if skew < 0 {
				other = ts - 1
			}
		}
		f2 := fields
		f2.Timestamp = strconv.FormatInt(other, 10)
		mismatch("timestamp", verify(secret, f2, sig, body))
		f2.Timestamp = "0" + fields.Timestamp
		if ts < 0 {
			f2.Timestamp = "-0" + fields.Timestamp[1:]
		}
		mismatch("timestamp's spelling", verify(secret, f2, sig, body))

		mac, err := hex.DecodeString(strings.TrimPrefix(sig, "v2="))
		if err != nil || len(mac) != sha256.Size {
			t.Fatalf("Sign = %q, not v2=<64 hex digits>", sig)
		}
		bit := pos % (8 * sha256.Size)
		mac[bit/8] ^= 1 << (bit % 8)
		mismatch("signature", verify(secret, fields, "v2="+hex.EncodeToString(mac), body))

		otherSecret := bytes.Clone(secret)
		otherSecret[pos%uint(len(otherSecret))] ^= 1 << (pos % 8)
		mismatch("secret", verify(otherSecret, fields, sig, body))

		// The old scheme's prefix, a missing prefix and wrong lengths are
		// refused before any MAC is computed.
		for _, bad := range []string{sig[:len(sig)-1], sig + "0", strings.TrimPrefix(sig, "v2="), "sha256=" + sig[len("v2="):], "v1=" + sig[len("v2="):]} {
			if err := verify(secret, fields, bad, body); !errors.Is(err, hook.ErrMalformed) {
				t.Fatalf("Verify(signature %q) = %v, want ErrMalformed", bad, err)
			}
		}
	})
}

// FuzzVerify feeds VerifySignature arbitrary header values. It must not
// panic, must explain every refusal with one of its errors, and may only
// accept a request whose signature is the HMAC of its timestamp, delivery,
// attempt, Idempotency-Key and body, signed inside the tolerance window.
func FuzzVerify(f *testing.F) {
	secret := []byte("s3cr3t")
	body := []byte(`{"id":"n-1"}`)
	signedAt := int64(1_800_000_000)
	fields := hook.Fields{Timestamp: "1800000000", Delivery: "team-a/d", Attempt: "1", IdempotencyKey: "uid-1"}
	sig := hook.Sign(secret, fields, body)
	for _, c := range []struct{ ts, d, a, k, sig string }{
		{"1800000000", "team-a/d", "1", "uid-1", sig},
		{" 1800000000 ", "team-a/d", "1", "uid-1", " " + sig + "\t"},
		{"1800000000", "team-a/d", "1", "uid-1", strings.ToUpper(sig[:3]) + sig[3:]},
		{"1800000000", "team-a/d", "1", "uid-1", sig[:3] + strings.ToUpper(sig[3:])},
		{"1800000000", "team-a/d", "1", "uid-2", sig},
		{"1800000000", "team-a/d", "2", "uid-1", sig},
		{"1800000000", "team-a/e", "1", "uid-1", sig},
		{"1800000000", "team-a/d1", "", "uid-1", sig},
		{"1800000000", "team-a/d\n1", "", "uid-1", sig},
		{"1800000001", "team-a/d", "1", "uid-1", sig},
		{"+1800000000", "team-a/d", "1", "uid-1", sig},
		{"01800000000", "team-a/d", "1", "uid-1", sig},
		{"1800000000", "team-a/d", "1", "uid-1", "sha256=" + sig[3:]},
		{"1800000000", "team-a/d", "1", "uid-1", "v2=zz"},
		{"1800000000", "team-a/d", "1", "uid-1", sig[:20]},
		{"yesterday", "team-a/d", "1", "uid-1", sig},
		{"", "", "", "", ""},
		{"-9223372036854775808", "team-a/d", "1", "uid-1", sig},
		{"99999999999999999999", "team-a/d", "1", "uid-1", sig},
		{"1800000000", "team-a/d", "1", "uid-1", "v2=" + strings.Repeat("0", 64)},
	} {
		f.Add(secret, c.ts, c.d, c.a, c.k, c.sig, body, signedAt, int64(300))
	}
	f.Add([]byte(nil), "1800000000", "team-a/d", "1", "uid-1", sig, body, signedAt, int64(300))
	f.Add(secret, "1800000000", "team-a/d", "1", "uid-1", sig, body, signedAt+301, int64(300))
	f.Add(secret, "1800000000", "team-a/d", "1", "uid-1", sig, []byte(`{"id":"n-2"}`), signedAt, int64(300))

	f.Fuzz(func(t *testing.T, secret []byte, ts, delivery, attempt, key, sig string, body []byte, nowUnix, tolSecs int64) {
		tol := time.Duration(tolSecs%(1<<32)) * time.Second
		now := time.Unix(nowUnix%(1<<62), 0)
		in := hook.Fields{Timestamp: ts, Delivery: delivery, Attempt: attempt, IdempotencyKey: key}
		err := hook.VerifySignature(secret, in, sig, body, now, tol)

		if len(secret) == 0 {
			if !errors.Is(err, hook.ErrNoSecret) {
				t.Fatalf("Verify without a secret = %v, want ErrNoSecret", err)
			}
			return
		}
		tsText := strings.TrimSpace(ts)
		n, tsErr := strconv.ParseInt(tsText, 10, 64)
		if tsErr != nil || hasLineBreak(in) {
			if !errors.Is(err, hook.ErrMalformed) {
				t.Fatalf("Verify(%+v) = %v, want ErrMalformed", in, err)
			}
			return
		}
		if err != nil {
			known := 0
			for _, e := range []error{hook.ErrMalformed, hook.ErrTimestampExpired, hook.ErrSignatureMismatch} {
				if errors.Is(err, e) {
					known++
				}
			}
			if known != 1 {
				t.Fatalf("Verify = %v, want exactly one of its documented errors", err)
			}
			return
		}
		// Accepted: it must be the right MAC over every signed field, in time.
		in.Timestamp = tsText
		if want := wantSignature(secret, in, body); !strings.EqualFold(strings.TrimSpace(sig), want) {
			t.Fatalf("Verify accepted signature %q for %+v, want %q", sig, in, want)
		}
		window := effectiveTolerance(tol)
		if d := now.Unix() - n; d > window || -d > window {
			t.Fatalf("Verify accepted timestamp %d at %d with tolerance %ds", n, now.Unix(), window)
		}
	})
}
