package controllers_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testingclock "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/controllers/eventrule"
)

func createPod(ns, name string, labels map[string]string) *corev1.Pod {
	// Nothing runs pods in envtest; the object is only what Events refer to.
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}},
	}
	Expect(k8sClient.Create(suiteCtx, p)).To(Succeed())
	return p
}

var eventSeq int

// emit creates a core/v1 Event about obj, as a kubelet would.
func emit(obj client.Object, kind, typ, reason, message string, at time.Time) {
	eventSeq++
	apiVersion := "v1"
	if kind == "EventRule" {
		apiVersion = notifyv1.GroupVersion.String()
	}
	e := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%d", obj.GetName(), eventSeq), Namespace: obj.GetNamespace()},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: apiVersion, Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: obj.GetUID(),
		},
		Type: typ, Reason: reason, Message: message,
		FirstTimestamp: metav1.NewTime(at), LastTimestamp: metav1.NewTime(at), Count: 1,
		Source: corev1.EventSource{Component: "kubelet"},
	}
	Expect(k8sClient.Create(suiteCtx, e)).To(Succeed())
}

func getRule(ns, name string) *notifyv1.EventRule {
	var r notifyv1.EventRule
	Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name}, &r)).To(Succeed())
	return &r
}

func ruleNotifications(ns, rule string) []notifyv1.Notification {
	var list notifyv1.NotificationList
	Expect(k8sClient.List(suiteCtx, &list, client.InNamespace(ns), client.MatchingLabels{notifyv1.LabelEventRule: rule})).To(Succeed())
	return list.Items
}

// expectCounts waits for a rule's status counts.
func expectCounts(ns, rule string, matched, emitted, throttled int64) {
	Eventually(func(g Gomega) {
		st := getRule(ns, rule).Status
		g.Expect([]int64{st.Matched, st.Emitted, st.Throttled}).To(Equal([]int64{matched, emitted, throttled}),
			"matched, emitted, throttled")
	}).Should(Succeed())
}

func waitRuleReady(ns, name string, status metav1.ConditionStatus, reason string) {
	Eventually(func(g Gomega) {
		c := meta.FindStatusCondition(getRule(ns, name).Status.Conditions, notifyv1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(status), "condition: %+v", c)
		g.Expect(c.Reason).To(Equal(reason))
	}).Should(Succeed())
}

var _ = Describe("EventRules", func() {
	var (
		ns    string
		clock *testingclock.FakeClock
	)

	BeforeEach(func() {
		ns = newNamespace()
		// Second precision, as Event timestamps are.
		clock = testingclock.NewFakeClock(time.Now().Truncate(time.Second))
		opts := testOptions()
		opts.Clock = clock
		stop := startManager(opts)
		DeferCleanup(func() { stop() })
		createRecipient(ns, "alice", func(s *notifyv1.RecipientSpec) { s.Roles = []string{"sre"} })
	})

	It("turn a burst of matching Events into one Notification per object, reason and throttle window", func() {
		web := createPod(ns, "web-0", map[string]string{"app": "web"})
		db := createPod(ns, "db-0", map[string]string{"app": "db"})
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "web-config", Namespace: ns}}
		Expect(k8sClient.Create(suiteCtx, cm)).To(Succeed())
		Expect(k8sClient.Create(suiteCtx, &notifyv1.EventRule{
			ObjectMeta: metav1.ObjectMeta{Name: "crashloop", Namespace: ns},
			Spec: notifyv1.EventRuleSpec{
				Match: notifyv1.EventMatch{
					Types:         []string{"Warning"},
					Reasons:       []string{"BackOff"},
					InvolvedKinds: []string{"Pod"},
					Selector:      &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				},
				Throttle: metav1.Duration{Duration: 10 * time.Minute},
				Notification: notifyv1.NotificationTemplateSpec{Spec: notifyv1.NotificationSpec{
					Type:     notifyv1.TypeWarning,
					Title:    "{{ .kind }} {{ .namespace }}/{{ .name }}: {{ .reason }}",
					Message:  "{{ .message }} (seen {{ .count }} times, last at {{ .lastTimestamp }})",
					Audience: notifyv1.Audience{Roles: []string{"sre"}},
					Channels: []notifyv1.Channel{notifyv1.ChannelInApp},
				}},
			},
		})).To(Succeed())
		waitRuleReady(ns, "crashloop", metav1.ConditionTrue, notifyv1.ReasonWatching)

		By("a burst of 20 matching Events")
		burst := clock.Now()
		for range 20 {
			emit(web, "Pod", "Warning", "BackOff", "Back-off restarting failed container app", burst)
		}
		expectCounts(ns, "crashloop", 20, 1, 19)
		notifs := ruleNotifications(ns, "crashloop")
		Expect(notifs).To(HaveLen(1))
		window := eventrule.ThrottleWindow(burst, 10*time.Minute)
		Expect(notifs[0].Name).To(Equal(eventrule.EventNotificationName("crashloop", "Pod", "web-0", "BackOff", window)))
		Expect(notifs[0].Annotations).To(HaveKeyWithValue(eventrule.AnnotationInvolvedObject, "Pod/web-0"))
		n := waitPhase(ns, notifs[0].Name, notifyv1.NotificationDelivered)
		Expect(n.Spec.Title).To(Equal(fmt.Sprintf("Pod %s/web-0: BackOff", ns)))
		Expect(n.Spec.Message).To(Equal("Back-off restarting failed container app (seen 1 times, last at " + burst.UTC().Format(time.RFC3339) + ")"))
		Expect(getRule(ns, "crashloop").Status.LastEmitTime.Time.Equal(burst)).To(BeTrue())

		By("Events that do not match")
		emit(web, "Pod", "Warning", "Failed", "wrong reason", clock.Now())
		emit(web, "Pod", "Normal", "BackOff", "wrong type", clock.Now())
		emit(cm, "ConfigMap", "Warning", "BackOff", "wrong kind", clock.Now())
		emit(db, "Pod", "Warning", "BackOff", "selector does not match", clock.Now())
		emit(web, "Pod", "Warning", "BackOff", "too old to act on", clock.Now().Add(-time.Hour))
		// Then one that matches, in the same window: once it is counted,
		// every Event before it has been looked at too.
		emit(web, "Pod", "Warning", "BackOff", "still crashing", clock.Now())
		expectCounts(ns, "crashloop", 21, 1, 20)
		Expect(ruleNotifications(ns, "crashloop")).To(HaveLen(1))

		By("a matching Event after the throttle window")
		clock.Step(10 * time.Minute)
		emit(web, "Pod", "Warning", "BackOff", "crashing again", clock.Now())
		expectCounts(ns, "crashloop", 22, 2, 20)
		Expect(ruleNotifications(ns, "crashloop")).To(HaveLen(2))
		second := eventrule.EventNotificationName("crashloop", "Pod", "web-0", "BackOff", eventrule.ThrottleWindow(clock.Now(), 10*time.Minute))
		Expect(getNotification(ns, second).Spec.Message).To(HavePrefix("crashing again"))
	})

	It("hold matching Events until their template exists, then fill its params from the Event", func() {
		web := createPod(ns, "web-0", nil)
		Expect(k8sClient.Create(suiteCtx, &notifyv1.EventRule{
			ObjectMeta: metav1.ObjectMeta{Name: "probes", Namespace: ns},
			Spec: notifyv1.EventRuleSpec{
				Match:    notifyv1.EventMatch{Reasons: []string{"Unhealthy"}},
				Throttle: metav1.Duration{Duration: time.Hour},
				Notification: notifyv1.NotificationTemplateSpec{
					Metadata: notifyv1.ObjectMetaTemplate{Labels: map[string]string{"team": "web"}},
					Spec: notifyv1.NotificationSpec{
						TemplateRef: &notifyv1.TemplateReference{Name: "pod-unhealthy"},
						// Rule params are templates over the event fields.
						Params:   map[string]string{"pod": "{{ .namespace }}/{{ .name }}"},
						Audience: notifyv1.Audience{Users: []string{"alice"}},
						Channels: []notifyv1.Channel{notifyv1.ChannelInApp},
					},
				},
			},
		})).To(Succeed())
		waitRuleReady(ns, "probes", metav1.ConditionFalse, notifyv1.ReasonTemplateNotFound)
		emit(web, "Pod", "Warning", "Unhealthy", "Readiness probe failed: HTTP 503", clock.Now())
		Expect(getRule(ns, "probes").Status.Matched).To(BeZero())

		Expect(k8sClient.Create(suiteCtx, &notifyv1.NotificationTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "pod-unhealthy", Namespace: ns},
			Spec: notifyv1.NotificationTemplateContent{
				Params: []notifyv1.TemplateParam{
					{Name: "pod", Required: true},
					{Name: "reason", Required: true},
					{Name: "message", Required: true},
					{Name: "count", Default: "1"},
				},
				Title:   "{{ .pod }} is {{ .reason }}",
				Message: "{{ .message }} ({{ .count }}x)",
			},
		})).To(Succeed())
		waitRuleReady(ns, "probes", metav1.ConditionTrue, notifyv1.ReasonWatching)
		expectCounts(ns, "probes", 1, 1, 0)
		notifs := ruleNotifications(ns, "probes")
		Expect(notifs).To(HaveLen(1))
		Expect(notifs[0].Labels).To(HaveKeyWithValue("team", "web"))
		// Only the event fields the template declares are passed on.
		Expect(notifs[0].Spec.Params).To(Equal(map[string]string{
			"pod": ns + "/web-0", "reason": "Unhealthy", "message": "Readiness probe failed: HTTP 503", "count": "1",
		}))
		waitPhase(ns, notifs[0].Name, notifyv1.NotificationDelivered)
		d := getDelivery(ns, notifs[0].Name, notifyv1.ChannelInApp, "alice")
		Expect(d.Spec.Content.Title).To(Equal(ns + "/web-0 is Unhealthy"))
		Expect(d.Spec.Content.Message).To(Equal("Readiness probe failed: HTTP 503 (1x)"))
	})
})
