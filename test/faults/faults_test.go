//go:build faults

package faults

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/dev/mailpit"
	"github.com/herald-dev/herald/internal/dev/providerfake"
)

// sink is a webhook receiver that records successful requests per
// Idempotency-Key, optionally answering 503 or slowly.
type sink struct {
	*httptest.Server
	mu        sync.Mutex
	ok        map[string]int
	requests  atomic.Int64
	failUntil atomic.Int64 // unix nanos; 503 before it
	delay     time.Duration
}

func newSink(delay time.Duration) *sink {
	s := &sink{ok: map[string]int{}, delay: delay}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if time.Now().UnixNano() < s.failUntil.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if s.delay > 0 {
			select {
			case <-time.After(s.delay):
			case <-r.Context().Done():
				return
			}
		}
		s.mu.Lock()
		s.ok[r.Header.Get("Idempotency-Key")]++
		s.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	DeferCleanup(s.Close)
	return s
}

// expectEach checks that every one of ds reached the sink, and nothing
// else did, and returns how many successful requests were repeats.
func (s *sink) expectEach(ds []notifyv1.ChannelDelivery) (duplicates int) {
	GinkgoHelper()
	distinct, duplicates := s.tally()
	Expect(distinct).To(Equal(len(ds)))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range ds {
		Expect(s.ok).To(HaveKey(string(d.UID)))
	}
	return duplicates
}

// tally returns distinct delivered keys and duplicate successful requests.
func (s *sink) tally() (distinct, duplicates int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.ok {
		distinct++
		duplicates += n - 1
	}
	return
}

func webhookProvider(ns, url string) {
	Expect(k8s.Create(ctx, &notifyv1.NotificationProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "sink", Namespace: ns},
		Spec: notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelWebhook, Default: true,
			Webhook: &notifyv1.WebhookProvider{URL: url},
		},
	})).To(Succeed())
}

var _ = Describe("faults", Ordered, func() {
	It("loses nothing when the controller process is killed mid-run", func() {
		ns := namespace("kill")
		s := newSink(20 * time.Millisecond)
		p := startController()
		webhookProvider(ns, s.URL)
		users := recipients(ns, 100, nil)
		notifications(ns, users, 100, 5, notifyv1.ChannelWebhook, nil)

		Eventually(func() int64 { return s.requests.Load() }).Should(BeNumerically(">=", 150))
		p.Kill()
		killedAt, _ := s.tally()
		startController()

		waitAllFinished(ns, 100)
		dup := s.expectEach(expectAllSucceeded(ns, 500))
		// Only sends in flight at the kill may repeat: at most one per
		// webhook worker.
		Expect(dup).To(BeNumerically("<=", 5))
		AddReportEntry("kill", fmt.Sprintf("killed after %d of 500 deliveries; duplicates at the sink: %d", killedAt, dup))
	})

	It("hands the lease over at once when the leader is stopped mid-run, losing and repeating nothing", func() {
		ns := namespace("handover")
		s := newSink(20 * time.Millisecond)
		election := []string{"--leader-elect", "--leader-election-namespace=" + ns}
		lease := client.ObjectKey{Namespace: ns, Name: "herald-controller.notify.herald.dev"}
		holder := func() string {
			var l coordinationv1.Lease
			if err := k8s.Get(ctx, lease, &l); err != nil || l.Spec.HolderIdentity == nil {
				return ""
			}
			return *l.Spec.HolderIdentity
		}
		leader := startController(election...)
		Eventually(holder, time.Minute).ShouldNot(BeEmpty())
		first := holder()
		startController(election...) // the standby, with warm caches

		webhookProvider(ns, s.URL)
		users := recipients(ns, 50, nil)
		notifications(ns, users, 50, 4, notifyv1.ChannelWebhook, nil)
		Eventually(func() int64 { return s.requests.Load() }).Should(BeNumerically(">=", 50))

		// What the kubelet does in a rolling update: SIGTERM, then wait.
		stoppedAt := time.Now()
		Expect(leader.Stop(40*time.Second)).To(BeTrue(), "the leader did not stop within 40s of SIGTERM")
		Eventually(func() string {
			h := holder()
			if h == first {
				return ""
			}
			return h
		}, time.Minute, 100*time.Millisecond).ShouldNot(BeEmpty())
		handover := time.Since(stoppedAt)
		// Without giving the lease up, the standby would wait for it to
		// expire (15s after the last renewal).
		Expect(handover).To(BeNumerically("<", 10*time.Second))

		waitAllFinished(ns, 50)
		dup := s.expectEach(expectAllSucceeded(ns, 200))
		// A graceful stop finishes the attempts in flight and records them:
		// nothing is sent twice.
		Expect(dup).To(BeZero())
		AddReportEntry("handover", fmt.Sprintf("leader stopped with SIGTERM; the standby led %s later; duplicates at the sink: %d", handover.Round(time.Millisecond), dup))
	})

	It("loses nothing when the API server is down for 10 seconds", func() {
		ns := namespace("apiserver")
		s := newSink(10 * time.Millisecond)
		startController()
		webhookProvider(ns, s.URL)
		users := recipients(ns, 100, nil)
		notifications(ns, users, 60, 5, notifyv1.ChannelWebhook, nil)
		Eventually(func() int64 { return s.requests.Load() }).Should(BeNumerically(">=", 60))

		apiserver := testEnv.ControlPlane.GetAPIServer()
		if err := apiserver.Stop(); err != nil {
			// Open watches can keep a graceful stop from finishing; envtest
			// then kills the process, which is the outage we want anyway.
			Expect(err.Error()).To(ContainSubstring("timeout waiting for process kube-apiserver to stop"))
		}
		// The outage itself: ten seconds with no API server.
		time.Sleep(10 * time.Second)
		Expect(apiserver.Start()).To(Succeed())

		waitAllFinished(ns, 60)
		dup := s.expectEach(expectAllSucceeded(ns, 300))
		Expect(dup).To(BeZero(), "results of sends made during the outage are written afterwards, not sent again")
		AddReportEntry("apiserver", fmt.Sprintf("duplicates at the sink: %d", dup))
	})

	It("delivers everything after the webhook receiver answers 503 for 10 seconds", func() {
		ns := namespace("sink503")
		s := newSink(0)
		s.failUntil.Store(time.Now().Add(10 * time.Second).UnixNano())
		startController()
		webhookProvider(ns, s.URL)
		users := recipients(ns, 50, nil)
		notifications(ns, users, 50, 4, notifyv1.ChannelWebhook, nil)
		waitAllFinished(ns, 50)
		ds := expectAllSucceeded(ns, 200)
		retried := 0
		for _, d := range ds {
			if d.Status.Attempts > 1 {
				retried++
			}
		}
		Expect(retried).To(BeNumerically(">", 0))
		Expect(s.expectEach(ds)).To(BeZero())
	})

	It("delivers every email after Mailpit is stopped and started again", func() {
		mp, err := mailpit.Start(mailpit.Options{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = mp.Close() })
		ns := namespace("mailpit")
		startController()
		Expect(k8s.Create(ctx, &notifyv1.NotificationProvider{
			ObjectMeta: metav1.ObjectMeta{Name: "smtp", Namespace: ns},
			Spec: notifyv1.NotificationProviderSpec{
				Channel: notifyv1.ChannelEmail, Default: true,
				SMTP: &notifyv1.SMTPProvider{Host: "localhost", Port: int32(mp.Port()), TLS: notifyv1.SMTPTLSNone, From: "herald@example.com"},
			},
		})).To(Succeed())
		users := recipients(ns, 50, nil)
		Expect(mp.Stop()).To(Succeed())
		notifications(ns, users, 50, 2, notifyv1.ChannelEmail, nil)
		Eventually(func() int {
			failed := 0
			for _, d := range deliveries(ns) {
				if d.Status.LastErrorReason != "" {
					failed++
				}
			}
			return failed
		}).Should(BeNumerically(">=", 10))
		Expect(mp.Restart()).To(Succeed())
		waitAllFinished(ns, 50)
		ds := expectAllSucceeded(ns, 100)
		msgs, err := mp.Messages(ctx)
		Expect(err).NotTo(HaveOccurred())
		ids := map[string]int{}
		for _, m := range msgs {
			ids[m.MessageID]++
		}
		for _, d := range ds {
			Expect(ids).To(HaveKeyWithValue(string(d.UID)+"@herald", 1))
		}
	})

	It("rejects malformed manifests and marks bad runtime data, delivering every good notification", func() {
		ns := namespace("mixed")
		s := newSink(0)
		startController()
		webhookProvider(ns, s.URL)
		Expect(k8s.Create(ctx, &notifyv1.NotificationProvider{
			ObjectMeta: metav1.ObjectMeta{Name: "no-secret", Namespace: ns},
			Spec: notifyv1.NotificationProviderSpec{
				Channel: notifyv1.ChannelWebhook,
				Webhook: &notifyv1.WebhookProvider{URL: s.URL, SigningSecretRef: &notifyv1.SecretKeyReference{Name: "missing", Key: "key"}},
			},
		})).To(Succeed())
		users := recipients(ns, 20, func(i int, spec *notifyv1.RecipientSpec) {
			spec.Phone = "+4915112345678"
			if i%2 == 1 {
				spec.Phone = "+99912345678" // well-formed, not a real number
			}
		})
		Expect(k8s.Create(ctx, &notifyv1.NotificationProvider{
			ObjectMeta: metav1.ObjectMeta{Name: "wa", Namespace: ns},
			Spec: notifyv1.NotificationProviderSpec{
				Channel: notifyv1.ChannelWhatsApp, Default: true,
				// Only invalid numbers are sent here: they never reach it.
				WhatsApp: &notifyv1.WhatsAppProvider{API: notifyv1.WhatsAppWAHA, BaseURL: "http://127.0.0.1:9"},
			},
		})).To(Succeed())

		fewAttempts := func(s *notifyv1.NotificationSpec) {
			two := int32(2)
			s.Retry = &notifyv1.RetryPolicy{MaxAttempts: &two, InitialDelay: &metav1.Duration{Duration: 100 * time.Millisecond}}
		}
		var good, bad []*notifyv1.Notification
		for i := 0; i < 600; i++ {
			n := &notifyv1.Notification{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("m%03d", i), Namespace: ns},
				Spec: notifyv1.NotificationSpec{
					Title: "Mixed", Message: "load",
					Audience: notifyv1.Audience{Users: []string{users[(2*i)%len(users)]}},
					Channels: []notifyv1.Channel{notifyv1.ChannelWebhook},
				},
			}
			switch i % 3 {
			case 0:
				good = append(good, n)
				continue
			case 1:
				if i%2 == 0 {
					n.Spec.Audience.Users = []string{fmt.Sprintf("ghost-%d", i)} // unknown user
				} else {
					n.Spec.Providers = &notifyv1.ChannelProviders{Webhook: "no-secret"} // missing Secret
					fewAttempts(&n.Spec)
				}
			case 2:
				n.Spec.Audience.Users = []string{users[1]} // invalid phone
				n.Spec.Channels = []notifyv1.Channel{notifyv1.ChannelWhatsApp}
			}
			bad = append(bad, n)
		}
		Expect(good).To(HaveLen(200))
		Expect(bad).To(HaveLen(400))
		chatGood, chatBad := chatInput(ns)
		// 200 malformed manifests go in among them and must be refused.
		rejected := 0
		for i := 0; i < 200; i++ {
			err := k8s.Create(ctx, malformed(ns, i))
			if err != nil {
				rejected++
			}
		}
		Expect(rejected).To(Equal(200))
		all := append(append([]*notifyv1.Notification{}, good...), bad...)
		all = append(append(all, chatGood...), chatBad...)
		createAll(all)

		waitAllFinished(ns, len(all))
		for _, n := range chatGood {
			var got notifyv1.Notification
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(n), &got)).To(Succeed())
			Expect(got.Status.Phase).To(Equal(notifyv1.NotificationDelivered), n.Name)
		}
		// Chat recipients whose Slack channel does not exist or who
		// blocked the Telegram bot fail as their own fault, and the
		// providers that refused them stay Ready for everyone else.
		for _, n := range chatBad {
			var got notifyv1.Notification
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(n), &got)).To(Succeed())
			Expect(got.Status.Phase).To(Equal(notifyv1.NotificationFailed), n.Name)
		}
		chatReasons := map[string]int{}
		for _, d := range deliveries(ns) {
			if d.Spec.Channel == notifyv1.ChannelSlack || d.Spec.Channel == notifyv1.ChannelTelegram {
				if d.Status.Phase != notifyv1.DeliverySucceeded {
					Expect(d.Status.Phase).To(Equal(notifyv1.DeliveryFailed), d.Name)
					Expect(d.Status.Reason).To(Equal(notifyv1.ReasonRecipientRejected), d.Name)
					Expect(d.Status.LastError).To(Or(ContainSubstring("channel_not_found"), ContainSubstring("blocked by the user")), d.Name)
					chatReasons[string(d.Spec.Channel)+"/"+d.Status.Reason]++
				}
			}
		}
		Expect(chatReasons).To(Equal(map[string]int{"slack/RecipientRejected": len(chatBad) / 2, "telegram/RecipientRejected": len(chatBad) / 2}))
		for _, p := range []string{"slack", "telegram"} {
			var np notifyv1.NotificationProvider
			Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: p}, &np)).To(Succeed())
			Expect(meta.IsStatusConditionTrue(np.Status.Conditions, "Ready")).To(BeTrue(), "provider %s: %v", p, np.Status.Conditions)
		}
		for _, n := range good {
			var got notifyv1.Notification
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(n), &got)).To(Succeed())
			Expect(got.Status.Phase).To(Equal(notifyv1.NotificationDelivered), n.Name)
		}
		for _, n := range bad {
			var got notifyv1.Notification
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(n), &got)).To(Succeed())
			Expect(got.Status.Phase).To(Equal(notifyv1.NotificationFailed), n.Name)
			c := meta.FindStatusCondition(got.Status.Conditions, notifyv1.ConditionDelivered)
			Expect(c).NotTo(BeNil())
			Expect(c.Status).To(Equal(metav1.ConditionFalse))
		}
		reasons := map[string]int{}
		for _, d := range deliveries(ns) {
			if d.Phase() != notifyv1.DeliverySucceeded {
				Expect(d.Status.Reason).NotTo(BeEmpty(), d.Name)
				reasons[d.Status.Reason]++
			}
		}
		AddReportEntry("mixed", fmt.Sprintf("rejected %d malformed manifests; reasons of undelivered: %v; chat: %v", rejected, reasons, chatReasons))
		distinct, dup := s.tally()
		Expect(distinct).To(Equal(200))
		Expect(dup).To(BeZero())
	})
})

// chatInput adds chat providers backed by the Slack and Telegram contract
// servers to ns, with recipients whose Slack channel does not exist
// (channel_not_found) or who blocked the Telegram bot (403), and returns
// 40 notifications that must be delivered (to good chats, through the
// same providers) and 40 that must fail.
func chatInput(ns string) (good, bad []*notifyv1.Notification) {
	slack, telegram := providerfake.NewSlack(), providerfake.NewTelegram()
	DeferCleanup(slack.Close)
	DeferCleanup(telegram.Close)
	secret := func(name, token string) {
		Expect(k8s.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{notifyv1.LabelProviderSecret: "true"}},
			StringData: map[string]string{"token": token},
		})).To(Succeed())
	}
	secret("slack-bot", slack.Token)
	secret("telegram-bot", telegram.Token)
	createAll([]*notifyv1.NotificationProvider{
		{ObjectMeta: metav1.ObjectMeta{Name: "slack", Namespace: ns}, Spec: notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelSlack, Default: true,
			Slack: &notifyv1.SlackProvider{BotTokenSecretRef: notifyv1.SecretKeyReference{Name: "slack-bot", Key: "token"}, BaseURL: slack.BaseURL()},
		}},
		{ObjectMeta: metav1.ObjectMeta{Name: "telegram", Namespace: ns}, Spec: notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelTelegram, Default: true,
			Telegram: &notifyv1.TelegramProvider{BotTokenSecretRef: notifyv1.SecretKeyReference{Name: "telegram-bot", Key: "token"}, BaseURL: telegram.BaseURL()},
		}},
	})
	var rs []*notifyv1.Recipient
	for i := 0; i < 4; i++ {
		// chat-0 and chat-2 are reachable; chat-1 and chat-3 are not.
		channelID, chatID := fmt.Sprintf("C0CHAT%04d", i), fmt.Sprintf("%d", 900000+i)
		if i%2 == 1 {
			slack.RefuseConversation(channelID, "channel_not_found")
			telegram.BlockBy(chatID)
		}
		rs = append(rs, &notifyv1.Recipient{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("chat-%d", i), Namespace: ns},
			Spec: notifyv1.RecipientSpec{
				Slack:    &notifyv1.SlackAddress{ChannelID: channelID},
				Telegram: &notifyv1.TelegramAddress{ChatID: chatID},
			},
		})
	}
	createAll(rs)
	for i := 0; i < 80; i++ {
		ch := notifyv1.ChannelSlack
		if i%4 >= 2 {
			ch = notifyv1.ChannelTelegram
		}
		n := &notifyv1.Notification{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("chat%03d", i), Namespace: ns},
			Spec: notifyv1.NotificationSpec{
				Title: "Mixed", Message: "chat",
				Audience: notifyv1.Audience{Users: []string{rs[i%4].Name}},
				Channels: []notifyv1.Channel{ch},
			},
		}
		if i%2 == 1 {
			bad = append(bad, n)
		} else {
			good = append(good, n)
		}
	}
	return good, bad
}

// malformed returns the i-th of a rotation of invalid Notifications.
func malformed(ns string, i int) client.Object {
	spec := map[string]any{
		"title": "t", "message": "m",
		"audience": map[string]any{"users": []any{"r000"}},
		"channels": []any{"webhook"},
	}
	switch i % 8 {
	case 0:
		spec["channels"] = []any{"sms"}
	case 1:
		delete(spec, "audience")
	case 2:
		spec["type"] = "approval"
	case 3:
		spec["templateRef"] = map[string]any{"name": "x"}
	case 4:
		spec["retry"] = map[string]any{"maxAttempts": int64(0)}
	case 5:
		spec["audience"] = map[string]any{}
	case 6:
		spec["timeout"] = "forever"
	case 7:
		spec["channels"] = []any{}
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "notify.herald.dev/v1alpha1",
		"kind":       "Notification",
		"metadata":   map[string]any{"name": fmt.Sprintf("bad-%03d", i), "namespace": ns},
		"spec":       spec,
	}}
	return u
}
