package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/herald-dev/herald/pkg/webhook"
)

func signedHeader(secret []byte, ts time.Time, key string, body []byte) http.Header {
	h := http.Header{}
	h.Set(webhook.TimestampHeader, fmt.Sprint(ts.Unix()))
	h.Set(webhook.DeliveryHeader, "team-a/deploy-alice-webhook")
	h.Set(webhook.AttemptHeader, "1")
	h.Set(webhook.IdempotencyKeyHeader, key)
	h.Set(webhook.SignatureHeader, webhook.Sign(secret, webhook.FieldsFromHeader(h), body))
	return h
}

// A request accepted once is refused when sent again inside the window,
// however its signature is spelled; a retry (a new attempt) is accepted.
func TestVerifyRefusesReplay(t *testing.T) {
	secret, body := []byte("s3cr3t"), []byte(`{"id":"n-1"}`)
	now := time.Unix(1_800_000_000, 0)
	seen := webhook.NewMemorySeenStore(10)
	opts := webhook.VerifyOptions{Seen: seen, Now: now, Tolerance: time.Minute}
	h := signedHeader(secret, now, "uid-1", body)
	if err := webhook.Verify(context.Background(), secret, h, body, opts); err != nil {
		t.Fatalf("first delivery: %v", err)
	}
	opts.Now = now.Add(30 * time.Second)
	if err := webhook.Verify(context.Background(), secret, h, body, opts); !errors.Is(err, webhook.ErrReplayed) {
		t.Fatalf("replay = %v, want ErrReplayed", err)
	}
	upper := h.Clone()
	upper.Set(webhook.SignatureHeader, "v2="+toUpper(h.Get(webhook.SignatureHeader)[3:]))
	if err := webhook.Verify(context.Background(), secret, upper, body, opts); !errors.Is(err, webhook.ErrReplayed) {
		t.Fatalf("replay with the signature in capitals = %v, want ErrReplayed", err)
	}
	// Herald's retry is a new attempt with a new timestamp: it verifies,
	// and the receiver drops it as a duplicate by its Idempotency-Key.
	retry := signedHeader(secret, now.Add(20*time.Second), "uid-1", body)
	retry.Set(webhook.AttemptHeader, "2")
	retry.Set(webhook.SignatureHeader, webhook.Sign(secret, webhook.FieldsFromHeader(retry), body))
	if err := webhook.Verify(context.Background(), secret, retry, body, opts); err != nil {
		t.Fatalf("retry: %v", err)
	}
	// Changing the key of a captured request breaks the signature.
	forged := h.Clone()
	forged.Set(webhook.IdempotencyKeyHeader, "uid-2")
	if err := webhook.Verify(context.Background(), secret, forged, body, opts); !errors.Is(err, webhook.ErrSignatureMismatch) {
		t.Fatalf("replay under a new key = %v, want ErrSignatureMismatch", err)
	}
	// Unsigned or wrongly signed requests never reach the store.
	if got := seen.Len(); got != 2 {
		t.Fatalf("store holds %d entries, want 2", got)
	}
	// Without a store Verify refuses to run rather than skip the check.
	if err := webhook.Verify(context.Background(), secret, h, body, webhook.VerifyOptions{Now: now}); !errors.Is(err, webhook.ErrNoSeenStore) {
		t.Fatalf("Verify without a store = %v, want ErrNoSeenStore", err)
	}
}

func toUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// The in-memory store never holds more than its bound: entries leave as
// they expire, and a full store refuses (fails closed) rather than forget
// an entry that could then be replayed.
func TestMemorySeenStoreBounded(t *testing.T) {
	ctx := context.Background()
	s := webhook.NewMemorySeenStore(3)
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if seen, err := s.Remember(ctx, fmt.Sprint(i), t0, t0.Add(time.Duration(i+1)*time.Minute)); seen || err != nil {
			t.Fatalf("Remember(%d) = %v, %v", i, seen, err)
		}
	}
	if _, err := s.Remember(ctx, "3", t0, t0.Add(time.Minute)); !errors.Is(err, webhook.ErrSeenStoreFull) {
		t.Fatalf("Remember into a full store = %v, want ErrSeenStoreFull", err)
	}
	if seen, err := s.Remember(ctx, "2", t0, t0.Add(time.Minute)); !seen || err != nil {
		t.Fatalf("Remember of a held id in a full store = %v, %v; want seen", seen, err)
	}
	// After a minute and a half the first entry has expired.
	later := t0.Add(90 * time.Second)
	if seen, err := s.Remember(ctx, "3", later, later.Add(time.Minute)); seen || err != nil {
		t.Fatalf("Remember after expiry = %v, %v", seen, err)
	}
	if seen, _ := s.Remember(ctx, "0", later, later.Add(time.Minute)); seen {
		t.Fatalf("expired entry still seen")
	}
	if s.Len() > 3 {
		t.Fatalf("store holds %d entries, bound 3", s.Len())
	}
}
