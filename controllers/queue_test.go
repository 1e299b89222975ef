package controllers_test

import (
	"fmt"
	"net/http"
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
	hook "github.com/herald-dev/herald/pkg/webhook"
)

// createWebhookProvider makes the namespace's default webhook provider,
// signing with a Secret, and waits until it is Ready.
func createWebhookProvider(ns, url string) {
	Expect(k8sClient.Create(suiteCtx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "webhook-signing", Namespace: ns, Labels: providerSecretLabels},
		StringData: map[string]string{"key": "s3cret"},
	})).To(Succeed())
	Expect(k8sClient.Create(suiteCtx, &notifyv1.NotificationProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "hook", Namespace: ns},
		Spec: notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelWebhook,
			Default: true,
			Webhook: &notifyv1.WebhookProvider{
				URL:              url,
				SigningSecretRef: &notifyv1.SecretKeyReference{Name: "webhook-signing", Key: "key"},
			},
		},
	})).To(Succeed())
	waitProviderReady(ns, "hook")
}

func notification(ns, name string, mutate func(*notifyv1.NotificationSpec)) *notifyv1.Notification {
	n := &notifyv1.Notification{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: notifyv1.NotificationSpec{
			Type:     notifyv1.TypeWarning,
			Category: "ops",
			Title:    "Disk almost full",
			Message:  "/var is 95% full on node-1",
			Audience: notifyv1.Audience{Users: []string{"alice"}},
			Channels: []notifyv1.Channel{notifyv1.ChannelWebhook},
		},
	}
	if mutate != nil {
		mutate(&n.Spec)
	}
	Expect(k8sClient.Create(suiteCtx, n)).To(Succeed())
	return n
}

// gaps returns the time between consecutive attempts in a history.
func gaps(h []notifyv1.Attempt) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(h); i++ {
		out = append(out, h[i].StartTime.Sub(h[i-1].StartTime.Time))
	}
	return out
}

var _ = Describe("the delivery queue", func() {
	var (
		ns   string
		sink *webhookSink
		stop func()
	)

	BeforeEach(func() {
		ns = newNamespace()
		sink = newWebhookSink()
		DeferCleanup(sink.Close)
		stop = startManager(testOptions())
		DeferCleanup(func() { stop() })
		createWebhookProvider(ns, sink.URL)
	})

	It("delivers to users and roles on inApp and webhook", func() {
		createRecipient(ns, "alice", nil)
		createRecipient(ns, "bob", func(s *notifyv1.RecipientSpec) { s.Roles = []string{"sre"} })
		createRecipient(ns, "carol", func(s *notifyv1.RecipientSpec) { s.Roles = []string{"sre", "dba"} })
		createRecipient(ns, "dave", func(s *notifyv1.RecipientSpec) { s.Roles = []string{"dev"} })
		notification(ns, "disk", func(s *notifyv1.NotificationSpec) {
			s.Audience = notifyv1.Audience{Users: []string{"alice", "carol"}, Roles: []string{"sre"}}
			s.Channels = []notifyv1.Channel{notifyv1.ChannelInApp, notifyv1.ChannelWebhook}
		})

		n := waitPhase(ns, "disk", notifyv1.NotificationDelivered)
		Expect(n.Status.Recipients).To(BeEquivalentTo(3))
		Expect(n.Status.Deliveries.Total).To(BeEquivalentTo(6))
		Expect(n.Status.Deliveries.Succeeded).To(BeEquivalentTo(6))
		Expect(meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionDelivered)).To(BeTrue())
		Expect(meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionDispatched)).To(BeTrue())
		Expect(n.Status.CompletionTime).NotTo(BeNil())
		Expect(n.Status.Channels).To(HaveLen(2))

		// Each webhook carries a stable id and a signature the receiver
		// can verify with the shared secret.
		keys := sink.succeededKeys()
		Expect(keys).To(HaveLen(3))
		for _, req := range sink.all() {
			Expect(hook.VerifySignature([]byte("s3cret"), hook.FieldsFromHeader(req.Header), req.Signature, req.Body, time.Now(), time.Minute)).To(Succeed())
		}
		d := getDelivery(ns, "disk", notifyv1.ChannelWebhook, "bob")
		Expect(keys).To(HaveKey(string(d.UID)))
		Expect(d.Status.Attempts).To(BeEquivalentTo(1))
		Expect(d.Status.Provider).To(Equal("hook"))
		Expect(d.Status.History).To(HaveLen(1))
		Expect(d.OwnerReferences).To(HaveLen(1))
		Expect(d.Labels).To(HaveKeyWithValue(notifyv1.LabelChannel, "webhook"))
		Expect(getDelivery(ns, "disk", notifyv1.ChannelInApp, "alice").Phase()).To(Equal(notifyv1.DeliverySucceeded))
	})

	It("retries a 503 with exponential backoff and succeeds on the third attempt", func() {
		createRecipient(ns, "alice", nil)
		sink.setRespond(func(_ string, n int, _ http.ResponseWriter) int {
			if n < 2 {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		})
		notification(ns, "flaky", func(s *notifyv1.NotificationSpec) {
			s.Retry = &notifyv1.RetryPolicy{
				Strategy:     notifyv1.BackoffExponential,
				MaxAttempts:  ptr.To[int32](5),
				InitialDelay: &metav1.Duration{Duration: 300 * time.Millisecond},
				MaxDelay:     &metav1.Duration{Duration: 10 * time.Second},
			}
		})
		waitPhase(ns, "flaky", notifyv1.NotificationDelivered)

		d := getDelivery(ns, "flaky", notifyv1.ChannelWebhook, "alice")
		Expect(d.Status.Attempts).To(BeEquivalentTo(3))
		Expect(d.Status.History).To(HaveLen(3))
		Expect(d.Status.History[0].Outcome).To(Equal("Failed"))
		Expect(d.Status.History[0].Reason).To(Equal(notifyv1.ReasonTransient))
		Expect(d.Status.History[0].Error).To(ContainSubstring("503"))
		Expect(d.Status.History[2].Outcome).To(Equal("Succeeded"))
		g := gaps(d.Status.History)
		GinkgoWriter.Printf("attempt gaps: %v\n", g)
		// 300ms after the first failure, 600ms after the second; the
		// upper bound leaves room for a loaded machine.
		Expect(g[0]).To(BeNumerically(">=", 300*time.Millisecond))
		Expect(g[0]).To(BeNumerically("<", 300*time.Millisecond+2*time.Second))
		Expect(g[1]).To(BeNumerically(">=", 600*time.Millisecond))
		Expect(g[1]).To(BeNumerically("<", 600*time.Millisecond+2*time.Second))
		// The sink saw the same idempotency key every time.
		reqs := sink.all()
		Expect(reqs).To(HaveLen(3))
		Expect(reqs[0].IdempotencyKey).To(Equal(string(d.UID)))
		Expect(reqs[2].IdempotencyKey).To(Equal(string(d.UID)))
		Expect([]int{reqs[0].Attempt, reqs[1].Attempt, reqs[2].Attempt}).To(Equal([]int{1, 2, 3}))
	})

	It("fails a 400 after one attempt", func() {
		createRecipient(ns, "alice", nil)
		sink.setRespond(func(string, int, http.ResponseWriter) int { return http.StatusBadRequest })
		notification(ns, "bad-request", nil)
		n := waitPhase(ns, "bad-request", notifyv1.NotificationFailed)
		Expect(n.Status.Deliveries.Failed).To(BeEquivalentTo(1))
		c := meta.FindStatusCondition(n.Status.Conditions, notifyv1.ConditionDelivered)
		Expect(c.Status).To(Equal(metav1.ConditionFalse))
		d := getDelivery(ns, "bad-request", notifyv1.ChannelWebhook, "alice")
		Expect(d.Status.Phase).To(Equal(notifyv1.DeliveryFailed))
		Expect(d.Status.Attempts).To(BeEquivalentTo(1))
		Expect(d.Status.Reason).To(Equal("PermanentFailure"))
		Expect(d.Status.LastErrorReason).To(Equal(notifyv1.ReasonPermanent))
		Expect(sink.all()).To(HaveLen(1))
		expectEvent(ns, d.Name, "PermanentFailure")
	})

	It("honours Retry-After on 429 over the policy's delay", func() {
		createRecipient(ns, "alice", nil)
		sink.setRespond(func(_ string, n int, w http.ResponseWriter) int {
			if n == 0 {
				w.Header().Set("Retry-After", "2")
				return http.StatusTooManyRequests
			}
			return http.StatusOK
		})
		notification(ns, "throttled", func(s *notifyv1.NotificationSpec) {
			s.Retry = &notifyv1.RetryPolicy{InitialDelay: &metav1.Duration{Duration: 100 * time.Millisecond}}
		})
		waitPhase(ns, "throttled", notifyv1.NotificationDelivered)
		d := getDelivery(ns, "throttled", notifyv1.ChannelWebhook, "alice")
		Expect(d.Status.History).To(HaveLen(2))
		Expect(d.Status.History[0].Reason).To(Equal(notifyv1.ReasonRateLimited))
		Expect(gaps(d.Status.History)[0]).To(BeNumerically(">=", 2*time.Second))
	})

	It("caps a Retry-After of a year and never retries after expiresAt", func() {
		createRecipient(ns, "alice", nil)
		sink.setRespond(func(_ string, _ int, w http.ResponseWriter) int {
			w.Header().Set("Retry-After", "31536000")
			return http.StatusTooManyRequests
		})
		// metav1.Time keeps whole seconds: expiresAt is 3 to 4s away.
		expires := time.Now().Add(4 * time.Second).Truncate(time.Second)
		notification(ns, "parked", func(s *notifyv1.NotificationSpec) {
			s.ExpiresAt = &metav1.Time{Time: expires}
			s.Retry = &notifyv1.RetryPolicy{MaxAttempts: ptr.To[int32](5), MaxDelay: &metav1.Duration{Duration: time.Hour}}
		})
		Eventually(func(g Gomega) {
			var d notifyv1.ChannelDelivery
			g.Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: notificationctl.DeliveryName("parked", notifyv1.ChannelWebhook, "alice")}, &d)).To(Succeed())
			g.Expect(d.Status.NextAttemptTime).NotTo(BeNil())
			// Capped at maxDelay (1h), then at expiresAt.
			g.Expect(d.Status.NextAttemptTime.Time).To(BeTemporally("==", expires))
		}).Should(Succeed())

		n := waitPhase(ns, "parked", notifyv1.NotificationExpired)
		Expect(time.Now()).To(BeTemporally("<", expires.Add(10*time.Second)), "expired on time")
		Expect(meta.FindStatusCondition(n.Status.Conditions, notifyv1.ConditionDelivered).Reason).To(Equal(notifyv1.ReasonExpired))
		d := getDelivery(ns, "parked", notifyv1.ChannelWebhook, "alice")
		Expect(d.Status.Phase).To(Equal(notifyv1.DeliveryExpired))
		Expect(d.Status.Attempts).To(BeEquivalentTo(1))
		Expect(d.Status.CompletionTime.Time).To(BeTemporally(">=", expires))
		Expect(sink.all()).To(HaveLen(1))
	})

	It("gives up after maxAttempts with AttemptsExhausted", func() {
		createRecipient(ns, "alice", nil)
		sink.setRespond(func(string, int, http.ResponseWriter) int { return http.StatusBadGateway })
		notification(ns, "down", func(s *notifyv1.NotificationSpec) {
			s.Retry = &notifyv1.RetryPolicy{Strategy: notifyv1.BackoffFixed, MaxAttempts: ptr.To[int32](3), InitialDelay: &metav1.Duration{Duration: 50 * time.Millisecond}}
		})
		waitPhase(ns, "down", notifyv1.NotificationFailed)
		d := getDelivery(ns, "down", notifyv1.ChannelWebhook, "alice")
		Expect(d.Status.Attempts).To(BeEquivalentTo(3))
		Expect(d.Status.Reason).To(Equal("AttemptsExhausted"))
		Expect(sink.all()).To(HaveLen(3))
	})

	It("expires a notification whose expiresAt has passed", func() {
		createRecipient(ns, "alice", nil)
		notification(ns, "stale", func(s *notifyv1.NotificationSpec) {
			s.ExpiresAt = &metav1.Time{Time: time.Now().Add(-time.Minute)}
		})
		n := waitPhase(ns, "stale", notifyv1.NotificationExpired)
		Expect(meta.FindStatusCondition(n.Status.Conditions, notifyv1.ConditionDelivered).Reason).To(Equal("Expired"))
		Expect(deliveries(ns, "stale")).To(BeEmpty())
		Expect(sink.all()).To(BeEmpty())
	})

	It("holds deliveries until deliverAfter", func() {
		createRecipient(ns, "alice", nil)
		at := time.Now().Add(2 * time.Second)
		notification(ns, "later", func(s *notifyv1.NotificationSpec) { s.DeliverAfter = &metav1.Time{Time: at} })
		waitPhase(ns, "later", notifyv1.NotificationDelivered)
		reqs := sink.all()
		Expect(reqs).To(HaveLen(1))
		// metav1.Time keeps whole seconds.
		Expect(reqs[0].At).To(BeTemporally(">=", at.Truncate(time.Second)))
	})

	It("respects opt-outs, and critical notifications override them", func() {
		createRecipient(ns, "alice", func(s *notifyv1.RecipientSpec) {
			s.Preferences.OptOut = []notifyv1.Channel{notifyv1.ChannelWebhook}
		})
		notification(ns, "routine", nil)
		n := waitPhase(ns, "routine", notifyv1.NotificationDelivered)
		Expect(n.Status.Deliveries.Skipped).To(BeEquivalentTo(1))
		d := getDelivery(ns, "routine", notifyv1.ChannelWebhook, "alice")
		Expect(d.Status.Phase).To(Equal(notifyv1.DeliverySkipped))
		Expect(d.Status.Reason).To(Equal(notifyv1.ReasonOptedOut))
		Expect(sink.all()).To(BeEmpty())

		notification(ns, "outage", func(s *notifyv1.NotificationSpec) { s.Type = notifyv1.TypeCritical })
		waitPhase(ns, "outage", notifyv1.NotificationDelivered)
		Expect(getDelivery(ns, "outage", notifyv1.ChannelWebhook, "alice").Status.Phase).To(Equal(notifyv1.DeliverySucceeded))
		Expect(sink.all()).To(HaveLen(1))
	})

	It("marks unknown users and missing addresses Skipped with a reason and an Event", func() {
		createRecipient(ns, "alice", nil)
		createRecipient(ns, "nouser", func(s *notifyv1.RecipientSpec) { s.Username = "" })
		notification(ns, "partial", func(s *notifyv1.NotificationSpec) {
			s.Audience.Users = []string{"alice", "mallory", "nouser"}
			s.Channels = []notifyv1.Channel{notifyv1.ChannelInApp}
		})
		n := waitPhase(ns, "partial", notifyv1.NotificationPartiallyDelivered)
		Expect(n.Status.Unresolved).To(Equal([]string{"mallory"}))
		Expect(n.Status.Deliveries.Succeeded).To(BeEquivalentTo(1))
		Expect(n.Status.Deliveries.Skipped).To(BeEquivalentTo(2))
		Expect(getDelivery(ns, "partial", notifyv1.ChannelInApp, "mallory").Status.Reason).To(Equal(notifyv1.ReasonUnknownRecipient))
		Expect(getDelivery(ns, "partial", notifyv1.ChannelInApp, "nouser").Status.Reason).To(Equal(notifyv1.ReasonNoAddress))
		expectEvent(ns, "partial", "UnknownRecipients")
	})

	It("deletes a finished notification and its deliveries after ttlSecondsAfterFinished", func() {
		createRecipient(ns, "alice", nil)
		notification(ns, "short-lived", func(s *notifyv1.NotificationSpec) { s.TTLSecondsAfterFinished = ptr.To[int32](1) })
		Eventually(func() bool {
			var n notifyv1.Notification
			err := k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: "short-lived"}, &n)
			return client.IgnoreNotFound(err) == nil && err != nil
		}).Should(BeTrue())
		Expect(sink.all()).To(HaveLen(1))
	})

	It("fails deliveries whose provider Secret is missing, saying why", func() {
		createRecipient(ns, "alice", nil)
		Expect(k8sClient.Create(suiteCtx, &notifyv1.NotificationProvider{
			ObjectMeta: metav1.ObjectMeta{Name: "unsigned", Namespace: ns},
			Spec: notifyv1.NotificationProviderSpec{
				Channel: notifyv1.ChannelWebhook,
				Webhook: &notifyv1.WebhookProvider{URL: sink.URL, SigningSecretRef: &notifyv1.SecretKeyReference{Name: "absent", Key: "key"}},
			},
		})).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(providerReady(g, ns, "unsigned").Reason).To(Equal("SecretNotFound"))
		}).Should(Succeed())
		notification(ns, "no-secret", func(s *notifyv1.NotificationSpec) {
			s.Providers = &notifyv1.ChannelProviders{Webhook: "unsigned"}
			s.Retry = &notifyv1.RetryPolicy{MaxAttempts: ptr.To[int32](2), InitialDelay: &metav1.Duration{Duration: 50 * time.Millisecond}}
		})
		waitPhase(ns, "no-secret", notifyv1.NotificationFailed)
		d := getDelivery(ns, "no-secret", notifyv1.ChannelWebhook, "alice")
		Expect(d.Status.Reason).To(Equal("ProviderNotReady"))
		Expect(d.Status.Attempts).To(BeEquivalentTo(2))
		Expect(d.Status.LastError).To(ContainSubstring(`Secret "absent" not found`))
		Expect(sink.all()).To(BeEmpty())

		// Creating the Secret re-validates the provider.
		Expect(k8sClient.Create(suiteCtx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "absent", Namespace: ns, Labels: providerSecretLabels},
			StringData: map[string]string{"key": "now-here"},
		})).To(Succeed())
		waitProviderReady(ns, "unsigned")
	})
})

// expectEvent waits for an Event about the named object with the reason.
func expectEvent(ns, name, reason string) {
	Eventually(func(g Gomega) {
		var list corev1.EventList
		g.Expect(k8sClient.List(suiteCtx, &list, client.InNamespace(ns))).To(Succeed())
		var seen []string
		for _, e := range list.Items {
			if e.InvolvedObject.Name == name && e.Reason == reason {
				return
			}
			seen = append(seen, fmt.Sprintf("%s/%s", e.InvolvedObject.Name, e.Reason))
		}
		g.Expect(seen).To(ContainElement(name + "/" + reason))
	}).Should(Succeed())
}
