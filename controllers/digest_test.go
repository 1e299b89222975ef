package controllers_test

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testingclock "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	notificationctl "github.com/herald-dev/herald/controllers/notification"
	"github.com/herald-dev/herald/internal/dev/mailpit"
	"github.com/herald-dev/herald/internal/digest"
)

var _ = Describe("Digests", func() {
	It("sends one email listing 20 deployments notifications of an hour, across a restart, and nothing twice", func() {
		mp, err := mailpit.Start(mailpit.Options{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = mp.Close() })
		// Five minutes into an hour of the fake clock.
		hour := time.Now().Truncate(time.Hour).Add(-2 * time.Hour)
		clock := testingclock.NewFakeClock(hour.Add(5 * time.Minute))
		opts := testOptions()
		opts.Clock = clock
		stop := startManager(opts)
		DeferCleanup(func() { stop() })
		ns := newNamespace()
		createProvider(ns, "smtp", notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelEmail, Default: true,
			SMTP: &notifyv1.SMTPProvider{Host: "localhost", Port: int32(mp.Port()), TLS: notifyv1.SMTPTLSNone, From: "herald@example.com"},
		})
		waitProviderReady(ns, "smtp")
		address := ns + "-alice@example.com"
		createRecipient(ns, "alice", func(s *notifyv1.RecipientSpec) {
			s.Email = address
			s.Timezone = "Europe/Berlin"
			s.Preferences.Digests = []notifyv1.DigestPreference{{Categories: []string{"deployments"}, Every: &metav1.Duration{Duration: time.Hour}}}
		})
		messagesTo := func(g Gomega) []mailpit.MessageSummary {
			all, err := mp.Messages(suiteCtx)
			g.Expect(err).NotTo(HaveOccurred())
			var out []mailpit.MessageSummary
			for _, m := range all {
				for _, to := range m.To {
					if to.Address == address {
						out = append(out, m)
					}
				}
			}
			return out
		}

		By("20 deployments notifications and one critical one")
		for i := range 20 {
			notification(ns, fmt.Sprintf("deploy-%02d", i), func(s *notifyv1.NotificationSpec) {
				s.Type, s.Category = notifyv1.TypeInformational, "deployments"
				s.Title, s.Message = fmt.Sprintf("Deployed web v1.%d", i), "rolled out to production"
				s.Channels = []notifyv1.Channel{notifyv1.ChannelInApp, notifyv1.ChannelEmail}
			})
		}
		notification(ns, "deploy-broken", func(s *notifyv1.NotificationSpec) {
			s.Type, s.Category = notifyv1.TypeCritical, "deployments"
			s.Title, s.Message = "Rollout stuck", "web is not progressing"
			s.Channels = []notifyv1.Channel{notifyv1.ChannelEmail}
		})
		end := hour.Add(time.Hour)
		digestName := digest.DeliveryName("alice", notifyv1.ChannelEmail, end, "")
		Eventually(func(g Gomega) {
			for i := range 20 {
				var d notifyv1.ChannelDelivery
				name := fmt.Sprintf("deploy-%02d", i)
				g.Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: notificationctl.DeliveryName(name, notifyv1.ChannelEmail, "alice")}, &d)).To(Succeed())
				g.Expect(d.Spec.Digest).NotTo(BeNil())
				g.Expect(d.Spec.Digest.Name).To(Equal(digestName))
				g.Expect(d.Spec.Digest.Until.Time.Equal(end)).To(BeTrue())
				g.Expect(d.Status.Reason).To(Equal(notifyv1.ReasonHeldForDigest))
				g.Expect(getDeliveryG(g, ns, name, notifyv1.ChannelInApp, "alice").Phase()).To(Equal(notifyv1.DeliverySucceeded), "in-app is never held")
			}
			g.Expect(messagesTo(g)).To(HaveLen(1), "only the critical one is sent at once")
		}).Should(Succeed())

		By("restarting the controller mid-window")
		stop()
		stop = startManager(opts)
		Consistently(func(g Gomega) {
			g.Expect(messagesTo(g)).To(HaveLen(1))
		}, "1s").Should(Succeed())

		By("the window ends: one email lists all 20")
		clock.SetTime(end.Add(time.Second))
		touch(getDelivery(ns, "deploy-07", notifyv1.ChannelEmail, "alice"))
		var summary mailpit.MessageSummary
		Eventually(func(g Gomega) {
			msgs := messagesTo(g)
			g.Expect(msgs).To(HaveLen(2))
			for _, m := range msgs {
				if strings.HasPrefix(m.Subject, "Digest") {
					summary = m
				}
			}
			g.Expect(summary.Subject).To(Equal("Digest: 20 notifications (deployments)"))
		}).Should(Succeed())
		msg, err := mp.Message(suiteCtx, summary.ID)
		Expect(err).NotTo(HaveOccurred())
		text := strings.ReplaceAll(msg.Text, "\r\n", "\n")
		for i := range 20 {
			Expect(text).To(ContainSubstring(fmt.Sprintf("%d. [", i+1)))
			Expect(text).To(ContainSubstring(fmt.Sprintf("] Deployed web v1.%d\n   rolled out to production", i)))
		}
		Eventually(func(g Gomega) {
			for i := range 20 {
				d := getDeliveryG(g, ns, fmt.Sprintf("deploy-%02d", i), notifyv1.ChannelEmail, "alice")
				g.Expect(d.Status.Phase).To(Equal(notifyv1.DeliverySucceeded))
				g.Expect(d.Status.Reason).To(Equal(notifyv1.ReasonDigested))
				g.Expect(d.Status.DigestedBy).To(Equal(digestName))
			}
			var dg notifyv1.ChannelDelivery
			g.Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: digestName}, &dg)).To(Succeed())
			g.Expect(dg.Spec.DigestOf).To(HaveLen(20))
			g.Expect(dg.Status.Phase).To(Equal(notifyv1.DeliverySucceeded))
			g.Expect(getNotification(ns, "deploy-13").Status.Phase).To(Equal(notifyv1.NotificationDelivered))
		}).Should(Succeed())

		By("restarting again sends nothing twice")
		stop()
		stop = startManager(opts)
		touch(getDelivery(ns, "deploy-07", notifyv1.ChannelEmail, "alice"))
		Consistently(func(g Gomega) {
			g.Expect(messagesTo(g)).To(HaveLen(2))
		}, "1s").Should(Succeed())
	})
})

func getDeliveryG(g Gomega, ns, notification string, ch notifyv1.Channel, recipient string) *notifyv1.ChannelDelivery {
	var d notifyv1.ChannelDelivery
	g.Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: notificationctl.DeliveryName(notification, ch, recipient)}, &d)).To(Succeed())
	return &d
}
