package apflimit

import (
	"testing"
	"time"
)

func TestAIMD(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	policy := Policy{Ceiling: 100, Floor: 5, DecreaseFactor: 0.5, IncreaseStep: 0.1, IncreaseInterval: 2 * time.Second, Cooldown: time.Second}
	type event struct {
		at        time.Duration
		throttled bool // else a success
		wantRate  float64
		wantMoved bool
	}
	tests := []struct {
		name   string
		events []event
	}{
		{"successes at the ceiling change nothing", []event{
			{at: 0, wantRate: 100},
			{at: 10 * time.Second, wantRate: 100},
		}},
		{"a 429 halves the rate", []event{
			{at: time.Second, throttled: true, wantRate: 50, wantMoved: true},
		}},
		{"429s within the cooldown count once", []event{
			{at: time.Second, throttled: true, wantRate: 50, wantMoved: true},
			{at: time.Second + 10*time.Millisecond, throttled: true, wantRate: 50},
			{at: time.Second + 999*time.Millisecond, throttled: true, wantRate: 50},
			{at: 2 * time.Second, throttled: true, wantRate: 25, wantMoved: true},
		}},
		{"the cooldown runs from the last decrease, not the last 429", []event{
			{at: 0, throttled: true, wantRate: 50, wantMoved: true},
			{at: 900 * time.Millisecond, throttled: true, wantRate: 50},
			{at: 1500 * time.Millisecond, throttled: true, wantRate: 25, wantMoved: true},
		}},
		{"never below the floor", []event{
			{at: 1 * time.Second, throttled: true, wantRate: 50, wantMoved: true},
			{at: 2 * time.Second, throttled: true, wantRate: 25, wantMoved: true},
			{at: 3 * time.Second, throttled: true, wantRate: 12.5, wantMoved: true},
			{at: 4 * time.Second, throttled: true, wantRate: 6.25, wantMoved: true},
			{at: 5 * time.Second, throttled: true, wantRate: 5, wantMoved: true},
			{at: 6 * time.Second, throttled: true, wantRate: 5},
		}},
		{"successes raise the rate a step per calm interval", []event{
			{at: 0, throttled: true, wantRate: 50, wantMoved: true},
			{at: 1 * time.Second, wantRate: 50},
			{at: 2 * time.Second, wantRate: 60, wantMoved: true},
			{at: 3 * time.Second, wantRate: 60},
			{at: 4 * time.Second, wantRate: 70, wantMoved: true},
		}},
		{"one late success after a long calm raises one step only", []event{
			{at: 0, throttled: true, wantRate: 50, wantMoved: true},
			{at: time.Minute, wantRate: 60, wantMoved: true},
			{at: time.Minute + time.Second, wantRate: 60},
		}},
		{"a 429 in the cooldown still restarts the calm interval", []event{
			{at: 0, throttled: true, wantRate: 50, wantMoved: true},
			{at: 500 * time.Millisecond, throttled: true, wantRate: 50},
			{at: 2 * time.Second, wantRate: 50},
			{at: 2500 * time.Millisecond, wantRate: 60, wantMoved: true},
		}},
		{"never above the ceiling", []event{
			{at: 0, throttled: true, wantRate: 50, wantMoved: true},
			{at: 2 * time.Second, wantRate: 60, wantMoved: true},
			{at: 4 * time.Second, wantRate: 70, wantMoved: true},
			{at: 6 * time.Second, wantRate: 80, wantMoved: true},
			{at: 8 * time.Second, wantRate: 90, wantMoved: true},
			{at: 10 * time.Second, wantRate: 100, wantMoved: true},
			{at: 12 * time.Second, wantRate: 100},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := NewAIMD(policy, t0)
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range tt.events {
				var moved bool
				if e.throttled {
					moved = a.Throttled(at(e.at))
				} else {
					moved = a.Succeeded(at(e.at))
				}
				// The steps are exact in binary up to float rounding of
				// tenths; compare with a tolerance.
				if d := a.Rate() - e.wantRate; d > 1e-9 || d < -1e-9 || moved != e.wantMoved {
					t.Fatalf("event %d (at %s, throttled %v): rate %v moved %v, want %v moved %v", i, e.at, e.throttled, a.Rate(), moved, e.wantRate, e.wantMoved)
				}
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	ok := DefaultPolicy(100)
	if err := ok.Validate(); err != nil {
		t.Fatalf("default policy: %v", err)
	}
	if low := DefaultPolicy(2); low.Floor != 2 || low.Validate() != nil {
		t.Fatalf("a ceiling under the default floor must lower the floor: %+v", low)
	}
	for name, mutate := range map[string]func(*Policy){
		"zero ceiling":       func(p *Policy) { p.Ceiling = 0 },
		"floor over ceiling": func(p *Policy) { p.Floor = 200 },
		"zero floor":         func(p *Policy) { p.Floor = 0 },
		"factor 1":           func(p *Policy) { p.DecreaseFactor = 1 },
		"factor 0":           func(p *Policy) { p.DecreaseFactor = 0 },
		"no step":            func(p *Policy) { p.IncreaseStep = 0 },
		"no interval":        func(p *Policy) { p.IncreaseInterval = 0 },
		"negative cooldown":  func(p *Policy) { p.Cooldown = -time.Second },
	} {
		p := ok
		mutate(&p)
		if p.Validate() == nil {
			t.Errorf("%s: accepted %+v", name, p)
		}
	}
}
