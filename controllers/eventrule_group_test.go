package controllers_test

import (
	"fmt"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	testingclock "k8s.io/utils/clock/testing"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/controllers/eventrule"
)

var _ = Describe("EventRule grouping", func() {
	It("folds 500 matching Events within groupWait into one Notification per group, losing none, across a restart", func() {
		ns := newNamespace()
		const interval, wait = 10 * time.Minute, 30 * time.Second
		// Event times have whole seconds; the burst starts a minute into
		// an interval, so that it does not straddle two.
		base := time.Now().Truncate(interval).Add(-interval + time.Minute)
		window := eventrule.GroupWindow(base, interval)
		clock := testingclock.NewFakeClock(base.Add(wait - time.Second))
		opts := testOptions()
		opts.Clock = clock
		stop := startManager(opts)
		DeferCleanup(func() { stop() })
		createRecipient(ns, "alice", func(s *notifyv1.RecipientSpec) { s.Roles = []string{"sre"} })

		Expect(k8sClient.Create(suiteCtx, &notifyv1.EventRule{
			ObjectMeta: metav1.ObjectMeta{Name: "flood", Namespace: ns},
			Spec: notifyv1.EventRuleSpec{
				Match:    notifyv1.EventMatch{Types: []string{"Warning"}, InvolvedKinds: []string{"Pod"}},
				Grouping: &notifyv1.EventGrouping{By: []string{"reason"}, Wait: metav1.Duration{Duration: wait}, Interval: metav1.Duration{Duration: interval}},
				Notification: notifyv1.NotificationTemplateSpec{Spec: notifyv1.NotificationSpec{
					Type:     notifyv1.TypeWarning,
					Title:    "{{ .groupCount }} Pods: {{ .reason }}",
					Message:  "{{ .message }}",
					Audience: notifyv1.Audience{Roles: []string{"sre"}},
					Channels: []notifyv1.Channel{notifyv1.ChannelInApp},
				}},
			},
		})).To(Succeed())
		waitRuleReady(ns, "flood", metav1.ConditionTrue, notifyv1.ReasonWatching)

		By("500 Events of 3 reasons from 50 Pods within groupWait")
		reasons := []string{"BackOff", "Unhealthy", "FailedMount"}
		perReason := map[string]int{}
		for i := range 500 {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-%d", i%50), Namespace: ns, UID: types.UID(fmt.Sprintf("uid-%d", i%50))}}
			reason := reasons[i%len(reasons)]
			perReason[reason]++
			emit(pod, "Pod", "Warning", reason, "trouble with "+pod.Name, base.Add(time.Duration(i%25)*time.Second))
		}
		Eventually(func(g Gomega) {
			g.Expect(getRule(ns, "flood").Status.Matched).To(Equal(int64(500)))
		}).Should(Succeed())
		Expect(ruleNotifications(ns, "flood")).To(BeEmpty(), "nothing before groupWait has passed")

		By("one Notification per reason once groupWait has passed")
		clock.SetTime(base.Add(wait + time.Second))
		Eventually(func(g Gomega) {
			g.Expect(ruleNotifications(ns, "flood")).To(HaveLen(len(reasons)))
		}).Should(Succeed())
		total := 0
		for _, n := range ruleNotifications(ns, "flood") {
			count, err := strconv.Atoi(n.Annotations[eventrule.AnnotationGroupCount])
			Expect(err).NotTo(HaveOccurred())
			reason := n.Annotations[eventrule.AnnotationGroupKey][len("reason="):]
			Expect(count).To(Equal(perReason[reason]), "Notification %s", n.Name)
			Expect(n.Name).To(Equal(eventrule.GroupNotificationName("flood", "reason="+reason, window, 1)))
			Expect(n.Spec.Title).To(Equal(fmt.Sprintf("%d Pods: %s", count, reason)))
			Expect(n.Spec.Message).To(ContainSubstring(fmt.Sprintf("%d matching Events (reason=%s): Pod/web-", count, reason)))
			Expect(n.Spec.Message).To(ContainSubstring("and 30 more")) // 50 Pods, 20 listed
			total += count
		}
		Expect(total).To(Equal(500))
		Eventually(func(g Gomega) {
			st := getRule(ns, "flood").Status
			g.Expect([]int64{st.Emitted, st.Grouped}).To(Equal([]int64{3, 500}))
		}).Should(Succeed())

		By("restarting the controller: the groups' Notifications are found, not made again")
		stop()
		stop = startManager(opts)

		By("a late Event of the same window is carried by a second Notification at the window's end")
		clock.SetTime(base.Add(2 * time.Minute))
		late := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "late-0", Namespace: ns, UID: "uid-late"}}
		emit(late, "Pod", "Warning", "BackOff", "late trouble", clock.Now())
		Consistently(func(g Gomega) {
			g.Expect(ruleNotifications(ns, "flood")).To(HaveLen(len(reasons)))
		}, "1s").Should(Succeed())
		clock.SetTime(window.Add(interval + time.Second))
		// An Event of the next window wakes the rule.
		emit(late, "Pod", "Warning", "Unhealthy", "next window", clock.Now())
		part2 := eventrule.GroupNotificationName("flood", "reason=BackOff", window, 2)
		Eventually(func(g Gomega) {
			g.Expect(ruleNotifications(ns, "flood")).To(HaveLen(len(reasons) + 1))
		}).Should(Succeed())
		n := getNotification(ns, part2)
		Expect(n.Annotations).To(HaveKeyWithValue(eventrule.AnnotationGroupCount, "1"))
		Expect(n.Annotations).To(HaveKeyWithValue(eventrule.AnnotationInvolvedObject, "Pod/late-0"))
	})
})
