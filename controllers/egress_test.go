package controllers_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// These specs run a controller under the default egress policy, which
// refuses loopback, and point providers and recipients at a loopback
// sink: a refusal never connects, and if the policy failed the request
// would only reach the sink, which records it.
var _ = Describe("the egress policy", func() {
	var (
		ns   string
		sink *webhookSink
	)
	BeforeEach(func() {
		ns = newNamespace()
		sink = newWebhookSink()
		DeferCleanup(sink.Close)
		opts := testOptions()
		opts.EgressAllow = nil // the production default
		stop := startManager(opts)
		DeferCleanup(func() { stop() })
	})

	It("makes a webhook provider whose URL is a refused address not Ready with DestinationNotAllowed", func() {
		createProvider(ns, "internal", notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelWebhook,
			Default: true,
			Webhook: &notifyv1.WebhookProvider{URL: sink.URL + "/hook"},
		})
		Eventually(func(g Gomega) {
			c := providerReady(g, ns, "internal")
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(string(notifyv1.ReasonDestinationNotAllowed)))
			g.Expect(c.Message).To(ContainSubstring("loopback"))
		}).Should(Succeed())
		expectEvent(ns, "internal", string(notifyv1.ReasonDestinationNotAllowed))
		Expect(sink.all()).To(BeEmpty())
	})

	It("fails a delivery to a Recipient webhookURL that is, or resolves to, a refused address with DestinationNotAllowed, without retrying", func() {
		createProvider(ns, "per-recipient", notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelWebhook,
			Default: true,
			Webhook: &notifyv1.WebhookProvider{},
		})
		waitProviderReady(ns, "per-recipient")
		port := sink.URL[strings.LastIndex(sink.URL, ":")+1:]
		createRecipient(ns, "literal", func(s *notifyv1.RecipientSpec) { s.WebhookURL = sink.URL + "/literal" })
		// localhost resolves to loopback: the refusal happens after DNS.
		createRecipient(ns, "named", func(s *notifyv1.RecipientSpec) { s.WebhookURL = "http://localhost:" + port + "/named" })
		notification(ns, "egress", func(s *notifyv1.NotificationSpec) {
			s.Audience = notifyv1.Audience{Users: []string{"literal", "named"}}
			s.Retry = fastRetry(4)
		})
		waitPhase(ns, "egress", notifyv1.NotificationFailed)
		for _, user := range []string{"literal", "named"} {
			d := getDelivery(ns, "egress", notifyv1.ChannelWebhook, user)
			Expect(d.Status.Phase).To(Equal(notifyv1.DeliveryFailed), user)
			Expect(d.Status.Reason).To(Equal(string(notifyv1.ReasonDestinationNotAllowed)), user)
			Expect(d.Status.LastErrorReason).To(Equal(notifyv1.ReasonDestinationNotAllowed), user)
			Expect(d.Status.LastError).To(ContainSubstring("loopback"), user)
			Expect(d.Status.Attempts).To(BeEquivalentTo(1), "%s: a refusal is permanent", user)
			expectEvent(ns, d.Name, string(notifyv1.ReasonDestinationNotAllowed))
		}
		Expect(sink.all()).To(BeEmpty(), "the sink was never reached")
	})
})

var _ = Describe("provider Secrets", func() {
	var ns string
	BeforeEach(func() { ns = newNamespaceWithManager() })

	It("refuse a Secret without the opt-in label until it is labelled, and a service-account token always", func() {
		Expect(k8sClient.Create(suiteCtx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "app-credentials", Namespace: ns},
			StringData: map[string]string{"key": "s3cret"},
		})).To(Succeed())
		Expect(k8sClient.Create(suiteCtx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "default-token", Namespace: ns, Labels: providerSecretLabels,
				Annotations: map[string]string{corev1.ServiceAccountNameKey: "default"}},
			Type:       corev1.SecretTypeServiceAccountToken,
			StringData: map[string]string{"key": "s3cret"},
		})).To(Succeed())
		for name, secret := range map[string]string{"unlabelled": "app-credentials", "token": "default-token"} {
			createProvider(ns, name, notifyv1.NotificationProviderSpec{
				Channel: notifyv1.ChannelWebhook,
				Webhook: &notifyv1.WebhookProvider{URL: "https://hooks.example.com/x",
					SigningSecretRef: &notifyv1.SecretKeyReference{Name: secret, Key: "key"}},
			})
		}
		for name, want := range map[string]string{"unlabelled": "notify.herald.dev/provider-secret=true", "token": "service-account token"} {
			Eventually(func(g Gomega) {
				c := providerReady(g, ns, name)
				g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
				g.Expect(c.Reason).To(Equal(notifyv1.ReasonSecretNotAllowed))
				g.Expect(c.Message).To(ContainSubstring(want))
			}).Should(Succeed())
			expectEvent(ns, name, notifyv1.ReasonSecretNotAllowed)
		}

		By("labelling the Secret opts it in")
		var s corev1.Secret
		Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: "app-credentials"}, &s)).To(Succeed())
		s.Labels = providerSecretLabels
		Expect(k8sClient.Update(suiteCtx, &s)).To(Succeed())
		waitProviderReady(ns, "unlabelled")
	})
})
