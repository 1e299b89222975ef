package controllers_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

var _ = Describe("a recipient's own webhook endpoint refusing", func() {
	It("fails that delivery alone; the other 99 are delivered and the provider stays Ready", func() {
		ns := newNamespace()
		sink := newWebhookSink()
		DeferCleanup(sink.Close)
		var refusals atomic.Int32
		forbidden := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			refusals.Add(1)
			w.WriteHeader(http.StatusForbidden)
		}))
		DeferCleanup(forbidden.Close)
		stop := startManager(testOptions())
		DeferCleanup(func() { stop() })

		// No url on the provider: each recipient's own webhookURL is used.
		Expect(k8sClient.Create(suiteCtx, &notifyv1.NotificationProvider{
			ObjectMeta: metav1.ObjectMeta{Name: "hook", Namespace: ns},
			Spec: notifyv1.NotificationProviderSpec{
				Channel: notifyv1.ChannelWebhook,
				Default: true,
				Webhook: &notifyv1.WebhookProvider{},
			},
		})).To(Succeed())
		waitProviderReady(ns, "hook")
		for i := range 99 {
			createRecipient(ns, fmt.Sprintf("r%02d", i), func(s *notifyv1.RecipientSpec) {
				s.Roles = []string{"all"}
				s.WebhookURL = sink.URL + "/hooks/" + fmt.Sprint(i)
			})
		}
		createRecipient(ns, "mallory", func(s *notifyv1.RecipientSpec) {
			s.Roles = []string{"all"}
			s.WebhookURL = forbidden.URL + "/hook"
		})

		notification(ns, "fanout", func(s *notifyv1.NotificationSpec) {
			s.Audience = notifyv1.Audience{Roles: []string{"all"}}
			s.Retry = &notifyv1.RetryPolicy{MaxAttempts: ptr.To[int32](3), InitialDelay: &metav1.Duration{Duration: 50 * time.Millisecond}}
		})
		n := waitPhase(ns, "fanout", notifyv1.NotificationPartiallyDelivered)
		Expect(n.Status.Deliveries.Total).To(BeEquivalentTo(100))
		Expect(n.Status.Deliveries.Succeeded).To(BeEquivalentTo(99))
		Expect(n.Status.Deliveries.Failed).To(BeEquivalentTo(1))
		Expect(sink.succeededKeys()).To(HaveLen(99))

		d := getDelivery(ns, "fanout", notifyv1.ChannelWebhook, "mallory")
		Expect(d.Status.Phase).To(Equal(notifyv1.DeliveryFailed))
		Expect(d.Status.Reason).To(Equal(notifyv1.ReasonRecipientRejected))
		Expect(d.Status.Attempts).To(BeEquivalentTo(1), "a refusal is not retried")
		Expect(d.Status.LastError).To(ContainSubstring("403"))
		Expect(refusals.Load()).To(BeEquivalentTo(1))
		expectEvent(ns, d.Name, notifyv1.ReasonRecipientRejected)

		c := providerReady(Default, ns, "hook")
		Expect(c.Status).To(Equal(metav1.ConditionTrue), "provider Ready: %+v", c)
		Expect(c.Reason).To(Equal(notifyv1.ReasonReady))
		// And the next notification goes through at once.
		notification(ns, "after", func(s *notifyv1.NotificationSpec) {
			s.Audience = notifyv1.Audience{Users: []string{"r00"}}
		})
		waitPhase(ns, "after", notifyv1.NotificationDelivered)
	})
})
