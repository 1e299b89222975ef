package controllers_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testingclock "k8s.io/utils/clock/testing"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

var _ = Describe("EventRule namespace budget", func() {
	var clock *testingclock.FakeClock

	BeforeEach(func() {
		clock = testingclock.NewFakeClock(time.Now().Truncate(time.Second))
		opts := testOptions()
		opts.Clock = clock
		opts.EventRuleNamespaceMaxNotificationsPerMinute = 20
		stop := startManager(opts)
		DeferCleanup(func() { stop() })
	})

	It("holds all rules of a namespace to one budget, says so on each, is not refilled by re-creating rules, and leaves other namespaces alone", func() {
		tenant, other := newNamespace(), newNamespace()
		for _, ns := range []string{tenant, other} {
			createRecipient(ns, "alice", func(s *notifyv1.RecipientSpec) { s.Roles = []string{"sre"} })
		}
		rules := []string{"r1", "r2", "r3"}
		for _, name := range rules {
			Expect(k8sClient.Create(suiteCtx, budgetRule(tenant, name, 60, nil))).To(Succeed())
		}
		Expect(k8sClient.Create(suiteCtx, budgetRule(other, "calm", 60, nil))).To(Succeed())
		for _, name := range rules {
			waitRuleReady(tenant, name, metav1.ConditionTrue, notifyv1.ReasonWatching)
		}
		waitRuleReady(other, "calm", metav1.ConditionTrue, notifyv1.ReasonWatching)
		Eventually(func(g Gomega) {
			c := rateLimitedCondition(g, tenant, "r1")
			g.Expect(c.Reason).To(Equal(notifyv1.ReasonWithinBudget))
			g.Expect(c.Message).To(ContainSubstring("the namespace's budget of 20 Notifications per minute, shared by every EventRule in namespace " + tenant))
		}).Should(Succeed())

		By("100 Events about 100 Pods, each matched by all three rules")
		for i := range 100 {
			emit(podRef(tenant, fmt.Sprintf("web-%d", i)), "Pod", "Warning", "BackOff", "crashing", clock.Now())
		}
		Eventually(func(g Gomega) {
			var matched, emitted, rateLimited int64
			for _, name := range rules {
				st := getRule(tenant, name).Status
				g.Expect(st.Matched).To(BeEquivalentTo(100), "rule %s matched", name)
				matched += st.Matched
				emitted += st.Emitted
				rateLimited += st.RateLimited
			}
			g.Expect([]int64{matched, emitted, rateLimited}).To(Equal([]int64{300, 20, 280}), "matched, emitted, rateLimited over the three rules")
		}).Should(Succeed())
		made := 0
		for _, name := range rules {
			made += len(ruleNotifications(tenant, name))
		}
		Expect(made).To(Equal(20), "Notifications in the namespace")
		namespaceHeld := "exceeded the namespace's budget of 20 Notifications per minute, shared by every EventRule in namespace " + tenant
		for _, name := range rules {
			Eventually(func(g Gomega) {
				c := rateLimitedCondition(g, tenant, name)
				g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
				g.Expect(c.Reason).To(Equal(notifyv1.ReasonBudgetExceeded))
				g.Expect(c.Message).To(ContainSubstring(namespaceHeld))
				g.Expect(c.Message).NotTo(ContainSubstring("exceeded the rule's budget"), "each rule's own budget of 60 was not spent")
				n, messages := budgetEvents(g, tenant, name)
				g.Expect(n).To(Equal(1))
				g.Expect(messages[0]).To(ContainSubstring("exceed the namespace's budget of 20 Notifications per minute"))
			}).Should(Succeed(), "rule %s", name)
		}

		By("the other namespace has a full budget of its own: 20 Events make 20 Notifications")
		for i := range 20 {
			emit(podRef(other, fmt.Sprintf("db-%d", i)), "Pod", "Warning", "BackOff", "crashing", clock.Now())
		}
		Eventually(func(g Gomega) {
			st := getRule(other, "calm").Status
			g.Expect([]int64{st.Matched, st.Emitted, st.RateLimited}).To(Equal([]int64{20, 20, 0}))
			g.Expect(rateLimitedCondition(g, other, "calm").Status).To(Equal(metav1.ConditionFalse))
		}).Should(Succeed())

		By("deleting the rules and creating a new one does not refill the namespace's budget")
		for _, name := range rules {
			Expect(k8sClient.Delete(suiteCtx, getRule(tenant, name))).To(Succeed())
		}
		Expect(k8sClient.Create(suiteCtx, budgetRule(tenant, "fresh", 60, nil))).To(Succeed())
		waitRuleReady(tenant, "fresh", metav1.ConditionTrue, notifyv1.ReasonWatching)
		emit(podRef(tenant, "after-recreate"), "Pod", "Warning", "BackOff", "crashing", clock.Now())
		Eventually(func(g Gomega) {
			st := getRule(tenant, "fresh").Status
			// The 100 earlier Events are recent and match too.
			g.Expect([]int64{st.Matched, st.Emitted, st.RateLimited}).To(Equal([]int64{101, 0, 101}), "matched, emitted, rateLimited")
			g.Expect(rateLimitedCondition(g, tenant, "fresh").Message).To(ContainSubstring(namespaceHeld))
		}).Should(Succeed())

		By("a minute later the namespace's budget has refilled")
		clock.Step(time.Minute + time.Second)
		emit(podRef(tenant, "late"), "Pod", "Warning", "BackOff", "crashing", clock.Now())
		Eventually(func(g Gomega) {
			st := getRule(tenant, "fresh").Status
			g.Expect([]int64{st.Matched, st.Emitted, st.RateLimited}).To(Equal([]int64{102, 1, 101}), "matched, emitted, rateLimited")
			g.Expect(rateLimitedCondition(g, tenant, "fresh").Status).To(Equal(metav1.ConditionFalse))
		}).Should(Succeed())
	})
})
