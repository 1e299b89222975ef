package controllers_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testingclock "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// labelled returns the notification's deliveries that carry label key
// with value.
func labelled(ns, notification, key, value string) []notifyv1.ChannelDelivery {
	var out []notifyv1.ChannelDelivery
	for _, d := range deliveries(ns, notification) {
		if d.Labels[key] == value {
			out = append(out, d)
		}
	}
	return out
}

// acknowledge records an acknowledgement on a delivery as the inbox does.
func acknowledge(d *notifyv1.ChannelDelivery, at time.Time) {
	before := d.DeepCopy()
	t := metav1.NewTime(at.Truncate(time.Second))
	d.Status.AcknowledgedTime = &t
	Expect(k8sClient.Status().Patch(suiteCtx, d, client.MergeFrom(before))).To(Succeed())
}

var _ = Describe("Acknowledgement, escalation and reminders", func() {
	var (
		ns    string
		clock *testingclock.FakeClock
		stop  func()
	)
	start := func() {
		opts := testOptions()
		opts.Clock = clock
		stop = startManager(opts)
	}
	BeforeEach(func() {
		ns = newNamespace()
		clock = testingclock.NewFakeClock(time.Now())
		start()
		DeferCleanup(func() { stop() })
	})

	It("runs exactly one of two escalation steps when acknowledged between them, across a restart", func() {
		createRecipient(ns, "alice", nil)
		createRecipient(ns, "bob", nil)
		createRecipient(ns, "carol", nil)
		n := &notifyv1.Notification{
			ObjectMeta: metav1.ObjectMeta{Name: "payments-down", Namespace: ns},
			Spec: notifyv1.NotificationSpec{
				Type: notifyv1.TypeCritical, Title: "Payments down", Message: "503s since 14:02",
				Audience: notifyv1.Audience{Users: []string{"alice"}},
				Channels: []notifyv1.Channel{notifyv1.ChannelInApp},
				Escalation: []notifyv1.EscalationStep{
					{After: metav1.Duration{Duration: 10 * time.Minute}, Audience: &notifyv1.Audience{Users: []string{"bob"}}},
					{After: metav1.Duration{Duration: 30 * time.Minute}, Audience: &notifyv1.Audience{Users: []string{"carol"}}},
				},
			},
		}
		Expect(k8sClient.Create(suiteCtx, n)).To(Succeed())
		n = waitPhase(ns, "payments-down", notifyv1.NotificationDelivered)
		c := meta.FindStatusCondition(n.Status.Conditions, notifyv1.ConditionAcknowledged)
		Expect(c).NotTo(BeNil())
		Expect(c.Status).To(Equal(metav1.ConditionFalse))
		Expect(c.Reason).To(Equal(notifyv1.ReasonAwaitingAcknowledgement))
		Expect(n.Status.Escalation).To(BeEmpty())
		alice := getDelivery(ns, "payments-down", notifyv1.ChannelInApp, "alice")

		By("running step 1 when its time comes")
		clock.Step(10*time.Minute + time.Second)
		touch(alice)
		Eventually(func(g Gomega) {
			step1 := labelled(ns, "payments-down", notifyv1.LabelEscalationStep, "1")
			g.Expect(step1).To(HaveLen(1))
			g.Expect(step1[0].Spec.Recipient.Name).To(Equal("bob"))
			g.Expect(getNotification(ns, "payments-down").Status.Escalation).To(HaveLen(1))
		}).Should(Succeed())

		By("restarting the controller mid-escalation: step 1 does not run again")
		stop()
		start()
		touch(alice)
		Consistently(func(g Gomega) {
			g.Expect(labelled(ns, "payments-down", notifyv1.LabelEscalationStep, "1")).To(HaveLen(1))
			g.Expect(getNotification(ns, "payments-down").Status.Escalation).To(HaveLen(1))
		}, "1s").Should(Succeed())

		By("acknowledging in the inbox between the steps")
		acknowledge(getDelivery(ns, "payments-down", notifyv1.ChannelInApp, "alice"), clock.Now())
		Eventually(func(g Gomega) {
			n := getNotification(ns, "payments-down")
			c := meta.FindStatusCondition(n.Status.Conditions, notifyv1.ConditionAcknowledged)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Reason).To(Equal(notifyv1.ReasonAcknowledgedBy))
			g.Expect(c.Message).To(ContainSubstring("acknowledged by alice at "))
			g.Expect(n.Status.Acknowledgement).To(Equal(&notifyv1.AcknowledgementStatus{
				Acknowledged: 1, Required: 1, By: "alice", Time: n.Status.Acknowledgement.Time}))
		}).Should(Succeed())

		By("not running step 2 once acknowledged")
		clock.Step(30 * time.Minute)
		touch(alice)
		Consistently(func(g Gomega) {
			g.Expect(labelled(ns, "payments-down", notifyv1.LabelEscalationStep, "2")).To(BeEmpty())
			g.Expect(getNotification(ns, "payments-down").Status.Escalation).To(HaveLen(1))
		}, "1s").Should(Succeed())
	})

	It("runs every step that came due while the controller was away, once, and stops at expiresAt", func() {
		createRecipient(ns, "alice", nil)
		createRecipient(ns, "bob", nil)
		n := &notifyv1.Notification{
			ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: ns},
			Spec: notifyv1.NotificationSpec{
				Type: notifyv1.TypeCritical, Message: "disk full",
				Audience:  notifyv1.Audience{Users: []string{"alice"}},
				Channels:  []notifyv1.Channel{notifyv1.ChannelInApp},
				ExpiresAt: &metav1.Time{Time: clock.Now().Add(50 * time.Minute)},
				Escalation: []notifyv1.EscalationStep{
					{After: metav1.Duration{Duration: 10 * time.Minute}, Audience: &notifyv1.Audience{Users: []string{"bob"}}},
					{After: metav1.Duration{Duration: 20 * time.Minute}, Channels: []notifyv1.Channel{notifyv1.ChannelEmail}},
					{After: metav1.Duration{Duration: time.Hour}, Audience: &notifyv1.Audience{Users: []string{"bob"}}},
				},
			},
		}
		Expect(k8sClient.Create(suiteCtx, n)).To(Succeed())
		waitPhase(ns, "late", notifyv1.NotificationDelivered)
		stop()
		clock.Step(25 * time.Minute)
		start()
		touch(getDelivery(ns, "late", notifyv1.ChannelInApp, "alice"))
		Eventually(func(g Gomega) {
			n := getNotification(ns, "late")
			g.Expect(n.Status.Escalation).To(HaveLen(2))
			g.Expect(n.Status.Escalation[0].Step).To(Equal(int32(1)))
			g.Expect(n.Status.Escalation[1].Step).To(Equal(int32(2)))
			step2 := labelled(ns, "late", notifyv1.LabelEscalationStep, "2")
			g.Expect(step2).To(HaveLen(1))
			g.Expect(step2[0].Spec.Channel).To(Equal(notifyv1.ChannelEmail))
			g.Expect(step2[0].Spec.Recipient.Email).To(Equal("alice@example.com"))
		}).Should(Succeed())
		By("step 3 would be after expiresAt: it never runs")
		clock.Step(time.Hour)
		touch(getDelivery(ns, "late", notifyv1.ChannelInApp, "alice"))
		Consistently(func(g Gomega) {
			g.Expect(labelled(ns, "late", notifyv1.LabelEscalationStep, "3")).To(BeEmpty())
		}, "1s").Should(Succeed())
	})

	It("sends only the latest of several reminder rounds that came due together", func() {
		createRecipient(ns, "alice", nil)
		n := &notifyv1.Notification{
			ObjectMeta: metav1.ObjectMeta{Name: "backlog", Namespace: ns},
			Spec: notifyv1.NotificationSpec{
				Message:  "review the backlog",
				Audience: notifyv1.Audience{Users: []string{"alice"}},
				Channels: []notifyv1.Channel{notifyv1.ChannelInApp, notifyv1.ChannelEmail},
				Remind:   &notifyv1.ReminderPolicy{Every: metav1.Duration{Duration: time.Minute}, Max: 5},
			},
		}
		Expect(k8sClient.Create(suiteCtx, n)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(deliveries(ns, "backlog")).To(HaveLen(2))
		}).Should(Succeed())
		clock.Step(3*time.Minute + time.Second)
		touch(getDelivery(ns, "backlog", notifyv1.ChannelInApp, "alice"))
		Eventually(func(g Gomega) {
			runs := getNotification(ns, "backlog").Status.Reminders
			g.Expect(runs).To(HaveLen(3))
			g.Expect([]bool{runs[0].Overdue, runs[1].Overdue, runs[2].Overdue}).To(Equal([]bool{true, true, false}))
			g.Expect(runs[2].Recipients).To(Equal(int32(1)))
			g.Expect(labelled(ns, "backlog", notifyv1.LabelReminder, "3")).To(HaveLen(1))
		}).Should(Succeed())
		Expect(labelled(ns, "backlog", notifyv1.LabelReminder, "1")).To(BeEmpty())
		Expect(labelled(ns, "backlog", notifyv1.LabelReminder, "2")).To(BeEmpty())
	})

	It("reminds only the recipients who have not acknowledged, on their channels other than in-app, at most max times", func() {
		createRecipient(ns, "alice", nil)
		createRecipient(ns, "bob", nil)
		n := &notifyv1.Notification{
			ObjectMeta: metav1.ObjectMeta{Name: "rotate-keys", Namespace: ns},
			Spec: notifyv1.NotificationSpec{
				Type: notifyv1.TypeWarning, Title: "Rotate your keys", Message: "by Friday",
				Audience:    notifyv1.Audience{Users: []string{"alice", "bob"}},
				Channels:    []notifyv1.Channel{notifyv1.ChannelInApp, notifyv1.ChannelEmail},
				Acknowledge: notifyv1.AcknowledgeAll,
				Remind:      &notifyv1.ReminderPolicy{Every: metav1.Duration{Duration: 5 * time.Minute}, Max: 2},
			},
		}
		Expect(k8sClient.Create(suiteCtx, n)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(deliveries(ns, "rotate-keys")).To(HaveLen(4))
		}).Should(Succeed())
		alice := getDelivery(ns, "rotate-keys", notifyv1.ChannelInApp, "alice")

		By("reminder 1 goes to both, by email only")
		clock.Step(5*time.Minute + time.Second)
		touch(alice)
		Eventually(func(g Gomega) {
			r1 := labelled(ns, "rotate-keys", notifyv1.LabelReminder, "1")
			g.Expect(r1).To(HaveLen(2))
			for _, d := range r1 {
				g.Expect(d.Spec.Channel).To(Equal(notifyv1.ChannelEmail))
				g.Expect(d.Spec.Content.Title).To(Equal("Reminder 1: Rotate your keys"))
			}
		}).Should(Succeed())

		By("alice acknowledges: 1 of 2 under acknowledge: All")
		acknowledge(getDelivery(ns, "rotate-keys", notifyv1.ChannelInApp, "alice"), clock.Now())
		Eventually(func(g Gomega) {
			n := getNotification(ns, "rotate-keys")
			c := meta.FindStatusCondition(n.Status.Conditions, notifyv1.ConditionAcknowledged)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Message).To(ContainSubstring("1 of 2 recipients acknowledged"))
		}).Should(Succeed())

		By("reminder 2 goes to bob only")
		clock.Step(5 * time.Minute)
		touch(alice)
		Eventually(func(g Gomega) {
			r2 := labelled(ns, "rotate-keys", notifyv1.LabelReminder, "2")
			g.Expect(r2).To(HaveLen(1))
			g.Expect(r2[0].Spec.Recipient.Name).To(Equal("bob"))
		}).Should(Succeed())

		By("no third reminder: max is 2")
		clock.Step(5 * time.Minute)
		touch(alice)
		Consistently(func(g Gomega) {
			g.Expect(labelled(ns, "rotate-keys", notifyv1.LabelReminder, "3")).To(BeEmpty())
			g.Expect(getNotification(ns, "rotate-keys").Status.Reminders).To(HaveLen(2))
		}, "1s").Should(Succeed())

		By("bob acknowledges: the notification is acknowledged by all")
		acknowledge(getDelivery(ns, "rotate-keys", notifyv1.ChannelInApp, "bob"), clock.Now())
		Eventually(func(g Gomega) {
			c := meta.FindStatusCondition(getNotification(ns, "rotate-keys").Status.Conditions, notifyv1.ConditionAcknowledged)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Message).To(ContainSubstring("all 2 recipients acknowledged; the last was bob"))
		}).Should(Succeed())
	})
})
