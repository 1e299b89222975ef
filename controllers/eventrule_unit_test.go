package controllers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

func TestThrottleWindow(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		occurred string
		throttle time.Duration
		want     string
	}{
		{"2026-11-28T10:09:59Z", 10 * time.Minute, "2026-11-28T10:00:00Z"},
		{"2026-11-28T10:10:00Z", 10 * time.Minute, "2026-11-28T10:10:00Z"},
		{"2026-11-28T10:10:00+01:00", 10 * time.Minute, "2026-11-28T09:10:00Z"}, // zone-independent
		{"2026-11-28T10:44:00Z", time.Hour, "2026-11-28T10:00:00Z"},
		{"2026-11-28T10:44:07Z", 0, "2026-11-28T10:44:07Z"}, // no throttle: one window per second
	}
	for _, tc := range tests {
		if got := ThrottleWindow(at(tc.occurred), tc.throttle); !got.Equal(at(tc.want)) {
			t.Errorf("ThrottleWindow(%s, %s) = %s, want %s", tc.occurred, tc.throttle, got, tc.want)
		}
	}
	w := at("2026-11-28T10:00:00Z")
	a := EventNotificationName("crashloop", "Pod", "web-0", "BackOff", w)
	if a != EventNotificationName("crashloop", "Pod", "web-0", "BackOff", w) {
		t.Fatal("names are not deterministic")
	}
	for _, other := range []string{
		EventNotificationName("crashloop", "Pod", "web-1", "BackOff", w),
		EventNotificationName("crashloop", "Pod", "web-0", "Failed", w),
		EventNotificationName("crashloop", "Pod", "web-0", "BackOff", w.Add(10*time.Minute)),
		EventNotificationName("other", "Pod", "web-0", "BackOff", w),
	} {
		if other == a {
			t.Errorf("%s collides", other)
		}
	}
}

func TestEventMatching(t *testing.T) {
	ev := func(apiVersion, kind, typ, reason string) *corev1.Event {
		return &corev1.Event{
			InvolvedObject: corev1.ObjectReference{APIVersion: apiVersion, Kind: kind, Name: "x"},
			Type:           typ, Reason: reason,
		}
	}
	everything := &notifyv1.EventMatch{}
	crash := &notifyv1.EventMatch{Types: []string{"Warning"}, Reasons: []string{"BackOff"}, InvolvedKinds: []string{"Pod"}}
	if !quickMatch(everything, ev("v1", "Pod", "Normal", "Pulled")) || !quickMatch(crash, ev("v1", "Pod", "Warning", "BackOff")) {
		t.Error("matching Events rejected")
	}
	for _, e := range []*corev1.Event{
		ev("v1", "Pod", "Normal", "BackOff"),
		ev("v1", "Pod", "Warning", "Failed"),
		ev("apps/v1", "Deployment", "Warning", "BackOff"),
	} {
		if quickMatch(crash, e) {
			t.Errorf("%+v matched", e)
		}
	}
	// A rule matching everything must still never see Herald's own Events,
	// or each Notification's Events would make another Notification.
	if !isHeraldEvent(ev(notifyv1.GroupVersion.String(), "Notification", "Normal", "Delivered")) || isHeraldEvent(ev("v1", "Pod", "Normal", "Pulled")) {
		t.Error("isHeraldEvent is wrong")
	}
}
