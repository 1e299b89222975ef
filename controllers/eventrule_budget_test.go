package controllers_test

import (
	"fmt"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	testingclock "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/controllers/eventrule"
)

// budgetRule is a rule on Warning Events of Pods with the given budget
// (0: the default) and grouping.
func budgetRule(ns, name string, perMinute int32, grouping *notifyv1.EventGrouping) *notifyv1.EventRule {
	return &notifyv1.EventRule{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: notifyv1.EventRuleSpec{
			Match:                     notifyv1.EventMatch{Types: []string{"Warning"}, InvolvedKinds: []string{"Pod"}},
			MaxNotificationsPerMinute: perMinute,
			Grouping:                  grouping,
			Notification: notifyv1.NotificationTemplateSpec{Spec: notifyv1.NotificationSpec{
				Type:     notifyv1.TypeWarning,
				Title:    "{{ .kind }} {{ .name }}: {{ .reason }}",
				Message:  "{{ .message }}",
				Audience: notifyv1.Audience{Roles: []string{"sre"}},
				Channels: []notifyv1.Channel{notifyv1.ChannelInApp},
			}},
		},
	}
}

// podRef is a Pod that Events refer to; it need not exist.
func podRef(ns, name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID(ns + "-" + name)}}
}

func rateLimitedCondition(g Gomega, ns, rule string) *metav1.Condition {
	c := meta.FindStatusCondition(getRule(ns, rule).Status.Conditions, notifyv1.ConditionRateLimited)
	g.Expect(c).NotTo(BeNil())
	return c
}

// budgetEvents counts the BudgetExceeded Events on a rule, a series'
// repeats included.
func budgetEvents(g Gomega, ns, rule string) (count int, messages []string) {
	var list corev1.EventList
	g.Expect(k8sClient.List(suiteCtx, &list, client.InNamespace(ns))).To(Succeed())
	for _, e := range list.Items {
		if e.InvolvedObject.Kind != "EventRule" || e.InvolvedObject.Name != rule || e.Reason != notifyv1.ReasonBudgetExceeded {
			continue
		}
		n := max(int(e.Count), 1)
		if e.Series != nil {
			n = max(n, int(e.Series.Count))
		}
		count += n
		messages = append(messages, e.Message)
	}
	return count, messages
}

var _ = Describe("EventRule budget", func() {
	var clock *testingclock.FakeClock

	BeforeEach(func() {
		clock = testingclock.NewFakeClock(time.Now().Truncate(time.Second))
		opts := testOptions()
		opts.Clock = clock
		stop := startManager(opts)
		DeferCleanup(func() { stop() })
	})

	It("holds a flooding rule to its budget, counts what it held back and leaves other tenants' rules alone", func() {
		flooded, calm := newNamespace(), newNamespace()
		for _, ns := range []string{flooded, calm} {
			createRecipient(ns, "alice", func(s *notifyv1.RecipientSpec) { s.Roles = []string{"sre"} })
		}
		Expect(k8sClient.Create(suiteCtx, budgetRule(flooded, "flood", 10, nil))).To(Succeed())
		Expect(k8sClient.Create(suiteCtx, budgetRule(calm, "calm", 0, nil))).To(Succeed())
		waitRuleReady(flooded, "flood", metav1.ConditionTrue, notifyv1.ReasonWatching)
		waitRuleReady(calm, "calm", metav1.ConditionTrue, notifyv1.ReasonWatching)
		Expect(getRule(calm, "calm").Spec.MaxNotificationsPerMinute).To(BeEquivalentTo(notifyv1.DefaultEventRuleNotificationsPerMinute), "the API default")
		Eventually(func(g Gomega) {
			g.Expect(rateLimitedCondition(g, flooded, "flood").Reason).To(Equal(notifyv1.ReasonWithinBudget))
		}).Should(Succeed())

		By("200 Events about 200 Pods within one minute")
		for i := range 200 {
			emit(podRef(flooded, fmt.Sprintf("web-%d", i)), "Pod", "Warning", "BackOff", "crashing", clock.Now())
		}
		Eventually(func(g Gomega) {
			st := getRule(flooded, "flood").Status
			g.Expect([]int64{st.Matched, st.Emitted, st.Throttled, st.RateLimited}).To(Equal([]int64{200, 10, 0, 190}),
				"matched, emitted, throttled, rateLimited")
		}).Should(Succeed())
		Expect(ruleNotifications(flooded, "flood")).To(HaveLen(10))
		Eventually(func(g Gomega) {
			c := rateLimitedCondition(g, flooded, "flood")
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Reason).To(Equal(notifyv1.ReasonBudgetExceeded))
			g.Expect(c.Message).To(ContainSubstring("budget of 10 Notifications per minute (spec.maxNotificationsPerMinute 10)"))
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			n, _ := budgetEvents(g, flooded, "flood")
			g.Expect(n).To(Equal(1))
		}).Should(Succeed())

		By("repeats of a Pod that got its Notification are throttled, not rate limited")
		emit(podRef(flooded, "web-0"), "Pod", "Warning", "BackOff", "crashing", clock.Now())
		Eventually(func(g Gomega) {
			st := getRule(flooded, "flood").Status
			g.Expect([]int64{st.Matched, st.Throttled, st.RateLimited}).To(Equal([]int64{201, 1, 190}))
		}).Should(Succeed())

		By("the other namespace's rule makes every Notification")
		for i := range 20 {
			emit(podRef(calm, fmt.Sprintf("db-%d", i)), "Pod", "Warning", "BackOff", "crashing", clock.Now())
		}
		Eventually(func(g Gomega) {
			st := getRule(calm, "calm").Status
			g.Expect([]int64{st.Matched, st.Emitted, st.RateLimited}).To(Equal([]int64{20, 20, 0}))
			g.Expect(rateLimitedCondition(g, calm, "calm").Status).To(Equal(metav1.ConditionFalse))
		}).Should(Succeed())

		By("a minute later the budget has refilled and the condition clears")
		clock.Step(time.Minute + time.Second)
		emit(podRef(flooded, "web-late"), "Pod", "Warning", "BackOff", "crashing", clock.Now())
		Eventually(func(g Gomega) {
			st := getRule(flooded, "flood").Status
			g.Expect([]int64{st.Emitted, st.RateLimited}).To(Equal([]int64{11, 190}))
			c := rateLimitedCondition(g, flooded, "flood")
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(notifyv1.ReasonWithinBudget))
		}).Should(Succeed())
		n, _ := budgetEvents(Default, flooded, "flood")
		Expect(n).To(Equal(1), "one BudgetExceeded Event for the whole flood")
	})

	It("makes grouped Notifications draw on the budget: a part waits for it, and what is left when its window is over is counted", func() {
		ns := newNamespace()
		createRecipient(ns, "alice", func(s *notifyv1.RecipientSpec) { s.Roles = []string{"sre"} })
		const interval, wait = 10 * time.Minute, 30 * time.Second
		base := time.Now().Truncate(interval).Add(-interval + time.Minute)
		window := eventrule.GroupWindow(base, interval)
		clock.SetTime(base)
		Expect(k8sClient.Create(suiteCtx, budgetRule(ns, "bynames", 2, &notifyv1.EventGrouping{
			By: []string{"name"}, Wait: metav1.Duration{Duration: wait}, Interval: metav1.Duration{Duration: interval},
		}))).To(Succeed())
		waitRuleReady(ns, "bynames", metav1.ConditionTrue, notifyv1.ReasonWatching)

		By("one Event each from 5 Pods: 5 groups")
		for i := range 5 {
			emit(podRef(ns, fmt.Sprintf("p%d", i)), "Pod", "Warning", "BackOff", "crashing", base)
		}
		Eventually(func(g Gomega) {
			g.Expect(getRule(ns, "bynames").Status.Matched).To(Equal(int64(5)))
		}).Should(Succeed())

		By("once wait has passed, 2 groups get their Notification and 3 wait for the budget")
		clock.SetTime(base.Add(wait + time.Second))
		emit(podRef(ns, "p0"), "Pod", "Warning", "BackOff", "crashing", clock.Now()) // wakes the rule
		Eventually(func(g Gomega) {
			st := getRule(ns, "bynames").Status
			g.Expect([]int64{st.Emitted, st.Grouped, st.RateLimited}).To(Equal([]int64{2, 2, 0}), "emitted, grouped, rateLimited")
			g.Expect(rateLimitedCondition(g, ns, "bynames").Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())
		Expect(ruleNotifications(ns, "bynames")).To(HaveLen(2))

		By("an interval after the window ended, the budget's 2 tokens go to the oldest due parts and the rest is counted")
		clock.SetTime(window.Add(2*interval + time.Second))
		emit(podRef(ns, "next"), "Pod", "Warning", "BackOff", "next window", clock.Now()) // wakes the rule
		Eventually(func(g Gomega) {
			st := getRule(ns, "bynames").Status
			// 7 Events, 6 in the first window, each carried or counted:
			// p0's second part (its late Event) and p2 take the tokens,
			// p3 and p4 are counted as rate limited.
			g.Expect([]int64{st.Matched, st.Emitted, st.Grouped, st.RateLimited}).To(Equal([]int64{7, 4, 4, 2}),
				"matched, emitted, grouped, rateLimited")
		}).Should(Succeed())
		carried := 0
		for _, n := range ruleNotifications(ns, "bynames") {
			c, err := strconv.Atoi(n.Annotations[eventrule.AnnotationGroupCount])
			Expect(err).NotTo(HaveOccurred())
			carried += c
		}
		Expect(carried).To(Equal(4))
		Consistently(func(g Gomega) {
			st := getRule(ns, "bynames").Status
			g.Expect([]int64{st.Emitted, st.RateLimited}).To(Equal([]int64{4, 2}), "counted once")
		}, "1s").Should(Succeed())
	})
})
