package apflimit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func newTestLimiter(t *testing.T, ceiling float64, burst int) (*Limiter, *clocktesting.FakeClock, *[]float64) {
	t.Helper()
	fc := clocktesting.NewFakeClock(time.Now())
	var rates []float64
	l, err := New(Options{
		Policy:       DefaultPolicy(ceiling),
		Burst:        burst,
		MaxPause:     DefaultMaxPause,
		Clock:        fc,
		OnRateChange: func(qps float64) { rates = append(rates, qps) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return l, fc, &rates
}

func TestLimiterFollowsAIMD(t *testing.T) {
	l, fc, rates := newTestLimiter(t, 100, 200)
	if l.QPS() != 100 {
		t.Fatalf("starts at %v, want the ceiling 100", l.QPS())
	}
	l.Throttled(0)
	l.Throttled(0) // same overload: within the cooldown
	if l.QPS() != 50 {
		t.Fatalf("after a burst of 429s: %v QPS, want 50", l.QPS())
	}
	if b := l.limiter.Burst(); b != 100 {
		t.Fatalf("burst at half the ceiling is %d, want 100", b)
	}
	fc.Step(2 * time.Second)
	l.Succeeded()
	if l.QPS() != 60 {
		t.Fatalf("after a calm interval: %v QPS, want 60", l.QPS())
	}
	want := []float64{100, 50, 60}
	if len(*rates) != len(want) {
		t.Fatalf("OnRateChange saw %v, want %v", *rates, want)
	}
	for i := range want {
		if (*rates)[i] != want[i] {
			t.Fatalf("OnRateChange saw %v, want %v", *rates, want)
		}
	}
}

func TestLimiterPacesTryAccept(t *testing.T) {
	l, fc, _ := newTestLimiter(t, 10, 2)
	if !l.TryAccept() || !l.TryAccept() {
		t.Fatal("the burst of 2 was not granted")
	}
	if l.TryAccept() {
		t.Fatal("a third request went through at once at 10 QPS, burst 2")
	}
	fc.Step(100 * time.Millisecond)
	if !l.TryAccept() {
		t.Fatal("no token after 1/10 s at 10 QPS")
	}
	if l.TryAccept() {
		t.Fatal("two tokens after 1/10 s at 10 QPS")
	}
}

func TestLimiterPausesForRetryAfter(t *testing.T) {
	l, fc, _ := newTestLimiter(t, 100, 200)
	l.Throttled(2 * time.Second)
	if l.TryAccept() {
		t.Fatal("accepted during a Retry-After pause")
	}
	fc.Step(2 * time.Second)
	if !l.TryAccept() {
		t.Fatal("still refusing after the Retry-After pause")
	}
	l.Throttled(time.Hour)
	fc.Step(DefaultMaxPause)
	if !l.TryAccept() {
		t.Fatal("a Retry-After longer than MaxPause held requests back beyond it")
	}
}

// TestLimiterPacesConcurrentWaits: at 10 QPS with a burst of 1, four
// concurrent Waits come out one per 100ms of the clock.
func TestLimiterPacesConcurrentWaits(t *testing.T) {
	l, fc, _ := newTestLimiter(t, 10, 1)
	if err := l.Wait(context.Background()); err != nil {
		t.Fatal(err) // the burst
	}
	const waiters = 4
	done := make(chan error, waiters)
	var wg sync.WaitGroup
	for range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done <- l.Wait(context.Background())
		}()
	}
	// Every waiter has its timer (delays 100, 200, 300, 400ms).
	waitFor(t, func() bool { return fc.Waiters() == waiters })
	for i := 1; i <= waiters; i++ {
		fc.Step(100 * time.Millisecond)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
			t.Fatalf("two Waits returned within one 100ms step (step %d)", i)
		default:
		}
	}
	wg.Wait()
}

func TestLimiterWaitRespectsContext(t *testing.T) {
	l, _, _ := newTestLimiter(t, 10, 1)
	if !l.TryAccept() {
		t.Fatal("burst not granted")
	}
	// Past the deadline before the token comes: refused at once, and the
	// reservation given back.
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if err := l.Wait(ctx); err == nil {
		t.Fatal("Wait with a deadline before the next token succeeded")
	}
	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := l.Wait(canceled); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on a canceled context: %v", err)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	if _, err := New(Options{Policy: DefaultPolicy(10), Burst: 0}); err == nil {
		t.Error("burst 0 accepted")
	}
	if _, err := New(Options{Policy: DefaultPolicy(0), Burst: 1}); err == nil {
		t.Error("ceiling 0 accepted")
	}
	if _, err := New(Options{Policy: DefaultPolicy(10), Burst: 1, MaxPause: -time.Second}); err == nil {
		t.Error("negative max pause accepted")
	}
}

// waitFor polls cond for up to 10s; the tests use it where another
// goroutine must reach a point first.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRetryAfterSpreadsTheWaiters: the requests held back by a pause go
// one at a time after it, at the (lowered) rate, not all at its end.
func TestRetryAfterSpreadsTheWaiters(t *testing.T) {
	l, fc, _ := newTestLimiter(t, 20, 20)
	l.Throttled(time.Second) // 10 QPS, burst 10, nothing until 1s from now
	const waiters = 3
	done := make(chan error, waiters)
	for range waiters {
		go func() { done <- l.Wait(context.Background()) }()
	}
	waitFor(t, func() bool { return fc.Waiters() == waiters })
	fc.Step(999 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("a Wait returned during the pause")
	default:
	}
	for i := range waiters {
		fc.Step(100 * time.Millisecond)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
			t.Fatalf("two Waits returned within one 100ms step after the pause (step %d)", i)
		default:
		}
	}
}
