package controllers_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

var _ = Describe("delivery names and create errors", func() {
	var ns string
	BeforeEach(func() {
		ns = newNamespace()
		stop := startManager(testOptions())
		DeferCleanup(stop)
	})

	inApp := func(users ...string) func(*notifyv1.NotificationSpec) {
		return func(s *notifyv1.NotificationSpec) {
			s.Audience = notifyv1.Audience{Users: users}
			s.Channels = []notifyv1.Channel{notifyv1.ChannelInApp}
		}
	}

	It("gives every audience user a delivery, whatever characters its name has", func() {
		createRecipient(ns, "alice", nil)
		notification(ns, "odd-users", inApp("alice", "Kim", "kim@example.com", "kim_x"))
		n := waitPhase(ns, "odd-users", notifyv1.NotificationPartiallyDelivered)
		Expect(n.Status.Unresolved).To(ConsistOf("Kim", "kim@example.com", "kim_x"))
		Expect(n.Status.Rejected).To(BeEmpty())
		for _, u := range []string{"Kim", "kim@example.com", "kim_x"} {
			d := getDelivery(ns, "odd-users", notifyv1.ChannelInApp, u)
			Expect(d.Spec.Recipient.Name).To(Equal(u))
			Expect(d.Status.Phase).To(Equal(notifyv1.DeliverySkipped))
			Expect(d.Status.Reason).To(Equal(notifyv1.ReasonUnknownRecipient))
		}
		Expect(getDelivery(ns, "odd-users", notifyv1.ChannelInApp, "alice").Phase()).To(Equal(notifyv1.DeliverySucceeded))
	})

	It("keeps deliveries of names that read alike apart", func() {
		for _, r := range []string{"inapp-y", "y", "email-y"} {
			createRecipient(ns, r, nil)
		}
		// x to inapp-y and x-inapp to y both read x-inapp-inapp-y.
		notification(ns, "x", inApp("inapp-y"))
		notification(ns, "x-inapp", inApp("y"))
		for _, name := range []string{"x", "x-inapp"} {
			n := waitPhase(ns, name, notifyv1.NotificationDelivered)
			Expect(n.Status.Deliveries.Succeeded).To(BeEquivalentTo(1))
		}
		Expect(getDelivery(ns, "x", notifyv1.ChannelInApp, "inapp-y").Name).NotTo(Equal(getDelivery(ns, "x-inapp", notifyv1.ChannelInApp, "y").Name))
	})

	It("finishes a Notification re-created under an old name with its own deliveries", func() {
		createRecipient(ns, "alice", nil)
		notification(ns, "again", inApp("alice"))
		old := waitPhase(ns, "again", notifyv1.NotificationDelivered)
		// envtest runs no garbage collector: the old deliveries stay, as
		// they do for a while in a cluster.
		Expect(k8sClient.Delete(suiteCtx, old)).To(Succeed())
		Eventually(func() bool {
			return k8sClient.Get(suiteCtx, client.ObjectKeyFromObject(old), &notifyv1.Notification{}) != nil
		}).Should(BeTrue())
		oldDelivery := getDelivery(ns, "again", notifyv1.ChannelInApp, "alice")
		Expect(metav1.IsControlledBy(oldDelivery, old)).To(BeTrue())

		fresh := notification(ns, "again", inApp("alice"))
		Eventually(func(g Gomega) {
			c := meta.FindStatusCondition(getNotification(ns, "again").Status.Conditions, notifyv1.ConditionDispatched)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(notifyv1.ReasonDeliveryNameTaken))
		}).Should(Succeed())
		expectEvent(ns, "again", notifyv1.ReasonDeliveryNameTaken)
		Expect(getNotification(ns, "again").Status.Phase).NotTo(Equal(notifyv1.NotificationDelivered), "the old delivery must not count")

		// The garbage collector deletes the old delivery.
		Expect(k8sClient.Delete(suiteCtx, oldDelivery)).To(Succeed())
		n := waitPhase(ns, "again", notifyv1.NotificationDelivered)
		Expect(n.UID).To(Equal(fresh.UID))
		d := getDelivery(ns, "again", notifyv1.ChannelInApp, "alice")
		Expect(metav1.IsControlledBy(d, fresh)).To(BeTrue(), "owner: %+v", d.OwnerReferences)
		Expect(n.Status.Deliveries.Succeeded).To(BeEquivalentTo(1))
	})

	It("ends a delivery whose create the API server rejects, and delivers the others", func() {
		for _, r := range []string{"alice", "bob", "carol"} {
			createRecipient(ns, r, nil)
		}
		// A quota of two deliveries: the third create is refused (403).
		// envtest runs no quota controller; its status is set by hand and
		// the admission plugin counts from there.
		q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "deliveries", Namespace: ns},
			Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"count/channeldeliveries.notify.herald.dev": resource.MustParse("2")}}}
		Expect(k8sClient.Create(suiteCtx, q)).To(Succeed())
		q.Status = corev1.ResourceQuotaStatus{Hard: q.Spec.Hard, Used: corev1.ResourceList{"count/channeldeliveries.notify.herald.dev": resource.MustParse("0")}}
		Expect(k8sClient.Status().Update(suiteCtx, q)).To(Succeed())

		notification(ns, "quota", inApp("alice", "bob", "carol"))
		n := waitPhase(ns, "quota", notifyv1.NotificationPartiallyDelivered)
		Expect(n.Status.Deliveries.Succeeded).To(BeEquivalentTo(2))
		Expect(n.Status.Deliveries.Failed).To(BeEquivalentTo(1))
		Expect(n.Status.Rejected).To(HaveLen(1))
		rj := n.Status.Rejected[0]
		Expect(rj.Reason).To(Equal(notifyv1.ReasonDeliveryRejected))
		Expect(rj.Message).To(ContainSubstring("exceeded quota"))
		Expect(meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionDispatched)).To(BeTrue())
		Eventually(func(g Gomega) {
			var list corev1.EventList
			g.Expect(k8sClient.List(suiteCtx, &list, client.InNamespace(ns))).To(Succeed())
			var notes []string
			for _, e := range list.Items {
				if e.InvolvedObject.Name == "quota" && e.Reason == notifyv1.ReasonDeliveryRejected && e.Type == corev1.EventTypeWarning {
					notes = append(notes, e.Message)
				}
			}
			g.Expect(strings.Join(notes, "\n")).To(And(ContainSubstring(`"`+rj.Recipient+`"`), ContainSubstring("exceeded quota")))
		}).Should(Succeed())
		Expect(deliveries(ns, "quota")).To(HaveLen(2))
	})
})
