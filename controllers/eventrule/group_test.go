package eventrule

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func TestGroupKey(t *testing.T) {
	e := &corev1.Event{
		Type: "Warning", Reason: "BackOff",
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web-0", Namespace: "shop"},
	}
	objLabels := labels.Set{"app": "web", "app.kubernetes.io/part-of": "shop"}
	tests := []struct {
		by   []string
		want string
	}{
		{nil, ""},
		{[]string{"reason"}, "reason=BackOff"},
		{[]string{"kind", "reason"}, "kind=Pod,reason=BackOff"},
		{[]string{"reason", "kind"}, "reason=BackOff,kind=Pod"},
		{[]string{"type", "name", "namespace"}, "type=Warning,name=web-0,namespace=shop"},
		{[]string{"label:app"}, "label:app=web"},
		{[]string{"label:app.kubernetes.io/part-of", "label:missing"}, "label:app.kubernetes.io/part-of=shop,label:missing="},
	}
	for _, tc := range tests {
		if got := GroupKey(tc.by, e, objLabels); got != tc.want {
			t.Errorf("GroupKey(%v) = %q, want %q", tc.by, got, tc.want)
		}
	}
	if needsLabels([]string{"reason"}) || !needsLabels([]string{"reason", "label:app"}) {
		t.Error("needsLabels")
	}
}

func TestGroupNotificationName(t *testing.T) {
	w := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	a := GroupNotificationName("flood", "reason=BackOff", w, 1)
	if a != GroupNotificationName("flood", "reason=BackOff", w, 1) {
		t.Fatal("names are not deterministic")
	}
	for _, other := range []string{
		GroupNotificationName("flood", "reason=Unhealthy", w, 1),
		GroupNotificationName("flood", "reason=BackOff", w.Add(time.Minute), 1),
		GroupNotificationName("flood", "reason=BackOff", w, 2),
		GroupNotificationName("flood2", "reason=BackOff", w, 1),
	} {
		if other == a {
			t.Errorf("%s collides", other)
		}
	}
	long := GroupNotificationName(string(make([]byte, 300)), "k", w, 1)
	if len(long) > 253 {
		t.Errorf("name of %d characters", len(long))
	}
}

func TestGroupObjectsIsBounded(t *testing.T) {
	var batch []groupedEvent
	for i := range 30 {
		e := &corev1.Event{InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: string(rune('a'+i%26)) + "x"}}
		batch = append(batch, groupedEvent{e: e}, groupedEvent{e: e})
	}
	got := groupObjects(batch)
	if want := " and 6 more"; len(got) == 0 || got[len(got)-len(want):] != want {
		t.Errorf("groupObjects = %q, want 20 objects and %q", got, want)
	}
}
