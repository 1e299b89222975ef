//go:build faults

package faults

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// A hostile tenant's objects, applied in the same namespace and at the same
// time as 200 good Notifications on the same provider: the good ones are all
// delivered, once each, and every hostile one ends with a clear reason (or,
// for the template that would render forever, is held with one) instead of
// stalling a worker or degrading the provider. docs/security.md lists each
// threat with the tests that cover it in detail. Providers that borrow a
// Secret that did not opt in or a service-account token, and destinations
// inside the node, are refused with their reasons.
var _ = Describe("a hostile tenant", func() {
	It("holds up none of 200 good notifications, and each hostile object ends with a reason", func() {
		ns := namespace("hostile")
		s := newSink(0)
		startController()
		// The provider has no URL: each recipient's own webhookURL is used,
		// so a recipient can point its deliveries at an endpoint it owns.
		Expect(k8s.Create(ctx, &notifyv1.NotificationProvider{
			ObjectMeta: metav1.ObjectMeta{Name: "hooks", Namespace: ns},
			Spec: notifyv1.NotificationProviderSpec{
				Channel: notifyv1.ChannelWebhook, Default: true,
				Webhook: &notifyv1.WebhookProvider{},
			},
		})).To(Succeed())
		users := recipients(ns, 20, func(_ int, spec *notifyv1.RecipientSpec) { spec.WebhookURL = s.URL })

		forbidden := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusForbidden)
		}))
		DeferCleanup(forbidden.Close)
		parked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "31536000") // a year
			w.WriteHeader(http.StatusTooManyRequests)
		}))
		DeferCleanup(parked.Close)
		hostileRecipients := []*notifyv1.Recipient{
			{ObjectMeta: metav1.ObjectMeta{Name: "forbids", Namespace: ns}, Spec: notifyv1.RecipientSpec{WebhookURL: forbidden.URL}},
			{ObjectMeta: metav1.ObjectMeta{Name: "parks", Namespace: ns}, Spec: notifyv1.RecipientSpec{WebhookURL: parked.URL}},
			// Recipients whose names make delivery names read alike with
			// the two Notifications below.
			{ObjectMeta: metav1.ObjectMeta{Name: "webhook-y", Namespace: ns}, Spec: notifyv1.RecipientSpec{WebhookURL: s.URL}},
			{ObjectMeta: metav1.ObjectMeta{Name: "y", Namespace: ns}, Spec: notifyv1.RecipientSpec{WebhookURL: s.URL}},
		}
		createAll(hostileRecipients)
		Expect(k8s.Create(ctx, &notifyv1.NotificationTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "forever", Namespace: ns},
			Spec:       notifyv1.NotificationTemplateContent{Message: "{{range 1000000000}}{{range 1000000000}}x{{end}}{{end}}"},
		})).To(Succeed())

		// A Secret that did not opt in, and a service-account token: a
		// provider must not be able to borrow either.
		Expect(k8s.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "not-opted-in", Namespace: ns},
			Data:       map[string][]byte{"key": []byte("s3cr3t")},
		})).To(Succeed())
		Expect(k8s.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "sa-token", Namespace: ns, Labels: map[string]string{notifyv1.LabelProviderSecret: "true"},
				Annotations: map[string]string{corev1.ServiceAccountNameKey: "default"}},
			Type: corev1.SecretTypeServiceAccountToken,
		})).To(Succeed())
		for _, p := range []struct{ name, secret string }{{"borrows-secret", "not-opted-in"}, {"borrows-token", "sa-token"}} {
			Expect(k8s.Create(ctx, &notifyv1.NotificationProvider{
				ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: ns},
				Spec: notifyv1.NotificationProviderSpec{
					Channel: notifyv1.ChannelWebhook,
					Webhook: &notifyv1.WebhookProvider{URL: s.URL, SigningSecretRef: &notifyv1.SecretKeyReference{Name: p.secret, Key: "key"}},
				},
			})).To(Succeed())
		}
		// A provider and a recipient pointing inside the node. 0.0.0.0 is
		// refused by the egress policy before any connection; were the
		// policy broken, the connection would only reach this machine.
		Expect(k8s.Create(ctx, &notifyv1.NotificationProvider{
			ObjectMeta: metav1.ObjectMeta{Name: "inside", Namespace: ns},
			Spec: notifyv1.NotificationProviderSpec{
				Channel: notifyv1.ChannelWebhook,
				Webhook: &notifyv1.WebhookProvider{URL: "http://0.0.0.0:9/hook"},
			},
		})).To(Succeed())
		// An SMTP provider that skips certificate checks, which this
		// controller does not allow (--allow-insecure-skip-verify).
		Expect(k8s.Create(ctx, &notifyv1.NotificationProvider{
			ObjectMeta: metav1.ObjectMeta{Name: "skips-verify", Namespace: ns},
			Spec: notifyv1.NotificationProviderSpec{
				Channel: notifyv1.ChannelEmail,
				SMTP:    &notifyv1.SMTPProvider{Host: "127.0.0.1", Port: 9, From: "herald@example.com", InsecureSkipVerify: true},
			},
		})).To(Succeed())
		// One person holding two Recipients, to meet a quorum of two alone.
		createAll([]*notifyv1.Recipient{
			{ObjectMeta: metav1.ObjectMeta{Name: "mallory-1", Namespace: ns}, Spec: notifyv1.RecipientSpec{Username: "mallory"}},
			{ObjectMeta: metav1.ObjectMeta{Name: "mallory-2", Namespace: ns}, Spec: notifyv1.RecipientSpec{Username: "mallory"}},
		})
		Expect(k8s.Create(ctx, &notifyv1.Recipient{
			ObjectMeta: metav1.ObjectMeta{Name: "points-inside", Namespace: ns},
			Spec:       notifyv1.RecipientSpec{WebhookURL: "http://0.0.0.0:9/hook"},
		})).To(Succeed())

		webhook := []notifyv1.Channel{notifyv1.ChannelWebhook}
		hostile := func(name string, users []string, mutate func(*notifyv1.NotificationSpec)) *notifyv1.Notification {
			n := &notifyv1.Notification{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
				Spec:       notifyv1.NotificationSpec{Title: "Hostile", Message: name, Audience: notifyv1.Audience{Users: users}, Channels: webhook},
			}
			if mutate != nil {
				mutate(&n.Spec)
			}
			return n
		}
		soon := metav1.NewTime(time.Now().Add(20 * time.Second))
		hostileNotifications := []*notifyv1.Notification{
			hostile("renders-forever", []string{users[0]}, func(s *notifyv1.NotificationSpec) {
				s.Title, s.Message = "", ""
				s.TemplateRef = &notifyv1.TemplateReference{Name: "forever"}
			}),
			hostile("to-forbidding-endpoint", []string{"forbids"}, nil),
			hostile("to-parking-endpoint", []string{"parks"}, func(s *notifyv1.NotificationSpec) { s.ExpiresAt = &soon }),
			hostile("to-odd-user-names", []string{"kim@example.com", "Kim", "kim_x"}, nil),
			hostile("to-inside", []string{"points-inside"}, nil),
			hostile("two-votes", []string{"mallory-1", "mallory-2"}, func(s *notifyv1.NotificationSpec) {
				two := int32(2)
				s.Type, s.Quorum, s.Channels = notifyv1.TypeApproval, &two, []notifyv1.Channel{notifyv1.ChannelInApp}
				s.Actions = []notifyv1.Action{
					{ID: "approve", Label: "Approve", Outcome: notifyv1.OutcomeApprove},
					{ID: "reject", Label: "Reject", Outcome: notifyv1.OutcomeReject},
				}
			}),
			hostile("x", []string{"webhook-y"}, nil),
			hostile("x-webhook", []string{"y"}, nil),
		}
		var good []*notifyv1.Notification
		for i := 0; i < 200; i++ {
			good = append(good, &notifyv1.Notification{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("good-%03d", i), Namespace: ns},
				Spec: notifyv1.NotificationSpec{
					Title: "Good", Message: fmt.Sprintf("message %d", i),
					Audience: notifyv1.Audience{Users: []string{users[i%len(users)]}},
					Channels: webhook,
				},
			})
		}
		// The hostile objects go in first, so every good Notification is
		// handled while they are in the controller's queues.
		createAll(hostileNotifications)
		createAll(good)

		Eventually(func(g Gomega) {
			for _, n := range good {
				var got notifyv1.Notification
				g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(n), &got)).To(Succeed())
				g.Expect(got.Status.Phase).To(Equal(notifyv1.NotificationDelivered), n.Name)
			}
		}).Should(Succeed())

		phase := func(name string) (*notifyv1.Notification, error) {
			var n notifyv1.Notification
			err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &n)
			return &n, err
		}
		deliveryOf := func(g Gomega, notification string) notifyv1.ChannelDelivery {
			var list notifyv1.ChannelDeliveryList
			g.Expect(k8s.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{notifyv1.LabelNotification: notifyv1.LabelValue(notification)})).To(Succeed())
			g.Expect(list.Items).To(HaveLen(1), notification)
			return list.Items[0]
		}
		Eventually(func(g Gomega) {
			n, err := phase("renders-forever")
			g.Expect(err).NotTo(HaveOccurred())
			c := meta.FindStatusCondition(n.Status.Conditions, notifyv1.ConditionDispatched)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(notifyv1.ReasonTemplateInvalid), c.Message)
		}).Should(Succeed())
		var tmpl notifyv1.NotificationTemplate
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "forever"}, &tmpl)).To(Succeed())
		Expect(meta.IsStatusConditionFalse(tmpl.Status.Conditions, notifyv1.ConditionReady)).To(BeTrue(), "%+v", tmpl.Status.Conditions)

		Eventually(func(g Gomega) {
			n, err := phase("to-forbidding-endpoint")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(n.Status.Phase).To(Equal(notifyv1.NotificationFailed))
			d := deliveryOf(g, "to-forbidding-endpoint")
			g.Expect(d.Status.Reason).To(Equal(notifyv1.ReasonRecipientRejected), d.Status.Message)
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			n, err := phase("to-parking-endpoint")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(n.Status.Phase).To(Equal(notifyv1.NotificationExpired))
			d := deliveryOf(g, "to-parking-endpoint")
			g.Expect(d.Status.Phase).To(Equal(notifyv1.DeliveryExpired))
			g.Expect(d.Status.Attempts).To(BeEquivalentTo(1), "a Retry-After of a year must not buy more attempts")
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			n, err := phase("to-odd-user-names")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(n.Status.Phase).To(Equal(notifyv1.NotificationFailed))
			g.Expect(n.Status.Unresolved).To(ConsistOf("Kim", "kim@example.com", "kim_x"))
		}).Should(Succeed())
		for _, name := range []string{"x", "x-webhook"} {
			Eventually(func(g Gomega) {
				n, err := phase(name)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(n.Status.Phase).To(Equal(notifyv1.NotificationDelivered), name)
			}).Should(Succeed())
		}

		Eventually(func(g Gomega) {
			n, err := phase("to-inside")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(n.Status.Phase).To(Equal(notifyv1.NotificationFailed))
			d := deliveryOf(g, "to-inside")
			g.Expect(d.Status.LastErrorReason).To(Equal(notifyv1.ReasonDestinationNotAllowed), d.Status.Message)
		}).Should(Succeed())
		// mallory answers through both Recipients, as the inbox records an
		// answer (the fault tests run no inbox server): one person is one
		// vote, so a quorum of two is not met.
		var answered int
		Eventually(func(g Gomega) {
			var list notifyv1.ChannelDeliveryList
			g.Expect(k8s.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{notifyv1.LabelNotification: "two-votes"})).To(Succeed())
			g.Expect(list.Items).To(HaveLen(2))
			for i := range list.Items {
				d := &list.Items[i]
				if d.Status.Response != nil {
					continue
				}
				g.Expect(d.Phase()).To(Equal(notifyv1.DeliverySucceeded))
				before := d.DeepCopy()
				d.Status.Response = &notifyv1.InboxResponse{Action: "approve", Username: "mallory", Time: metav1.Now()}
				g.Expect(k8s.Status().Patch(ctx, d, client.MergeFrom(before))).To(Succeed())
				answered++
			}
		}).Should(Succeed())
		Expect(answered).To(Equal(2))
		Eventually(func(g Gomega) {
			n, err := phase("two-votes")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(n.Status.Responses).To(HaveLen(2))
			c := meta.FindStatusCondition(n.Status.Conditions, notifyv1.ConditionApproved)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionUnknown), c.Message)
		}).Should(Succeed())
		for name, reason := range map[string]string{
			"skips-verify":   notifyv1.ReasonInsecureSkipVerifyNotAllowed,
			"borrows-secret": notifyv1.ReasonSecretNotAllowed,
			"borrows-token":  notifyv1.ReasonSecretNotAllowed,
			"inside":         string(notifyv1.ReasonDestinationNotAllowed),
		} {
			Eventually(func(g Gomega) {
				var p notifyv1.NotificationProvider
				g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &p)).To(Succeed())
				c := meta.FindStatusCondition(p.Status.Conditions, notifyv1.ConditionReady)
				g.Expect(c).NotTo(BeNil(), name)
				g.Expect(c.Status).To(Equal(metav1.ConditionFalse), name)
				g.Expect(c.Reason).To(Equal(reason), "%s: %s", name, c.Message)
			}).Should(Succeed())
		}

		var provider notifyv1.NotificationProvider
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "hooks"}, &provider)).To(Succeed())
		Expect(meta.IsStatusConditionTrue(provider.Status.Conditions, notifyv1.ConditionReady)).To(BeTrue(),
			"one recipient's endpoint must not take the provider down: %+v", provider.Status.Conditions)
		distinct, duplicates := s.tally()
		Expect(distinct).To(Equal(202), "200 good notifications and the two whose names read alike")
		Expect(duplicates).To(BeZero())
	})
})
