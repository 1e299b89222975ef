package controllers_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

var _ = Describe("a controller restart", func() {
	// start makes a namespace whose default webhook provider posts to a
	// sink of its own, with a manager running; stop stops that manager.
	start := func() (ns string, sink *webhookSink, stop func()) {
		ns = newNamespace()
		sink = newWebhookSink()
		DeferCleanup(sink.Close)
		stop = startManager(testOptions())
		createWebhookProvider(ns, sink.URL)
		return ns, sink, stop
	}

	It("records the attempts in flight when stopped, and a restart delivers the rest", func() {
		ns, sink, stop := start()
		// The sink holds every request, so the stop finds attempts in
		// flight: claimed (phase Sending) but without a result.
		release := make(chan struct{})
		sink.setBlock(release)

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

		// A stopping controller lets its claimed attempts run to their end
		// (here: their 1s timeout) and records them; none is left in
		// Sending for the next controller to guess about.
		timedOut := 0
		for _, d := range deliveries(ns, "interrupted") {
			Expect(d.Status.Phase).NotTo(Equal(notifyv1.DeliverySending), "%s was left Sending", d.Name)
			for _, a := range d.Status.History {
				if a.Reason == notifyv1.ReasonTimeout {
					timedOut++
				}
			}
		}
		Expect(timedOut).To(BeNumerically(">=", 5))

		sink.setBlock(nil)
		close(release)
		stop = startManager(testOptions())
		DeferCleanup(func() { stop() })

		nn := waitPhase(ns, "interrupted", notifyv1.NotificationDelivered)
		Expect(nn.Status.Deliveries.Total).To(BeEquivalentTo(2 * n))
		Expect(nn.Status.Deliveries.Succeeded).To(BeEquivalentTo(2 * n))
		keys := sink.succeededKeys()
		Expect(keys).To(HaveLen(n), "every webhook delivery reached the sink")
		for _, d := range deliveries(ns, "interrupted") {
			Expect(d.Phase()).To(Equal(notifyv1.DeliverySucceeded))
			if d.Spec.Channel == notifyv1.ChannelWebhook {
				Expect(keys).To(HaveKey(string(d.UID)))
			}
		}
	})

	It("retries an attempt abandoned by a controller that died during it", func() {
		ns, sink, stop := start()
		stop()
		// What a controller that died mid-send leaves behind: an attempt
		// claimed long ago, never recorded.
		d := &notifyv1.ChannelDelivery{
			ObjectMeta: metav1.ObjectMeta{Name: "crashed-webhook-alice", Namespace: ns, Labels: map[string]string{
				notifyv1.LabelNotification: "crashed", notifyv1.LabelChannel: string(notifyv1.ChannelWebhook), notifyv1.LabelRecipient: "alice"}},
			Spec: notifyv1.ChannelDeliverySpec{
				Notification: "crashed", Channel: notifyv1.ChannelWebhook,
				Recipient: notifyv1.RecipientSnapshot{Name: "alice", Username: "alice"},
				Content:   notifyv1.RenderedContent{Type: notifyv1.TypeInformational, Title: "Interrupted", Message: "The first attempt never finished."},
				Timeout:   &metav1.Duration{Duration: time.Second},
			},
		}
		Expect(k8sClient.Create(suiteCtx, d)).To(Succeed())
		d.Status = notifyv1.ChannelDeliveryStatus{
			Phase: notifyv1.DeliverySending, Attempts: 1,
			AttemptStartTime: &metav1.MicroTime{Time: time.Now().Add(-time.Minute)},
		}
		Expect(k8sClient.Status().Update(suiteCtx, d)).To(Succeed())

		stop = startManager(testOptions())
		DeferCleanup(func() { stop() })
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(suiteCtx, client.ObjectKeyFromObject(d), d)).To(Succeed())
			g.Expect(d.Status.Phase).To(Equal(notifyv1.DeliverySucceeded), "status: %+v", d.Status)
		}).Should(Succeed())
		Expect(d.Status.Attempts).To(BeEquivalentTo(2))
		Expect(d.Status.History).To(HaveLen(2))
		Expect(d.Status.History[0].Outcome).To(Equal("Abandoned"))
		Expect(d.Status.History[1].Outcome).To(Equal("Succeeded"))
		Expect(sink.succeededKeys()).To(Equal(map[string]int{string(d.UID): 1}))
	})

	It("creates nothing new when restarted after completion", func() {
		ns, sink, stop := start()
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
