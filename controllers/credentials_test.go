package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

var _ = Describe("credentials over the network", func() {
	var ns string
	BeforeEach(func() {
		ns = newNamespace()
		stop := startManager(testOptions())
		DeferCleanup(func() { stop() })
	})

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

	It("makes an SMTP provider with insecureSkipVerify not Ready without --allow-insecure-skip-verify", func() {
		createProvider(ns, "skip", notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelEmail,
			SMTP:    &notifyv1.SMTPProvider{Host: "smtp.example.test", Port: 587, From: "herald@example.com", InsecureSkipVerify: true},
		})
		notReady("skip", notifyv1.ReasonInsecureSkipVerifyNotAllowed, "--allow-insecure-skip-verify")
	})
})
