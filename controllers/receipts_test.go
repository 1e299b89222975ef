package controllers_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/dev/providerfake"
	"github.com/herald-dev/herald/internal/receiver"
)

// startReceiver runs `herald receiver` against the test control plane, on a
// loopback port, until the spec ends, and returns its base URL.
func startReceiver() string {
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 testEnv.Scheme,
		Cache:                  receiver.CacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	srv, err := receiver.Setup(mgr, receiver.DefaultOptions())
	Expect(err).NotTo(HaveOccurred())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	srv.Listener = l
	ctx, cancel := context.WithCancel(suiteCtx)
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	DeferCleanup(func() {
		cancel()
		<-done
	})
	Expect(mgr.GetCache().WaitForCacheSync(ctx)).To(BeTrue())
	return "http://" + l.Addr().String()
}

var _ = Describe("Delivery receipts", func() {
	var (
		ns        string
		base      string
		meta_     *providerfake.Meta
		twilio    *providerfake.Twilio
		metaURL   string
		twilioURL string
	)

	BeforeEach(func() {
		ns = newNamespaceWithManager()
		base = startReceiver()
		meta_ = providerfake.NewMeta()
		twilio = providerfake.NewTwilio()
		DeferCleanup(meta_.Close)
		DeferCleanup(twilio.Close)

		createSecret(ns, "meta", map[string]string{"token": meta_.AccessToken})
		createSecret(ns, "meta-webhook", map[string]string{"appSecret": meta_.AppSecret, "verifyToken": "let-me-in"})
		createProvider(ns, "cloud", notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelWhatsApp,
			Default: true,
			WhatsApp: &notifyv1.WhatsAppProvider{
				API: notifyv1.WhatsAppCloud, BaseURL: meta_.URL, APIVersion: meta_.APIVersion, PhoneNumberID: meta_.PhoneNumberID,
				CredentialsSecretRef: &notifyv1.SecretReference{Name: "meta"},
				Receipts: &notifyv1.WhatsAppReceipts{
					AppSecretRef:   &notifyv1.SecretKeyReference{Name: "meta-webhook", Key: "appSecret"},
					VerifyTokenRef: &notifyv1.SecretKeyReference{Name: "meta-webhook", Key: "verifyToken"},
				},
			},
			Fallback: []string{"twilio"},
		})
		createSecret(ns, "twilio", map[string]string{"authToken": twilio.AuthToken})
		createProvider(ns, "twilio", notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelWhatsApp,
			WhatsApp: &notifyv1.WhatsAppProvider{
				API: notifyv1.WhatsAppTwilio, BaseURL: twilio.URL, AccountSID: twilio.AccountSID, From: twilio.From,
				CredentialsSecretRef: &notifyv1.SecretReference{Name: "twilio"},
				Receipts:             &notifyv1.WhatsAppReceipts{},
			},
		})
		waitProviderReady(ns, "cloud")
		waitProviderReady(ns, "twilio")
		createRecipient(ns, "jo", func(s *notifyv1.RecipientSpec) { s.Phone = "+4915112345678" })
		metaURL = base + "/receipts/meta/" + ns + "/cloud"
		twilioURL = base + "/receipts/twilio/" + ns + "/twilio"
	})

	// sent delivers a WhatsApp notification through provider and returns
	// its delivery once Succeeded, with the provider message ID.
	sent := func(name, provider string) *notifyv1.ChannelDelivery {
		notification(ns, name, func(s *notifyv1.NotificationSpec) {
			s.Audience = notifyv1.Audience{Users: []string{"jo"}}
			s.Channels = []notifyv1.Channel{notifyv1.ChannelWhatsApp}
			s.Providers = &notifyv1.ChannelProviders{WhatsApp: provider}
			s.Retry = fastRetry(2)
		})
		waitPhase(ns, name, notifyv1.NotificationDelivered)
		d := getDelivery(ns, name, notifyv1.ChannelWhatsApp, "jo")
		Expect(d.Status.ProviderMessageID).NotTo(BeEmpty())
		return d
	}

	// answered sends a callback until the receiver's cache has the
	// delivery (an unknown message is answered 404 and changes nothing),
	// and returns the first other answer.
	answered := func(send func() (providerfake.CallbackResult, error)) providerfake.CallbackResult {
		var res providerfake.CallbackResult
		Eventually(func(g Gomega) {
			var err error
			res, err = send()
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(res.Status).NotTo(Equal(http.StatusNotFound), res.Body)
		}).Should(Succeed())
		return res
	}

	reread := func(d *notifyv1.ChannelDelivery) *notifyv1.ChannelDelivery {
		var out notifyv1.ChannelDelivery
		Expect(k8sClient.Get(suiteCtx, client.ObjectKeyFromObject(d), &out)).To(Succeed())
		return &out
	}

	It("answers Meta's subscription handshake only with the verify token", func() {
		_, ok, err := meta_.Subscribe(suiteCtx, metaURL, "let-me-in")
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeTrue())
		res, ok, err := meta_.Subscribe(suiteCtx, metaURL, "guess")
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeFalse())
		Expect(res.Status).To(Equal(http.StatusForbidden))
		res, _, err = meta_.Subscribe(suiteCtx, base+"/receipts/meta/"+ns+"/twilio", "let-me-in")
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Status).To(Equal(http.StatusNotFound))
	})

	It("fails a WhatsApp message that Meta accepted and then reported failed with 131047", func() {
		d := sent("late-failure", "cloud")
		failed := providerfake.MetaStatus{MessageID: d.Status.ProviderMessageID, Status: "failed", ErrorCode: 131047}

		// Unsigned and forged callbacks change nothing.
		body := meta_.StatusWebhook(failed)
		res, err := meta_.PostWebhook(suiteCtx, metaURL, body, "")
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Status).To(Equal(http.StatusUnauthorized))
		forged := providerfake.NewMeta()
		forged.AppSecret = "not-the-app-secret"
		forged.Close()
		res, err = meta_.PostWebhook(suiteCtx, metaURL, body, forged.SignWebhook(body))
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Status).To(Equal(http.StatusForbidden))
		Consistently(func(g Gomega) {
			now := reread(d)
			g.Expect(now.Status.Phase).To(Equal(notifyv1.DeliverySucceeded))
			g.Expect(now.Status.Receipt).To(BeNil())
		}, "300ms").Should(Succeed())

		// A callback for a message no delivery sent is unknown.
		res, err = meta_.SendStatus(suiteCtx, metaURL, providerfake.MetaStatus{MessageID: "wamid.unknown", Status: "delivered"})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Status).To(Equal(http.StatusNotFound))

		// sent, then failed: the delivery ends Failed with the reason the
		// send path gives 131047.
		res = answered(func() (providerfake.CallbackResult, error) {
			return meta_.SendStatus(suiteCtx, metaURL, providerfake.MetaStatus{MessageID: d.Status.ProviderMessageID, Status: "sent"})
		})
		Expect(res.Status).To(Equal(http.StatusOK), res.Body)
		res, err = meta_.SendStatus(suiteCtx, metaURL, failed)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Status).To(Equal(http.StatusOK), res.Body)

		now := reread(d)
		Expect(now.Status.Phase).To(Equal(notifyv1.DeliveryFailed))
		Expect(now.Status.Reason).To(Equal(notifyv1.ReasonRecipientRejected))
		Expect(now.Status.LastErrorReason).To(Equal(notifyv1.ReasonPermanent))
		Expect(now.Status.LastError).To(ContainSubstring("131047"))
		Expect(now.Status.Receipt).NotTo(BeNil())
		Expect(now.Status.Receipt.State).To(Equal(notifyv1.ReceiptFailed))
		Expect(now.Status.Receipt.Code).To(Equal("meta 131047"))
		Expect(strings.ToLower(now.Status.Receipt.Reason)).To(ContainSubstring("template"))

		// The Notification counts it as failed.
		n := waitPhase(ns, "late-failure", notifyv1.NotificationFailed)
		Expect(n.Status.Deliveries.Failed).To(BeEquivalentTo(1))
		Expect(n.Status.Deliveries.Succeeded).To(BeEquivalentTo(0))
		c := meta.FindStatusCondition(n.Status.Conditions, notifyv1.ConditionDelivered)
		Expect(c).NotTo(BeNil())
		Expect(c.Status).To(Equal(metav1.ConditionFalse))
		Expect(c.Reason).To(Equal(notifyv1.ReasonAllFailed))
		expectEvent(ns, d.Name, notifyv1.ReasonReceiptFailed)
		expectEvent(ns, "late-failure", notifyv1.ReasonReceiptFailed)

		// The same callback again is a replay: 409, nothing written.
		rv := now.ResourceVersion
		res, err = meta_.SendStatus(suiteCtx, metaURL, failed)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Status).To(Equal(http.StatusConflict), res.Body)
		// And nothing comes after failed.
		res, err = meta_.SendStatus(suiteCtx, metaURL, providerfake.MetaStatus{MessageID: d.Status.ProviderMessageID, Status: "read"})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Status).To(Equal(http.StatusOK), res.Body)
		Expect(reread(d).ResourceVersion).To(Equal(rv))
	})

	It("records Meta's receipts forward only, and refuses old statuses", func() {
		d := sent("in-order", "cloud")
		id := d.Status.ProviderMessageID
		res := answered(func() (providerfake.CallbackResult, error) {
			return meta_.SendStatus(suiteCtx, metaURL, providerfake.MetaStatus{MessageID: id, Status: "read"})
		})
		Expect(res.Status).To(Equal(http.StatusOK), res.Body)
		Expect(reread(d).Status.Receipt.State).To(Equal(notifyv1.ReceiptRead))

		// delivered after read, and failed after read: ignored.
		res, err := meta_.SendStatus(suiteCtx, metaURL,
			providerfake.MetaStatus{MessageID: id, Status: "delivered"},
			providerfake.MetaStatus{MessageID: id, Status: "failed", ErrorCode: 131026})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Status).To(Equal(http.StatusOK), res.Body)
		now := reread(d)
		Expect(now.Status.Receipt.State).To(Equal(notifyv1.ReceiptRead))
		Expect(now.Status.Phase).To(Equal(notifyv1.DeliverySucceeded))

		// A status older than the message, or than the replay window,
		// is refused whole.
		res, err = meta_.SendStatus(suiteCtx, metaURL, providerfake.MetaStatus{MessageID: id, Status: "sent", Time: time.Now().Add(-30 * 24 * time.Hour)})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Status).To(Equal(http.StatusConflict), res.Body)
		Expect(reread(d).ResourceVersion).To(Equal(now.ResourceVersion))
	})

	It("fails a WhatsApp message that Twilio reported undelivered with 63016", func() {
		d := sent("twilio-late", "twilio")
		sid := d.Status.ProviderMessageID
		undelivered := providerfake.TwilioStatus{MessageSID: sid, Status: "undelivered", ErrorCode: 63016}

		form := twilio.StatusForm(undelivered)
		res, err := twilio.PostCallback(suiteCtx, twilioURL, form, "")
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Status).To(Equal(http.StatusUnauthorized))
		// Signed for another URL (another tenant's, say): refused.
		other := base + "/receipts/twilio/other-ns/twilio"
		res, err = twilio.PostCallback(suiteCtx, twilioURL, form, twilio.SignCallback(other, form))
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Status).To(Equal(http.StatusForbidden))
		// A changed parameter breaks the signature.
		tampered := url.Values{}
		for k, v := range form {
			tampered[k] = v
		}
		sig := twilio.SignCallback(twilioURL, form)
		tampered.Set("ErrorCode", "63003")
		res, err = twilio.PostCallback(suiteCtx, twilioURL, tampered, sig)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Status).To(Equal(http.StatusForbidden))
		Expect(reread(d).Status.Receipt).To(BeNil())
		Expect(reread(d).Status.Phase).To(Equal(notifyv1.DeliverySucceeded))

		res = answered(func() (providerfake.CallbackResult, error) {
			return twilio.SendStatus(suiteCtx, twilioURL, providerfake.TwilioStatus{MessageSID: sid, Status: "sent"})
		})
		Expect(res.Status).To(Equal(http.StatusOK), res.Body)
		res, err = twilio.SendStatus(suiteCtx, twilioURL, undelivered)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Status).To(Equal(http.StatusOK), res.Body)

		now := reread(d)
		Expect(now.Status.Phase).To(Equal(notifyv1.DeliveryFailed))
		Expect(now.Status.Reason).To(Equal(notifyv1.ReasonRecipientRejected))
		Expect(now.Status.Receipt.Code).To(Equal("twilio 63016"))
		Expect(now.Status.LastError).To(ContainSubstring("63016"))
		n := waitPhase(ns, "twilio-late", notifyv1.NotificationFailed)
		Expect(n.Status.Deliveries.Failed).To(BeEquivalentTo(1))
		expectEvent(ns, d.Name, notifyv1.ReasonReceiptFailed)

		res, err = twilio.SendStatus(suiteCtx, twilioURL, undelivered)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Status).To(Equal(http.StatusConflict))
	})

	It("opens the provider's circuit on a provider fault reported later, so new messages go through its fallback", func() {
		d := sent("account-locked", "cloud")
		res := answered(func() (providerfake.CallbackResult, error) {
			return meta_.SendStatus(suiteCtx, metaURL, providerfake.MetaStatus{MessageID: d.Status.ProviderMessageID, Status: "failed", ErrorCode: 131031})
		})
		Expect(res.Status).To(Equal(http.StatusOK), res.Body)
		now := reread(d)
		Expect(now.Status.Phase).To(Equal(notifyv1.DeliveryFailed))
		Expect(now.Status.Reason).To(Equal(notifyv1.ReasonPermanentFailure))
		Eventually(func(g Gomega) {
			c := providerReady(g, ns, "cloud")
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Message).To(ContainSubstring("131031"))
		}).Should(Succeed())

		// The failed message is not sent again; the next one goes
		// through the fallback without touching Meta.
		before := meta_.Requests()
		next := sent("after-lock", "cloud")
		Expect(next.Status.Provider).To(Equal("twilio"))
		Expect(meta_.Requests()).To(Equal(before))
		Expect(meta_.Messages()).To(HaveLen(1))
	})

	It("takes no callback for a provider that did not opt in, or through the other API's URL", func() {
		d := sent("opt-in", "cloud")
		res, err := twilio.SendStatus(suiteCtx, base+"/receipts/twilio/"+ns+"/cloud",
			providerfake.TwilioStatus{MessageSID: "SM" + strings.Repeat("0", 32), Status: "failed", ErrorCode: 63016})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Status).To(Equal(http.StatusNotFound))
		res, err = meta_.SendStatus(suiteCtx, base+"/receipts/meta/"+ns+"/nope",
			providerfake.MetaStatus{MessageID: d.Status.ProviderMessageID, Status: "failed", ErrorCode: 131047})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Status).To(Equal(http.StatusNotFound))
		Expect(reread(d).Status.Phase).To(Equal(notifyv1.DeliverySucceeded))
	})
})
