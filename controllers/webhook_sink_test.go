package controllers_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"

	"github.com/herald-dev/herald/internal/channel/webhook"
)

// sinkRequest is one request a webhook sink received.
type sinkRequest struct {
	IdempotencyKey string
	Delivery       string
	Attempt        int
	Signature      string
	Timestamp      string
	Header         http.Header
	Body           []byte
	At             time.Time
	Status         int
}

// webhookSink is a real HTTP server that answers webhook deliveries as a
// script says and records every request.
type webhookSink struct {
	*httptest.Server
	mu       sync.Mutex
	requests []sinkRequest
	// respond decides the answer to the n-th request (0-based) of a
	// delivery; nil means 200 OK.
	respond func(delivery string, n int, w http.ResponseWriter) int
	// block, when non-nil, holds requests until it is closed.
	block chan struct{}
}

func newWebhookSink() *webhookSink {
	s := &webhookSink{}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

func (s *webhookSink) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	attempt, _ := strconv.Atoi(r.Header.Get(webhook.AttemptHeader))
	req := sinkRequest{
		IdempotencyKey: r.Header.Get(webhook.IdempotencyKeyHeader),
		Delivery:       r.Header.Get(webhook.DeliveryHeader),
		Attempt:        attempt,
		Signature:      r.Header.Get(webhook.SignatureHeader),
		Timestamp:      r.Header.Get(webhook.TimestampHeader),
		Header:         r.Header.Clone(),
		Body:           body,
		At:             time.Now(),
	}
	s.mu.Lock()
	block := s.block
	n := 0
	for _, prev := range s.requests {
		if prev.Delivery == req.Delivery {
			n++
		}
	}
	respond := s.respond
	s.mu.Unlock()

	if block != nil {
		select {
		case <-block:
		case <-r.Context().Done():
			return
		}
	}
	status := http.StatusOK
	if respond != nil {
		status = respond(req.Delivery, n, w)
	}
	req.Status = status
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.mu.Unlock()
	w.WriteHeader(status)
}

func (s *webhookSink) setRespond(f func(delivery string, n int, w http.ResponseWriter) int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.respond = f
}

func (s *webhookSink) setBlock(c chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.block = c
}

func (s *webhookSink) all() []sinkRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkRequest(nil), s.requests...)
}

// succeededKeys counts 2xx requests per idempotency key.
func (s *webhookSink) succeededKeys() map[string]int {
	out := map[string]int{}
	for _, r := range s.all() {
		if r.Status >= 200 && r.Status < 300 {
			out[r.IdempotencyKey]++
		}
	}
	return out
}
