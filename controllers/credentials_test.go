package controllers_test

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

var _ = Describe("credentials over the network", func() {
	var ns string
	BeforeEach(func() { ns = newNamespaceWithManager() })

	notReady := func(name, reason, message string) {
		GinkgoHelper()
		Eventually(func(g Gomega) {
			c := providerReady(g, ns, name)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(reason))
			g.Expect(c.Message).To(ContainSubstring(message))
		}).Should(Succeed())
	}

	It("makes a provider that would send a token over plain http to a host --egress-allow does not name not Ready with InsecureCredentials", func() {
		createSecret(ns, "meta", map[string]string{"token": "EAAx"})
		createProvider(ns, "cloud", notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelWhatsApp,
			WhatsApp: &notifyv1.WhatsAppProvider{
				API: notifyv1.WhatsAppCloud, BaseURL: "http://graph.example.test", PhoneNumberID: "106540352242922",
				CredentialsSecretRef: &notifyv1.SecretReference{Name: "meta"},
			},
		})
		notReady("cloud", notifyv1.ReasonInsecureCredentials, "use an https spec.whatsapp.baseURL")
	})

	It("sends webhook headersFrom values from the Secret, and the Secret's new value after it changes", func() {
		sink := newWebhookSink()
		DeferCleanup(sink.Close)
		createSecret(ns, "hook-auth", map[string]string{"authorization": "Bearer one"})
		// Plain http to loopback: the suite's --egress-allow 127.0.0.0/8
		// allows the address, so the header may travel without TLS.
		createProvider(ns, "hook", notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelWebhook,
			Default: true,
			Webhook: &notifyv1.WebhookProvider{URL: sink.URL + "/hook", HeadersFrom: []notifyv1.WebhookHeaderFromSecret{
				{Name: "Authorization", SecretKeyRef: notifyv1.SecretKeyReference{Name: "hook-auth", Key: "authorization"}},
			}},
		})
		waitProviderReady(ns, "hook")
		createRecipient(ns, "alice", nil)
		notification(ns, "first", nil)
		waitPhase(ns, "first", notifyv1.NotificationDelivered)
		Expect(sink.all()).To(HaveLen(1))
		Expect(sink.all()[0].Header.Get("Authorization")).To(Equal("Bearer one"))

		var s corev1.Secret
		Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: "hook-auth"}, &s)).To(Succeed())
		s.Data["authorization"] = []byte("Bearer two")
		Expect(k8sClient.Update(suiteCtx, &s)).To(Succeed())
		tries := 0
		Eventually(func(g Gomega) {
			// Each try is a new Notification; once the provider is
			// rebuilt from the changed Secret it carries the new value.
			tries++
			name := fmt.Sprintf("after-%d", tries)
			notification(ns, name, nil)
			waitPhase(ns, name, notifyv1.NotificationDelivered)
			reqs := sink.all()
			g.Expect(reqs).NotTo(BeEmpty())
			g.Expect(reqs[len(reqs)-1].Header.Get("Authorization")).To(Equal("Bearer two"))
		}).Should(Succeed())
	})

	It("makes an SMTP provider with insecureSkipVerify not Ready without --allow-insecure-skip-verify", func() {
		createProvider(ns, "skip", notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelEmail,
			SMTP:    &notifyv1.SMTPProvider{Host: "smtp.example.test", Port: 587, From: "herald@example.com", InsecureSkipVerify: true},
		})
		notReady("skip", notifyv1.ReasonInsecureSkipVerifyNotAllowed, "--allow-insecure-skip-verify")
	})
})
