package eventrule

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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

func TestTrimEventKeepsWhatRulesUse(t *testing.T) {
	now := metav1.Now()
	e := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "web.1", Namespace: "prod", UID: "u", ResourceVersion: "7",
			Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"c": "d"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}},
		InvolvedObject:      corev1.ObjectReference{Kind: "Pod", Name: "web", Namespace: "prod", APIVersion: "v1", FieldPath: "spec.containers{app}"},
		Type:                "Warning",
		Reason:              "BackOff",
		Message:             "Back-off restarting failed container",
		Count:               3,
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Series:              &corev1.EventSeries{Count: 4, LastObservedTime: metav1.NowMicro()},
		Source:              corev1.EventSource{Component: "kubelet", Host: "node-1"},
		ReportingController: "kubelet",
		ReportingInstance:   "node-1",
		Action:              "Restarting",
		Related:             &corev1.ObjectReference{Kind: "Node", Name: "node-1"},
	}
	want := e.DeepCopy()
	got, err := TrimEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	te := got.(*corev1.Event)
	if te.Labels != nil || te.Annotations != nil || te.ManagedFields != nil || te.Related != nil ||
		te.Source != (corev1.EventSource{}) || te.ReportingController != "" || te.ReportingInstance != "" || te.Action != "" {
		t.Errorf("unused fields kept: %+v", te)
	}
	if te.Name != want.Name || te.Namespace != want.Namespace || te.UID != want.UID || te.ResourceVersion != want.ResourceVersion ||
		te.InvolvedObject != want.InvolvedObject || te.Type != want.Type || te.Reason != want.Reason || te.Message != want.Message ||
		te.Count != want.Count || !te.FirstTimestamp.Equal(&want.FirstTimestamp) || !te.LastTimestamp.Equal(&want.LastTimestamp) ||
		te.Series == nil || te.Series.Count != 4 || eventCount(te) != eventCount(want) || occurrence(te) != occurrence(want) {
		t.Errorf("a field rules use was lost: got %+v, want %+v", te, want)
	}
}
