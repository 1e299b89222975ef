package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	notificationctl "github.com/herald-dev/herald/controllers/notification"
	"github.com/herald-dev/herald/internal/dev/mailpit"
	"github.com/herald-dev/herald/internal/dev/providerfake"
)

// providerSecretLabels opts a Secret in to provider use.
var providerSecretLabels = map[string]string{notifyv1.LabelProviderSecret: "true"}

func createSecret(ns, name string, data map[string]string) {
	Expect(k8sClient.Create(suiteCtx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: providerSecretLabels},
		StringData: data,
	})).To(Succeed())
}

func createProvider(ns, name string, spec notifyv1.NotificationProviderSpec) {
	Expect(k8sClient.Create(suiteCtx, &notifyv1.NotificationProvider{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       spec,
	})).To(Succeed())
}

// smtpProvider points an email provider at Mailpit with STARTTLS and AUTH,
// trusting Mailpit's generated CA from a Secret.
func smtpProvider(ns, name string, mp *mailpit.Server, password string) {
	createSecret(ns, name+"-auth", map[string]string{"username": "herald", "password": password})
	createSecret(ns, name+"-ca", map[string]string{"ca.crt": string(mp.CAPEM())})
	createProvider(ns, name, notifyv1.NotificationProviderSpec{
		Channel: notifyv1.ChannelEmail,
		Default: true,
		SMTP: &notifyv1.SMTPProvider{
			Host:          "localhost",
			Port:          int32(mp.Port()),
			TLS:           notifyv1.SMTPStartTLS,
			From:          "Herald <herald@example.com>",
			ReplyTo:       "ops@example.com",
			AuthSecretRef: &notifyv1.SecretReference{Name: name + "-auth"},
			CASecretRef:   &notifyv1.SecretReference{Name: name + "-ca"},
		},
	})
}

// fastRetry retries every 200ms up to n attempts.
func fastRetry(n int32) *notifyv1.RetryPolicy {
	return &notifyv1.RetryPolicy{Strategy: notifyv1.BackoffFixed, MaxAttempts: ptr.To(n), InitialDelay: &metav1.Duration{Duration: 200 * time.Millisecond}}
}

func waitAttempts(ns, name string, atLeast int32) {
	Eventually(func(g Gomega) {
		var d notifyv1.ChannelDelivery
		g.Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name}, &d)).To(Succeed())
		g.Expect(d.Status.Attempts).To(BeNumerically(">=", atLeast))
	}).Should(Succeed())
}

var _ = Describe("email over SMTP", Ordered, func() {
	var (
		mp   *mailpit.Server
		stop func()
	)
	BeforeAll(func() {
		var err error
		mp, err = mailpit.Start(mailpit.Options{Username: "herald", Password: "mail-pass", TLS: mailpit.TLSStartTLS, Chaos: true})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = mp.Close() })
		stop = startManager(testOptions())
		DeferCleanup(func() { stop() })
	})

	// messagesTo returns Mailpit's messages for one address.
	messagesTo := func(addr string) []mailpit.MessageSummary {
		all, err := mp.Messages(suiteCtx)
		Expect(err).NotTo(HaveOccurred())
		var out []mailpit.MessageSummary
		for _, m := range all {
			for _, to := range m.To {
				if to.Address == addr {
					out = append(out, m)
				}
			}
		}
		return out
	}

	// smtpRecipient makes a namespace whose default email provider "smtp"
	// logs in to Mailpit with password, and in it a recipient user with an
	// address of the namespace's own, which it returns.
	smtpRecipient := func(password, user string) (ns, addr string) {
		ns = newNamespace()
		smtpProvider(ns, "smtp", mp, password)
		waitProviderReady(ns, "smtp")
		addr = user + "@" + ns + ".example.com"
		createRecipient(ns, user, func(s *notifyv1.RecipientSpec) { s.Email = addr })
		return ns, addr
	}

	// emailTo creates a Notification that emails user, with at most
	// attempts attempts 200ms apart.
	emailTo := func(ns, name, user string, attempts int32) {
		notification(ns, name, func(s *notifyv1.NotificationSpec) {
			s.Audience = notifyv1.Audience{Users: []string{user}}
			s.Channels = []notifyv1.Channel{notifyv1.ChannelEmail}
			s.Retry = fastRetry(attempts)
		})
	}

	// failRecipients makes Mailpit answer RCPT TO with code until the spec
	// ends.
	failRecipients := func(code int) {
		Expect(mp.SetChaos(suiteCtx, mailpit.Chaos{Recipient: mailpit.Always(code)})).To(Succeed())
		DeferCleanup(func() { _ = mp.SetChaos(context.Background(), mailpit.Chaos{}) })
	}

	It("sends a templated email with both bodies, headers and a stable Message-ID", func() {
		ns, addr := smtpRecipient("mail-pass", "erin")
		Expect(k8sClient.Create(suiteCtx, &notifyv1.NotificationTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "deployed", Namespace: ns},
			Spec: notifyv1.NotificationTemplateContent{
				Params:  []notifyv1.TemplateParam{{Name: "app", Required: true}, {Name: "env", Default: "production"}},
				Title:   "{{ .app }} deployed",
				Message: "{{ .app }} is live in {{ .env }}.",
				Email: &notifyv1.EmailContent{
					Subject: "[deploy] {{ .app }} ({{ .env }})",
					Text:    "{{ .app }} is live in {{ .env }}.",
					HTML:    "<p><b>{{ .app }}</b> is live in {{ .env }}.</p>",
				},
			},
		})).To(Succeed())
		notification(ns, "deployed", func(s *notifyv1.NotificationSpec) {
			s.Title, s.Message = "", ""
			s.TemplateRef = &notifyv1.TemplateReference{Name: "deployed"}
			s.Params = map[string]string{"app": "<checkout>"}
			s.Audience = notifyv1.Audience{Users: []string{"erin"}}
			s.Channels = []notifyv1.Channel{notifyv1.ChannelEmail}
		})
		waitPhase(ns, "deployed", notifyv1.NotificationDelivered)

		d := getDelivery(ns, "deployed", notifyv1.ChannelEmail, "erin")
		Expect(d.Status.Provider).To(Equal("smtp"))
		summaries := messagesTo(addr)
		Expect(summaries).To(HaveLen(1))
		m, err := mp.Message(suiteCtx, summaries[0].ID)
		Expect(err).NotTo(HaveOccurred())
		Expect(m.Subject).To(Equal("[deploy] <checkout> (production)"))
		Expect(m.Text).To(ContainSubstring("<checkout> is live in production."))
		// html/template escapes params in the HTML body.
		Expect(m.HTML).To(ContainSubstring("<b>&lt;checkout&gt;</b> is live in production."))
		Expect(m.From.Address).To(Equal("herald@example.com"))
		Expect(m.ReplyTo[0].Address).To(Equal("ops@example.com"))
		Expect(m.MessageID).To(Equal(string(d.UID) + "@herald"))
		Expect(m.Header("X-Herald-Delivery")).To(Equal(ns + "/" + d.Name))
		Expect(d.Status.ProviderMessageID).NotTo(BeEmpty())
	})

	It("retries a 451 and delivers once the server accepts", func() {
		ns, addr := smtpRecipient("mail-pass", "frank")
		failRecipients(451)
		emailTo(ns, "greylisted", "frank", 20)
		name := getDeliveryName("greylisted", notifyv1.ChannelEmail, "frank")
		waitAttempts(ns, name, 2)
		Expect(mp.SetChaos(suiteCtx, mailpit.Chaos{})).To(Succeed())
		waitPhase(ns, "greylisted", notifyv1.NotificationDelivered)
		d := getDelivery(ns, "greylisted", notifyv1.ChannelEmail, "frank")
		Expect(d.Status.History[0].Reason).To(Equal(notifyv1.ReasonTransient))
		Expect(d.Status.History[0].Error).To(ContainSubstring("451"))
		Expect(messagesTo(addr)).To(HaveLen(1))
	})

	It("fails a 550 after one attempt", func() {
		ns, _ := smtpRecipient("mail-pass", "gina")
		failRecipients(550)
		emailTo(ns, "rejected", "gina", 5)
		waitPhase(ns, "rejected", notifyv1.NotificationFailed)
		d := getDelivery(ns, "rejected", notifyv1.ChannelEmail, "gina")
		Expect(d.Status.Attempts).To(BeEquivalentTo(1))
		Expect(d.Status.LastErrorReason).To(Equal(notifyv1.ReasonPermanent))
		Expect(d.Status.LastError).To(ContainSubstring("550"))
	})

	It("keeps retrying while the SMTP server is down and delivers when it is back", func() {
		ns, addr := smtpRecipient("mail-pass", "hank")
		Expect(mp.Stop()).To(Succeed())
		emailTo(ns, "outage", "hank", 30)
		waitAttempts(ns, getDeliveryName("outage", notifyv1.ChannelEmail, "hank"), 2)
		Expect(mp.Restart()).To(Succeed())
		waitPhase(ns, "outage", notifyv1.NotificationDelivered)
		d := getDelivery(ns, "outage", notifyv1.ChannelEmail, "hank")
		Expect(d.Status.History[0].Reason).To(Equal(notifyv1.ReasonTransient))
		Expect(messagesTo(addr)).To(HaveLen(1))
	})

	It("reports a wrong password on the provider and fails the delivery", func() {
		ns, _ := smtpRecipient("wrong-pass", "ivy")
		emailTo(ns, "denied", "ivy", 3)
		waitPhase(ns, "denied", notifyv1.NotificationFailed)
		Expect(getDelivery(ns, "denied", notifyv1.ChannelEmail, "ivy").Status.LastError).To(ContainSubstring("535"))
		Eventually(func(g Gomega) {
			c := providerReady(g, ns, "smtp")
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal("DeliveriesRejected"))
		}).Should(Succeed())
	})
})

func getDeliveryName(notification string, ch notifyv1.Channel, recipient string) string {
	return notificationctl.DeliveryName(notification, ch, recipient)
}

var _ = Describe("WhatsApp", func() {
	var (
		ns     string
		meta_  *providerfake.Meta
		twilio *providerfake.Twilio
		waha   *providerfake.WAHA
	)

	BeforeEach(func() {
		ns = newNamespace()
		meta_ = providerfake.NewMeta()
		twilio = providerfake.NewTwilio()
		waha = providerfake.NewWAHA()
		DeferCleanup(meta_.Close)
		DeferCleanup(twilio.Close)
		DeferCleanup(waha.Close)
		opts := testOptions()
		stop := startManager(opts)
		DeferCleanup(func() { stop() })

		createSecret(ns, "meta", map[string]string{"token": meta_.AccessToken})
		createProvider(ns, "cloud", notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelWhatsApp,
			Default: true,
			WhatsApp: &notifyv1.WhatsAppProvider{
				API: notifyv1.WhatsAppCloud, BaseURL: meta_.URL, APIVersion: meta_.APIVersion, PhoneNumberID: meta_.PhoneNumberID,
				CredentialsSecretRef: &notifyv1.SecretReference{Name: "meta"},
			},
			Fallback: []string{"twilio"},
		})
		createSecret(ns, "twilio", map[string]string{"authToken": twilio.AuthToken})
		createProvider(ns, "twilio", notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelWhatsApp,
			WhatsApp: &notifyv1.WhatsAppProvider{
				API: notifyv1.WhatsAppTwilio, BaseURL: twilio.URL, AccountSID: twilio.AccountSID, From: twilio.From,
				CredentialsSecretRef: &notifyv1.SecretReference{Name: "twilio"},
			},
		})
		createSecret(ns, "waha", map[string]string{"apiKey": waha.APIKey})
		createProvider(ns, "waha", notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelWhatsApp,
			WhatsApp: &notifyv1.WhatsAppProvider{
				API: notifyv1.WhatsAppWAHA, BaseURL: waha.URL, Session: waha.Session,
				CredentialsSecretRef: &notifyv1.SecretReference{Name: "waha"},
			},
		})
		for _, p := range []string{"cloud", "twilio", "waha"} {
			waitProviderReady(ns, p)
		}
		createRecipient(ns, "jo", func(s *notifyv1.RecipientSpec) { s.Phone = "+4915112345678" })
	})

	whatsappTo := func(name, provider string, mutate func(*notifyv1.NotificationSpec)) {
		notification(ns, name, func(s *notifyv1.NotificationSpec) {
			s.Audience = notifyv1.Audience{Users: []string{"jo"}}
			s.Channels = []notifyv1.Channel{notifyv1.ChannelWhatsApp}
			if provider != "" {
				s.Providers = &notifyv1.ChannelProviders{WhatsApp: provider}
			}
			s.Retry = fastRetry(4)
			if mutate != nil {
				mutate(s)
			}
		})
	}

	It("delivers through each of the three APIs", func() {
		whatsappTo("via-cloud", "cloud", nil)
		whatsappTo("via-twilio", "twilio", nil)
		whatsappTo("via-waha", "waha", nil)
		for _, n := range []string{"via-cloud", "via-twilio", "via-waha"} {
			waitPhase(ns, n, notifyv1.NotificationDelivered)
		}
		for _, fake := range []*providerfake.Server{meta_.Server, twilio.Server, waha.Server} {
			msgs := fake.Messages()
			Expect(msgs).To(HaveLen(1))
			Expect(msgs[0].To).To(Equal("+4915112345678"))
			Expect(msgs[0].Text).To(ContainSubstring("/var is 95% full on node-1"))
			Expect(fake.Rejections()).To(BeEmpty())
		}
		d := getDelivery(ns, "via-cloud", notifyv1.ChannelWhatsApp, "jo")
		Expect(d.Status.ProviderMessageID).To(Equal(meta_.Messages()[0].ID))
	})

	It("waits out Meta's throttling and then delivers", func() {
		meta_.FailNext(1, providerfake.ErrorSpec{Code: 130429, RetryAfter: "1"})
		whatsappTo("throttled", "", nil)
		waitPhase(ns, "throttled", notifyv1.NotificationDelivered)
		d := getDelivery(ns, "throttled", notifyv1.ChannelWhatsApp, "jo")
		Expect(d.Status.History).To(HaveLen(2))
		Expect(d.Status.History[0].Reason).To(Equal(notifyv1.ReasonRateLimited))
		Expect(gaps(d.Status.History)[0]).To(BeNumerically(">=", time.Second))
	})

	It("fails outside the 24-hour window and says to use a template", func() {
		meta_.FailNext(1, providerfake.ErrorSpec{Code: 131047})
		whatsappTo("window", "", nil)
		waitPhase(ns, "window", notifyv1.NotificationFailed)
		d := getDelivery(ns, "window", notifyv1.ChannelWhatsApp, "jo")
		Expect(d.Status.Attempts).To(BeEquivalentTo(1))
		Expect(d.Status.LastError).To(ContainSubstring("131047"))
		Expect(strings.ToLower(d.Status.LastError)).To(ContainSubstring("template"))
	})

	It("falls back to the next provider when credentials are rejected, and marks the first not Ready", func() {
		meta_.FailNext(1, providerfake.ErrorSpec{HTTPStatus: 401, Code: 190, Message: "Invalid OAuth access token."})
		whatsappTo("fallback", "", nil)
		waitPhase(ns, "fallback", notifyv1.NotificationDelivered)
		d := getDelivery(ns, "fallback", notifyv1.ChannelWhatsApp, "jo")
		Expect(d.Status.Provider).To(Equal("twilio"))
		Expect(d.Status.Attempts).To(BeEquivalentTo(1))
		Expect(twilio.Messages()).To(HaveLen(1))
		Eventually(func(g Gomega) {
			c := providerReady(g, ns, "cloud")
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Message).To(ContainSubstring("190"))
		}).Should(Succeed())
		// While the circuit is open, new deliveries go straight to the
		// fallback without touching the rejected provider.
		before := meta_.Requests()
		whatsappTo("fallback-2", "", nil)
		waitPhase(ns, "fallback-2", notifyv1.NotificationDelivered)
		Expect(meta_.Requests()).To(Equal(before))
		Expect(twilio.Messages()).To(HaveLen(2))
	})

	It("skips a recipient whose phone number is not a real number", func() {
		createRecipient(ns, "kim", func(s *notifyv1.RecipientSpec) { s.Phone = "+99912345678" })
		notification(ns, "bad-phone", func(s *notifyv1.NotificationSpec) {
			s.Audience = notifyv1.Audience{Users: []string{"kim"}}
			s.Channels = []notifyv1.Channel{notifyv1.ChannelWhatsApp}
		})
		waitPhase(ns, "bad-phone", notifyv1.NotificationFailed)
		d := getDelivery(ns, "bad-phone", notifyv1.ChannelWhatsApp, "kim")
		Expect(d.Status.Phase).To(Equal(notifyv1.DeliverySkipped))
		Expect(d.Status.Reason).To(Equal("InvalidAddress"))
		Expect(d.Status.LastError).To(ContainSubstring("phone"))
		Expect(meta_.Requests()).To(BeZero())
		Eventually(func(g Gomega) {
			var r notifyv1.Recipient
			g.Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: "kim"}, &r)).To(Succeed())
			g.Expect(meta.IsStatusConditionFalse(r.Status.Conditions, notifyv1.ConditionAddressesValid)).To(BeTrue())
		}).Should(Succeed())
	})
})

var _ = Describe("provider rate limits", func() {
	It("spaces 50 deliveries through a 10/s provider without using attempts", func() {
		ns := newNamespace()
		sink := newWebhookSink()
		DeferCleanup(sink.Close)
		stop := startManager(testOptions())
		DeferCleanup(func() { stop() })
		createProvider(ns, "paced", notifyv1.NotificationProviderSpec{
			Channel:   notifyv1.ChannelWebhook,
			Default:   true,
			Webhook:   &notifyv1.WebhookProvider{URL: sink.URL},
			RateLimit: &notifyv1.RateLimit{Requests: 10, Per: metav1.Duration{Duration: time.Second}, Burst: 10},
		})
		waitProviderReady(ns, "paced")
		var users []string
		for i := 0; i < 50; i++ {
			users = append(users, fmt.Sprintf("u%02d", i))
			createRecipient(ns, users[i], nil)
		}
		notification(ns, "paced", func(s *notifyv1.NotificationSpec) { s.Audience = notifyv1.Audience{Users: users} })
		waitPhase(ns, "paced", notifyv1.NotificationDelivered)

		var first, last time.Time
		for _, d := range deliveries(ns, "paced") {
			Expect(d.Status.Attempts).To(BeEquivalentTo(1), "waiting for the rate limit used no attempt")
			start := d.Status.History[0].StartTime.Time
			if first.IsZero() || start.Before(first) {
				first = start
			}
			if start.After(last) {
				last = start
			}
		}
		GinkgoWriter.Printf("50 deliveries at 10/s (burst 10) spread over %s\n", last.Sub(first))
		// 10 go at once, the other 40 are spaced 100ms apart.
		Expect(last.Sub(first)).To(BeNumerically(">=", 3800*time.Millisecond))
	})
})

var _ = Describe("all channels together", func() {
	It("delivers one notification to three recipients on inApp, email and whatsapp", func() {
		mp, err := mailpit.Start(mailpit.Options{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = mp.Close() })
		fake := providerfake.NewMeta()
		DeferCleanup(fake.Close)
		stop := startManager(testOptions())
		DeferCleanup(func() { stop() })
		ns := newNamespace()
		createProvider(ns, "smtp", notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelEmail, Default: true,
			SMTP: &notifyv1.SMTPProvider{Host: "localhost", Port: int32(mp.Port()), TLS: notifyv1.SMTPTLSNone, From: "herald@example.com"},
		})
		createSecret(ns, "meta", map[string]string{"token": fake.AccessToken})
		createProvider(ns, "wa", notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelWhatsApp, Default: true,
			WhatsApp: &notifyv1.WhatsAppProvider{API: notifyv1.WhatsAppCloud, BaseURL: fake.URL, PhoneNumberID: fake.PhoneNumberID,
				CredentialsSecretRef: &notifyv1.SecretReference{Name: "meta"}},
		})
		waitProviderReady(ns, "smtp")
		waitProviderReady(ns, "wa")
		for i, name := range []string{"ann", "ben", "cat"} {
			phone := fmt.Sprintf("+491511234567%d", i)
			createRecipient(ns, name, func(s *notifyv1.RecipientSpec) { s.Phone = phone; s.Roles = []string{"oncall"} })
		}
		notification(ns, "everywhere", func(s *notifyv1.NotificationSpec) {
			s.Audience = notifyv1.Audience{Roles: []string{"oncall"}}
			s.Channels = []notifyv1.Channel{notifyv1.ChannelInApp, notifyv1.ChannelEmail, notifyv1.ChannelWhatsApp}
		})
		n := waitPhase(ns, "everywhere", notifyv1.NotificationDelivered)
		Expect(n.Status.Deliveries.Succeeded).To(BeEquivalentTo(9))
		Expect(n.Status.Channels).To(HaveLen(3))
		for _, c := range n.Status.Channels {
			Expect(c.Succeeded).To(BeEquivalentTo(3), string(c.Channel))
		}
		msgs, err := mp.Messages(suiteCtx)
		Expect(err).NotTo(HaveOccurred())
		Expect(msgs).To(HaveLen(3))
		Expect(fake.Messages()).To(HaveLen(3))
	})
})
