package controllers_test

import (
	"encoding/json"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/dev/mailpit"
)

var _ = Describe("retention of finished Notifications", func() {
	It("deletes a finished Notification and its deliveries after --default-ttl-after-finished", func() {
		ns := newNamespace()
		opts := testOptions()
		opts.DefaultTTLAfterFinished = 2 * time.Second
		stop := startManager(opts)
		DeferCleanup(func() { stop() })
		createRecipient(ns, "alice", nil)
		notification(ns, "done", func(s *notifyv1.NotificationSpec) {
			s.Channels = []notifyv1.Channel{notifyv1.ChannelInApp}
		})
		waitPhase(ns, "done", notifyv1.NotificationDelivered)
		Eventually(func() bool {
			err := k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: "done"}, &notifyv1.Notification{})
			return apierrors.IsNotFound(err)
		}).WithTimeout(20 * time.Second).Should(BeTrue())
	})

	// The numbers docs/operations.md uses for the etcd arithmetic: the
	// JSON the API server stores (metadata, managedFields and status
	// included) of a typical Notification and of one delivery per channel.
	It("measures the stored size of a Notification and its deliveries", func() {
		mp, err := mailpit.Start(mailpit.Options{Username: "herald", Password: "mail-pass", TLS: mailpit.TLSStartTLS})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = mp.Close() })
		sink := newWebhookSink()
		DeferCleanup(sink.Close)
		ns := newNamespace()
		stop := startManager(testOptions())
		DeferCleanup(func() { stop() })
		smtpProvider(ns, "mail", mp, "mail-pass")
		waitProviderReady(ns, "mail")
		createWebhookProvider(ns, sink.URL)
		createRecipient(ns, "alice", nil)
		notification(ns, "disk", func(s *notifyv1.NotificationSpec) {
			s.Channels = []notifyv1.Channel{notifyv1.ChannelInApp, notifyv1.ChannelEmail, notifyv1.ChannelWebhook}
		})
		n := waitPhase(ns, "disk", notifyv1.NotificationDelivered)
		size := func(o client.Object) int {
			b, err := json.Marshal(o)
			Expect(err).NotTo(HaveOccurred())
			return len(b)
		}
		GinkgoWriter.Printf("stored JSON bytes: Notification %d\n", size(n))
		for _, ch := range []notifyv1.Channel{notifyv1.ChannelInApp, notifyv1.ChannelEmail, notifyv1.ChannelWebhook} {
			d := getDelivery(ns, "disk", ch, "alice")
			Expect(d.Phase()).To(Equal(notifyv1.DeliverySucceeded))
			b := size(d)
			GinkgoWriter.Printf("stored JSON bytes: ChannelDelivery %s %d\n", ch, b)
			// A sanity bound the docs' arithmetic relies on.
			Expect(b).To(BeNumerically("<", 8192))
		}
	})
})
