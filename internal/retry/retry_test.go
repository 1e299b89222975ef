package retry

import (
	"math"
	"strings"
	"testing"
	"time"
)

func constRnd(v float64) func() float64 { return func() float64 { return v } }

func TestDefault(t *testing.T) {
	p := Default()
	if err := p.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	// The documented promise: 4 attempts, 1s, 2s, 4s apart, then stop.
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}
	for i, w := range want {
		d, ok := p.Next(i+1, 0, nil)
		if !ok || d != w {
			t.Errorf("Next(%d) = %v, %v; want %v, true", i+1, d, ok, w)
		}
	}
	if d, ok := p.Next(4, 0, nil); ok || d != 0 {
		t.Errorf("Next(4) = %v, %v; want 0, false", d, ok)
	}
}

func TestDelay(t *testing.T) {
	exp := Policy{Strategy: Exponential, MaxAttempts: 50, InitialDelay: time.Second, MaxDelay: time.Minute}
	lin := Policy{Strategy: Linear, MaxAttempts: 50, InitialDelay: 10 * time.Second, MaxDelay: 35 * time.Second}
	fix := Policy{Strategy: Fixed, MaxAttempts: 50, InitialDelay: 3 * time.Second, MaxDelay: time.Minute}
	uncapped := Policy{Strategy: Exponential, InitialDelay: time.Second}
	uncappedLin := Policy{Strategy: Linear, InitialDelay: time.Hour}
	huge := Policy{Strategy: Exponential, InitialDelay: time.Duration(math.MaxInt64 / 2), MaxDelay: math.MaxInt64}
	fixAboveCap := Policy{Strategy: Fixed, InitialDelay: time.Minute, MaxDelay: time.Second}
	unknown := Policy{Strategy: "Bogus", InitialDelay: time.Second, MaxDelay: time.Minute}

	cases := []struct {
		name    string
		p       Policy
		attempt int
		want    time.Duration
	}{
		{"exp 1", exp, 1, time.Second},
		{"exp 2", exp, 2, 2 * time.Second},
		{"exp 3", exp, 3, 4 * time.Second},
		{"exp 6", exp, 6, 32 * time.Second},
		{"exp 7 capped", exp, 7, time.Minute},
		{"exp 62 capped", exp, 62, time.Minute},
		{"exp 63 capped", exp, 63, time.Minute},
		{"exp 64 capped", exp, 64, time.Minute},
		{"exp 1000 capped", exp, 1000, time.Minute},
		{"exp attempt 0 counts as 1", exp, 0, time.Second},
		{"exp negative attempt counts as 1", exp, -5, time.Second},
		{"exp uncapped saturates", uncapped, 1000, math.MaxInt64},
		{"exp uncapped 30", uncapped, 31, time.Second << 30},
		{"exp huge initial", huge, 3, math.MaxInt64},
		{"lin 1", lin, 1, 10 * time.Second},
		{"lin 3", lin, 3, 30 * time.Second},
		{"lin 4 capped", lin, 4, 35 * time.Second},
		{"lin 1000 capped", lin, 1000, 35 * time.Second},
		{"lin uncapped saturates", uncappedLin, math.MaxInt, math.MaxInt64},
		{"fixed 1", fix, 1, 3 * time.Second},
		{"fixed 40", fix, 40, 3 * time.Second},
		{"fixed above cap", fixAboveCap, 1, time.Second},
		{"unknown falls back to exponential", unknown, 3, 4 * time.Second},
		{"zero initial", Policy{Strategy: Fixed}, 1, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.p.Delay(c.attempt, nil)
			if got != c.want {
				t.Errorf("Delay(%d) = %v, want %v", c.attempt, got, c.want)
			}
			if got < 0 {
				t.Errorf("Delay(%d) is negative", c.attempt)
			}
		})
	}
}

func TestDelayJitter(t *testing.T) {
	p := Policy{Strategy: Exponential, MaxAttempts: 10, InitialDelay: time.Second, MaxDelay: 10 * time.Second, Jitter: 0.5}
	cases := []struct {
		name    string
		p       Policy
		attempt int
		rnd     func() float64
		want    time.Duration
	}{
		{"nil rnd means no jitter", p, 2, nil, 2 * time.Second},
		{"rnd 0 keeps full delay", p, 2, constRnd(0), 2 * time.Second},
		{"rnd 0.5 cuts a quarter", p, 2, constRnd(0.5), 1500 * time.Millisecond},
		{"rnd near 1 approaches lower bound", p, 2, constRnd(0.999999), time.Second + time.Microsecond},
		{"capped delay is jittered below the cap", p, 20, constRnd(0.5), 7500 * time.Millisecond},
		{"rnd above 1 is clamped", p, 2, constRnd(7), time.Second},
		{"negative rnd is ignored", p, 2, constRnd(-1), 2 * time.Second},
		{"NaN rnd is ignored", p, 2, constRnd(math.NaN()), 2 * time.Second},
		{"zero jitter ignores rnd", Policy{Strategy: Fixed, InitialDelay: time.Second, MaxDelay: time.Second}, 1, constRnd(0.9), time.Second},
		{"full jitter can reach zero", Policy{Strategy: Fixed, InitialDelay: time.Second, MaxDelay: time.Second, Jitter: 1}, 1, constRnd(1), 0},
		{"jitter above 1 is clamped", Policy{Strategy: Fixed, InitialDelay: time.Second, MaxDelay: time.Second, Jitter: 3}, 1, constRnd(0.5), 500 * time.Millisecond},
		{"saturated delay does not overflow", Policy{Strategy: Exponential, InitialDelay: time.Second, Jitter: 1}, 1000, constRnd(0.999), time.Duration(float64(math.MaxInt64) * 0.001)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.p.Delay(c.attempt, c.rnd)
			diff := got - c.want
			if diff < 0 {
				diff = -diff
			}
			// Float rounding may move the result by a hair; anything
			// beyond a microsecond on these scales is a real bug. The
			// saturated case is compared relatively.
			tol := time.Microsecond
			if c.want > time.Hour {
				tol = c.want / 1e6
			}
			if diff > tol {
				t.Errorf("Delay(%d) = %v, want %v", c.attempt, got, c.want)
			}
		})
	}
}

func TestDelayJitterBounds(t *testing.T) {
	// Sweep rnd over [0,1) and check every result stays in
	// [d*(1-Jitter), d] for each strategy, including capped attempts.
	for _, s := range []Strategy{Exponential, Linear, Fixed} {
		p := Policy{Strategy: s, MaxAttempts: 50, InitialDelay: 700 * time.Millisecond, MaxDelay: 9 * time.Second, Jitter: 0.3}
		for attempt := 1; attempt <= 50; attempt++ {
			d := p.Delay(attempt, nil)
			lo := time.Duration(float64(d) * (1 - p.Jitter))
			for i := 0; i < 100; i++ {
				r := float64(i) / 100
				got := p.Delay(attempt, constRnd(r))
				if got > d || got < lo-1 || got > p.MaxDelay {
					t.Fatalf("%s attempt %d rnd %v: %v outside [%v, %v]", s, attempt, r, got, lo, d)
				}
			}
		}
	}
}

func TestNext(t *testing.T) {
	p := Policy{Strategy: Exponential, MaxAttempts: 3, InitialDelay: time.Second, MaxDelay: 10 * time.Second, Jitter: 0.5}
	cases := []struct {
		name       string
		attempt    int
		retryAfter time.Duration
		rnd        func() float64
		wantDelay  time.Duration
		wantRetry  bool
	}{
		{"first failure", 1, 0, nil, time.Second, true},
		{"second failure", 2, 0, nil, 2 * time.Second, true},
		{"second failure jittered", 2, 0, constRnd(1), time.Second, true},
		{"exhausted", 3, 0, nil, 0, false},
		{"past exhaustion", 9, 0, nil, 0, false},
		{"exhausted even with retry-after", 3, 30 * time.Second, nil, 0, false},
		{"retry-after overrides delay", 1, 7 * time.Second, nil, 7 * time.Second, true},
		{"retry-after shorter than delay still wins", 2, 500 * time.Millisecond, nil, 500 * time.Millisecond, true},
		{"retry-after beyond MaxDelay is capped", 1, time.Hour, nil, 10 * time.Second, true},
		{"retry-after of a year is capped", 1, 31536000 * time.Second, nil, 10 * time.Second, true},
		{"retry-after at MaxDelay is kept", 2, 10 * time.Second, nil, 10 * time.Second, true},
		{"retry-after just above MaxDelay is capped", 2, 10*time.Second + time.Nanosecond, nil, 10 * time.Second, true},
		{"capped retry-after is not jittered", 1, time.Hour, constRnd(0.9), 10 * time.Second, true},
		{"exhausted even with a huge retry-after", 3, 31536000 * time.Second, nil, 0, false},
		{"retry-after is not jittered", 1, 7 * time.Second, constRnd(0.9), 7 * time.Second, true},
		{"negative retry-after ignored", 1, -time.Second, nil, time.Second, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, ok := p.Next(c.attempt, c.retryAfter, c.rnd)
			if d != c.wantDelay || ok != c.wantRetry {
				t.Errorf("Next(%d, %v) = %v, %v; want %v, %v", c.attempt, c.retryAfter, d, ok, c.wantDelay, c.wantRetry)
			}
		})
	}
}

// TestNextRetryAfterCap checks the cap against policies as deliveries
// carry them, including the default and one without a cap.
func TestNextRetryAfterCap(t *testing.T) {
	year := 365 * 24 * time.Hour
	cases := []struct {
		name       string
		p          Policy
		retryAfter time.Duration
		want       time.Duration
	}{
		{"default policy caps at 5m", Default(), year, 5 * time.Minute},
		{"default policy keeps 2m", Default(), 2 * time.Minute, 2 * time.Minute},
		{"linear", Policy{Strategy: Linear, MaxAttempts: 5, InitialDelay: time.Second, MaxDelay: time.Hour}, year, time.Hour},
		{"fixed, cap equal to initial", Policy{Strategy: Fixed, MaxAttempts: 5, InitialDelay: time.Minute, MaxDelay: time.Minute}, 90 * time.Second, time.Minute},
		{"no MaxDelay means no cap", Policy{Strategy: Exponential, MaxAttempts: 5, InitialDelay: time.Second}, year, year},
		{"resolved from an API policy", Resolve(nil, Policy{Strategy: Exponential, MaxAttempts: 4, InitialDelay: 100 * time.Millisecond, MaxDelay: 2 * time.Second}), year, 2 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, ok := c.p.Next(1, c.retryAfter, nil)
			if !ok || d != c.want {
				t.Errorf("Next(1, %v) = %v, %v; want %v, true", c.retryAfter, d, ok, c.want)
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	d := Default()
	d.Jitter = 0.2
	cases := []struct {
		name string
		in   Policy
		want Policy
	}{
		{"empty takes everything", Policy{}, d},
		{"set fields are kept", Policy{Strategy: Linear, MaxAttempts: 9, InitialDelay: 2 * time.Second, MaxDelay: time.Hour, Jitter: 0.7},
			Policy{Strategy: Linear, MaxAttempts: 9, InitialDelay: 2 * time.Second, MaxDelay: time.Hour, Jitter: 0.7}},
		{"partial", Policy{Strategy: Fixed, MaxDelay: time.Minute},
			Policy{Strategy: Fixed, MaxAttempts: 4, InitialDelay: time.Second, MaxDelay: time.Minute, Jitter: 0.2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.in.WithDefaults(d); got != c.want {
				t.Errorf("WithDefaults = %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := Default()
	with := func(f func(*Policy)) Policy { p := ok; f(&p); return p }
	cases := []struct {
		name string
		p    Policy
		want []string // substrings; none means valid
	}{
		{"default", ok, nil},
		{"bounds inclusive", with(func(p *Policy) { p.MaxAttempts = 50; p.MaxDelay = p.InitialDelay; p.Jitter = 1 }), nil},
		{"one attempt", with(func(p *Policy) { p.MaxAttempts = 1 }), nil},
		{"linear", with(func(p *Policy) { p.Strategy = Linear }), nil},
		{"fixed", with(func(p *Policy) { p.Strategy = Fixed }), nil},
		{"zero attempts", with(func(p *Policy) { p.MaxAttempts = 0 }), []string{"maxAttempts must be between 1 and 50, got 0"}},
		{"too many attempts", with(func(p *Policy) { p.MaxAttempts = 51 }), []string{"maxAttempts must be between 1 and 50, got 51"}},
		{"zero initial", with(func(p *Policy) { p.InitialDelay = 0 }), []string{"initialDelay must be positive, got 0s"}},
		{"negative initial", with(func(p *Policy) { p.InitialDelay = -time.Second }), []string{"initialDelay must be positive, got -1s"}},
		{"max below initial", with(func(p *Policy) { p.MaxDelay = 500 * time.Millisecond }), []string{"maxDelay (500ms) must not be shorter than initialDelay (1s)"}},
		{"negative jitter", with(func(p *Policy) { p.Jitter = -0.1 }), []string{"jitter must be between 0 and 1, got -0.1"}},
		{"jitter above 1", with(func(p *Policy) { p.Jitter = 1.5 }), []string{"jitter must be between 0 and 1, got 1.5"}},
		{"NaN jitter", with(func(p *Policy) { p.Jitter = math.NaN() }), []string{"jitter must be between 0 and 1, got NaN"}},
		{"unknown strategy", with(func(p *Policy) { p.Strategy = "Fibonacci" }), []string{`unknown strategy "Fibonacci" (want one of Exponential, Linear, Fixed)`}},
		{"missing strategy", with(func(p *Policy) { p.Strategy = "" }), []string{"strategy is required"}},
		{"all problems reported", Policy{Strategy: "x", Jitter: 2, MaxDelay: -1},
			[]string{"invalid retry policy: ", "unknown strategy", "maxAttempts", "initialDelay", "maxDelay", "jitter"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.p.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want error containing %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}
