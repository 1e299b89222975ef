package webhook_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/herald-dev/herald/pkg/webhook"
)

// A receiver verifies every request before it parses the body, refuses
// replays, and answers duplicates (Herald's retries, same Idempotency-Key)
// with 200 without acting twice.
func ExampleVerify() {
	secret := []byte("from-the-signing-secret")
	seen := webhook.NewMemorySeenStore(10000)
	processed := map[string]bool{} // use durable storage in a real receiver

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read error", http.StatusBadRequest)
			return
		}
		err = webhook.Verify(r.Context(), secret, r.Header, body, webhook.VerifyOptions{Seen: seen})
		switch {
		case errors.Is(err, webhook.ErrSeenStoreFull):
			http.Error(w, "busy", http.StatusServiceUnavailable) // Herald retries
			return
		case err != nil:
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		key := r.Header.Get(webhook.IdempotencyKeyHeader)
		if !processed[key] {
			processed[key] = true
			fmt.Println("processing", key)
		}
	})

	// What Herald sends (internal/channel/webhook signs the same way).
	send := func(h http.Header, body string) int {
		req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(body))
		req.Header = h
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		return rec.Code
	}
	body := `{"id":"n-1","title":"Disk almost full"}`
	h := http.Header{}
	h.Set(webhook.TimestampHeader, fmt.Sprint(time.Now().Unix()))
	h.Set(webhook.DeliveryHeader, "team-a/disk-full-alice-webhook")
	h.Set(webhook.AttemptHeader, "1")
	h.Set(webhook.IdempotencyKeyHeader, "5f0c6c8e-1d1b-4c43-9d7b-3a9f0b7c1e11")
	h.Set(webhook.SignatureHeader, webhook.Sign(secret, webhook.FieldsFromHeader(h), []byte(body)))

	fmt.Println(send(h, body))
	fmt.Println(send(h, body)) // the same request again: a replay
	forged := h.Clone()
	forged.Set(webhook.IdempotencyKeyHeader, "another-key")
	fmt.Println(send(forged, body))
	// Output:
	// processing 5f0c6c8e-1d1b-4c43-9d7b-3a9f0b7c1e11
	// 200
	// 401
	// 401
}
