package sendercache

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestPacerSpacesDeliveries(t *testing.T) {
	p := NewPacer(10, 2)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var waits []time.Duration
	for i := 0; i < 6; i++ {
		waits = append(waits, p.Admit(fmt.Sprint(i), now))
	}
	want := []time.Duration{0, 0, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 400 * time.Millisecond}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits = %v, want %v", waits, want)
		}
	}
	// A delivery that comes back early waits for the rest of its slot.
	if d := p.Admit("3", now.Add(50*time.Millisecond)); d != 150*time.Millisecond {
		t.Fatalf("early return waits %v, want 150ms", d)
	}
	// On time, it goes without taking another token.
	if d := p.Admit("3", now.Add(200*time.Millisecond)); d != 0 {
		t.Fatalf("on-time return waits %v, want 0", d)
	}
	// The next newcomer queues behind the reservations already made.
	if d := p.Admit("new", now.Add(200*time.Millisecond)); d != 300*time.Millisecond {
		t.Fatalf("newcomer waits %v, want 300ms", d)
	}
}

func TestNilPacerAdmitsEverything(t *testing.T) {
	var p *Pacer
	if d := p.Admit("x", time.Now()); d != 0 {
		t.Fatalf("nil pacer waited %v", d)
	}
	_ = rate.Inf
}
