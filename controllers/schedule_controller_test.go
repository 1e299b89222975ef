package controllers_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/controllers"
	"github.com/herald-dev/herald/controllers/schedule"
)

// touch changes an annotation of obj, which asks its controller for a
// reconcile now. Tests call it after moving the fake clock: the
// controller's own requeue waits in real time.
func touch(obj client.Object) {
	Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8sClient.Get(suiteCtx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		a := obj.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		a["test.herald.dev/touched"] = time.Now().Format(time.RFC3339Nano)
		obj.SetAnnotations(a)
		return k8sClient.Update(suiteCtx, obj)
	})).To(Succeed())
}

func getSchedule(ns, name string) *notifyv1.NotificationSchedule {
	var s notifyv1.NotificationSchedule
	Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name}, &s)).To(Succeed())
	return &s
}

func scheduleChildren(ns, schedule string) []string {
	var list notifyv1.NotificationList
	Expect(k8sClient.List(suiteCtx, &list, client.InNamespace(ns), client.MatchingLabels{notifyv1.LabelSchedule: schedule})).To(Succeed())
	var names []string
	for _, n := range list.Items {
		if n.DeletionTimestamp == nil {
			names = append(names, n.Name)
		}
	}
	return names
}

func updateSchedule(ns, name string, change func(*notifyv1.NotificationScheduleSpec)) {
	Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s := getSchedule(ns, name)
		change(&s.Spec)
		return k8sClient.Update(suiteCtx, s)
	})).To(Succeed())
}

func timeEqual(t *metav1.Time, want time.Time) bool {
	return t != nil && t.Time.Equal(want)
}

var _ = Describe("NotificationSchedules", func() {
	var (
		ns    string
		clock *testingclock.FakeClock
		opts  controllers.Options
		stop  func()
	)

	BeforeEach(func() {
		ns = newNamespace()
		clock = testingclock.NewFakeClock(time.Now())
		opts = testOptions()
		opts.Clock = clock
		stop = startManager(opts)
		// stop is replaced when a spec restarts the manager.
		DeferCleanup(func() { stop() })
	})

	It("create each run's Notification once, on time, across a restart, a suspension, an outage and history limits", func() {
		createRecipient(ns, "alice", nil)
		// A daily run half an hour from now in Asia/Kolkata (UTC+05:30),
		// so that the run's minute and hour only come out right when the
		// time zone is honoured.
		kolkata, err := time.LoadLocation("Asia/Kolkata")
		Expect(err).NotTo(HaveOccurred())
		run1 := clock.Now().Add(30 * time.Minute).In(kolkata).Truncate(time.Minute)
		sched := &notifyv1.NotificationSchedule{
			ObjectMeta: metav1.ObjectMeta{Name: "standup", Namespace: ns},
			Spec: notifyv1.NotificationScheduleSpec{
				Schedule:                fmt.Sprintf("%d %d * * *", run1.Minute(), run1.Hour()),
				TimeZone:                "Asia/Kolkata",
				StartingDeadlineSeconds: ptr.To[int64](300),
				SuccessfulHistoryLimit:  ptr.To[int32](1),
				Notification: notifyv1.NotificationTemplateSpec{
					Metadata: notifyv1.ObjectMetaTemplate{Labels: map[string]string{"team": "web"}},
					Spec: notifyv1.NotificationSpec{
						Title:    "Stand-up",
						Message:  "Stand-up in the usual room.",
						Audience: notifyv1.Audience{Users: []string{"alice"}},
						Channels: []notifyv1.Channel{notifyv1.ChannelInApp},
					},
				},
			},
		}
		Expect(k8sClient.Create(suiteCtx, sched)).To(Succeed())

		By("waiting for the first run without creating anything")
		Eventually(func(g Gomega) {
			s := getSchedule(ns, "standup")
			g.Expect(timeEqual(s.Status.NextScheduleTime, run1)).To(BeTrue(), "status: %+v", s.Status)
			g.Expect(meta.IsStatusConditionTrue(s.Status.Conditions, notifyv1.ConditionReady)).To(BeTrue())
		}).Should(Succeed())
		Expect(scheduleChildren(ns, "standup")).To(BeEmpty())

		By("creating the run's Notification when the clock reaches it")
		clock.SetTime(run1.Add(5 * time.Second))
		touch(sched)
		first := schedule.ScheduledName("standup", run1)
		Expect(first).To(Equal(fmt.Sprintf("standup-%d", run1.Unix()/60)))
		n := waitPhase(ns, first, notifyv1.NotificationDelivered)
		Expect(n.Labels).To(HaveKeyWithValue(notifyv1.LabelSchedule, "standup"))
		Expect(n.Labels).To(HaveKeyWithValue("team", "web"))
		Expect(n.Annotations).To(HaveKeyWithValue(notifyv1.AnnotationScheduledTime, run1.UTC().Format(time.RFC3339)))
		Expect(metav1.IsControlledBy(n, getSchedule(ns, "standup"))).To(BeTrue())
		Eventually(func(g Gomega) {
			s := getSchedule(ns, "standup")
			g.Expect(timeEqual(s.Status.LastScheduleTime, run1)).To(BeTrue())
			g.Expect(s.Status.LastNotification).To(Equal(first))
			g.Expect(s.Status.Active).To(BeEmpty(), "the delivered run is no longer active")
			g.Expect(timeEqual(s.Status.NextScheduleTime, run1.AddDate(0, 0, 1))).To(BeTrue())
		}).Should(Succeed())
		expectEvent(ns, "standup", notifyv1.ReasonCreated)

		By("restarting a controller that lost the status record: the run is found, not repeated")
		stop()
		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			s := getSchedule(ns, "standup")
			s.Status.LastScheduleTime = nil
			s.Status.LastNotification = ""
			return k8sClient.Status().Update(suiteCtx, s)
		})).To(Succeed())
		stop = startManager(opts)
		Eventually(func(g Gomega) {
			s := getSchedule(ns, "standup")
			g.Expect(timeEqual(s.Status.LastScheduleTime, run1)).To(BeTrue())
			g.Expect(s.Status.LastNotification).To(Equal(first))
		}).Should(Succeed())
		Expect(scheduleChildren(ns, "standup")).To(ConsistOf(first))

		By("keeping only successfulHistoryLimit delivered runs")
		run2 := run1.AddDate(0, 0, 1)
		clock.SetTime(run2.Add(5 * time.Second))
		touch(sched)
		second := schedule.ScheduledName("standup", run2)
		waitPhase(ns, second, notifyv1.NotificationDelivered)
		Eventually(func() []string { return scheduleChildren(ns, "standup") }).Should(ConsistOf(second))

		By("making no run while suspended, and not making it up on resume")
		updateSchedule(ns, "standup", func(s *notifyv1.NotificationScheduleSpec) { s.Suspend = true })
		Eventually(func(g Gomega) {
			s := getSchedule(ns, "standup")
			c := meta.FindStatusCondition(s.Status.Conditions, notifyv1.ConditionReady)
			g.Expect(c.Reason).To(Equal(notifyv1.ReasonSuspended))
			g.Expect(s.Status.NextScheduleTime).To(BeNil())
		}).Should(Succeed())
		run3 := run2.AddDate(0, 0, 1)
		clock.SetTime(run3.Add(5 * time.Second))
		touch(sched)
		updateSchedule(ns, "standup", func(s *notifyv1.NotificationScheduleSpec) { s.Suspend = false })
		run4 := run3.AddDate(0, 0, 1)
		Eventually(func(g Gomega) {
			s := getSchedule(ns, "standup")
			g.Expect(meta.IsStatusConditionTrue(s.Status.Conditions, notifyv1.ConditionReady)).To(BeTrue())
			g.Expect(timeEqual(s.Status.NextScheduleTime, run4)).To(BeTrue(), "status: %+v", s.Status)
		}).Should(Succeed())
		// The reconcile that resumed the schedule decided about run3.
		Expect(scheduleChildren(ns, "standup")).To(ConsistOf(second))
		Expect(getSchedule(ns, "standup").Status.MissedRuns).To(BeZero(), "runs skipped by suspension are not missed runs")

		By("skipping and counting a run that is past startingDeadlineSeconds")
		clock.SetTime(run4.Add(time.Hour))
		touch(sched)
		Eventually(func(g Gomega) {
			s := getSchedule(ns, "standup")
			g.Expect(s.Status.MissedRuns).To(BeEquivalentTo(1))
			g.Expect(timeEqual(s.Status.LastMissedTime, run4)).To(BeTrue())
			g.Expect(timeEqual(s.Status.NextScheduleTime, run4.AddDate(0, 0, 1))).To(BeTrue())
		}).Should(Succeed())
		expectEvent(ns, "standup", notifyv1.ReasonMissedSchedule)
		Expect(scheduleChildren(ns, "standup")).To(ConsistOf(second))
		_, err = getNotificationErr(ns, schedule.ScheduledName("standup", run4))
		Expect(apierrors.IsNotFound(err)).To(BeTrue())
	})

	It("report a schedule that does not parse", func() {
		Expect(k8sClient.Create(suiteCtx, &notifyv1.NotificationSchedule{
			ObjectMeta: metav1.ObjectMeta{Name: "mars", Namespace: ns},
			Spec: notifyv1.NotificationScheduleSpec{
				Schedule: "0 9 * * *",
				TimeZone: "Mars/Olympus_Mons",
				Notification: notifyv1.NotificationTemplateSpec{Spec: notifyv1.NotificationSpec{
					Message:  "hello",
					Audience: notifyv1.Audience{Users: []string{"alice"}},
					Channels: []notifyv1.Channel{notifyv1.ChannelInApp},
				}},
			},
		})).To(Succeed())
		Eventually(func(g Gomega) {
			c := meta.FindStatusCondition(getSchedule(ns, "mars").Status.Conditions, notifyv1.ConditionReady)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(notifyv1.ReasonInvalidSchedule))
			g.Expect(c.Message).To(ContainSubstring(`"Mars/Olympus_Mons" is not an IANA time zone`))
		}).Should(Succeed())
		expectEvent(ns, "mars", notifyv1.ReasonInvalidSchedule)
	})
})

func getNotificationErr(ns, name string) (*notifyv1.Notification, error) {
	var n notifyv1.Notification
	err := k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name}, &n)
	return &n, err
}
