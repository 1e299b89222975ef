package controllers_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

var _ = Describe("a controller restart", func() {
	It("finishes every delivery of a run interrupted mid-flight, losing nothing", func() {
		ns := newNamespace()
		sink := newWebhookSink()
		DeferCleanup(sink.Close)
		// The sink holds every request, so the stop finds attempts in
		// flight: claimed (phase Sending) but without a result.
		release := make(chan struct{})
		sink.setBlock(release)
		stop := startManager(testOptions())
		createWebhookProvider(ns, sink.URL)

		const n = 20
		var users []string
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("user-%02d", i)
			users = append(users, name)
			createRecipient(ns, name, nil)
		}
		notification(ns, "interrupted", func(s *notifyv1.NotificationSpec) {
			s.Audience = notifyv1.Audience{Users: users}
			s.Channels = []notifyv1.Channel{notifyv1.ChannelInApp, notifyv1.ChannelWebhook}
			s.Timeout = &metav1.Duration{Duration: time.Second}
		})
		Eventually(func() int {
			sending := 0
			for _, d := range deliveries(ns, "interrupted") {
				if d.Status.Phase == notifyv1.DeliverySending {
					sending++
				}
			}
			return sending
		}).Should(BeNumerically(">=", 5))
		stop()

		// The controller is gone with attempts in Sending. A new one must
		// count them as abandoned after their timeout and retry them.
		sink.setBlock(nil)
		close(release)
		stop = startManager(testOptions())
		DeferCleanup(func() { stop() })

		nn := waitPhase(ns, "interrupted", notifyv1.NotificationDelivered)
		Expect(nn.Status.Deliveries.Total).To(BeEquivalentTo(2 * n))
		Expect(nn.Status.Deliveries.Succeeded).To(BeEquivalentTo(2 * n))
		keys := sink.succeededKeys()
		Expect(keys).To(HaveLen(n), "every webhook delivery reached the sink")
		abandoned := 0
		for _, d := range deliveries(ns, "interrupted") {
			Expect(d.Status.Phase).To(Equal(notifyv1.DeliverySucceeded))
			if d.Spec.Channel != notifyv1.ChannelWebhook {
				continue
			}
			Expect(keys).To(HaveKey(string(d.UID)))
			for _, a := range d.Status.History {
				if a.Outcome == "Abandoned" {
					abandoned++
				}
			}
		}
		Expect(abandoned).To(BeNumerically(">=", 1))
		GinkgoWriter.Printf("abandoned attempts retried after restart: %d; duplicate sends seen at the sink: %d\n",
			abandoned, len(sink.all())-len(keys))
	})

	It("creates nothing new when restarted after completion", func() {
		ns := newNamespace()
		sink := newWebhookSink()
		DeferCleanup(sink.Close)
		stop := startManager(testOptions())
		createWebhookProvider(ns, sink.URL)
		createRecipient(ns, "alice", nil)
		createRecipient(ns, "bob", nil)
		notification(ns, "done", func(s *notifyv1.NotificationSpec) {
			s.Audience = notifyv1.Audience{Users: []string{"alice", "bob"}}
			s.Channels = []notifyv1.Channel{notifyv1.ChannelInApp, notifyv1.ChannelWebhook}
		})
		before := waitPhase(ns, "done", notifyv1.NotificationDelivered)
		versions := map[string]string{}
		for _, d := range deliveries(ns, "done") {
			versions[d.Name] = d.ResourceVersion
		}
		requests := len(sink.all())
		stop()

		stop = startManager(testOptions())
		DeferCleanup(func() { stop() })
		// A fresh notification proves the new manager is running before
		// we look for changes to the old one.
		notification(ns, "probe", func(s *notifyv1.NotificationSpec) { s.Channels = []notifyv1.Channel{notifyv1.ChannelInApp} })
		waitPhase(ns, "probe", notifyv1.NotificationDelivered)

		Consistently(func(g Gomega) {
			after := getNotification(ns, "done")
			g.Expect(after.ResourceVersion).To(Equal(before.ResourceVersion))
			ds := deliveries(ns, "done")
			g.Expect(ds).To(HaveLen(len(versions)))
			for _, d := range ds {
				g.Expect(d.ResourceVersion).To(Equal(versions[d.Name]), d.Name)
			}
			g.Expect(sink.all()).To(HaveLen(requests))
		}, 2*time.Second, 200*time.Millisecond).Should(Succeed())
	})
})
