package controllers_test

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/dev/providerfake"
)

var _ = Describe("chat channels", func() {
	var (
		ns       string
		slack    *providerfake.Slack
		slack2   *providerfake.Slack
		teams    *providerfake.Teams
		telegram *providerfake.Telegram
	)

	BeforeEach(func() {
		ns = newNamespace()
		slack, slack2 = providerfake.NewSlack(), providerfake.NewSlack()
		teams, telegram = providerfake.NewTeams(), providerfake.NewTelegram()
		for _, f := range []*providerfake.Server{slack.Server, slack2.Server, teams.Server, telegram.Server} {
			DeferCleanup(f.Close)
		}
		opts := testOptions()
		opts.InboxURL = "https://herald.example.com/inbox"
		stop := startManager(opts)
		DeferCleanup(func() { stop() })

		createSecret(ns, "slack-bot", map[string]string{"token": slack.Token})
		createProvider(ns, "slack", notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelSlack, Default: true,
			Slack:    &notifyv1.SlackProvider{BotTokenSecretRef: notifyv1.SecretKeyReference{Name: "slack-bot", Key: "token"}, BaseURL: slack.BaseURL()},
			Fallback: []string{"slack-backup"},
		})
		createSecret(ns, "slack-backup-bot", map[string]string{"token": slack2.Token})
		createProvider(ns, "slack-backup", notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelSlack,
			Slack:   &notifyv1.SlackProvider{BotTokenSecretRef: notifyv1.SecretKeyReference{Name: "slack-backup-bot", Key: "token"}, BaseURL: slack2.BaseURL()},
		})
		createProvider(ns, "teams", notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelTeams, Default: true, Teams: &notifyv1.TeamsProvider{},
		})
		createSecret(ns, "telegram-bot", map[string]string{"token": telegram.Token})
		createProvider(ns, "telegram", notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelTelegram, Default: true,
			Telegram: &notifyv1.TelegramProvider{BotTokenSecretRef: notifyv1.SecretKeyReference{Name: "telegram-bot", Key: "token"}, BaseURL: telegram.BaseURL()},
		})
		for _, p := range []string{"slack", "slack-backup", "teams", "telegram"} {
			waitProviderReady(ns, p)
		}
		createSecret(ns, "ops-room", map[string]string{"url": teams.WebhookURL("ops")})
		createRecipient(ns, "ops", func(s *notifyv1.RecipientSpec) {
			s.Slack = &notifyv1.SlackAddress{ChannelID: "C024BE91L"}
			s.Teams = &notifyv1.TeamsAddress{WebhookURLSecretRef: notifyv1.SecretKeyReference{Name: "ops-room", Key: "url"}}
			s.Telegram = &notifyv1.TelegramAddress{ChatID: "-1001234567890"}
		})
	})

	chatTo := func(name, user string, channels []notifyv1.Channel, mutate func(*notifyv1.NotificationSpec)) {
		notification(ns, name, func(s *notifyv1.NotificationSpec) {
			s.Audience = notifyv1.Audience{Users: []string{user}}
			s.Channels = channels
			s.Retry = fastRetry(4)
			if mutate != nil {
				mutate(s)
			}
		})
	}
	all := []notifyv1.Channel{notifyv1.ChannelSlack, notifyv1.ChannelTeams, notifyv1.ChannelTelegram}

	It("delivers one notification to slack, teams and telegram", func() {
		chatTo("everywhere", "ops", all, nil)
		n := waitPhase(ns, "everywhere", notifyv1.NotificationDelivered)
		Expect(n.Status.Deliveries.Succeeded).To(BeEquivalentTo(3))

		s := slack.Messages()
		Expect(s).To(HaveLen(1))
		Expect(s[0].To).To(Equal("C024BE91L"))
		Expect(s[0].Text).To(Equal("*Disk almost full*\n/var is 95% full on node-1"))
		Expect(getDelivery(ns, "everywhere", notifyv1.ChannelSlack, "ops").Status.ProviderMessageID).To(Equal(s[0].ID))

		tm := teams.Messages()
		Expect(tm).To(HaveLen(1))
		Expect(tm[0].To).To(Equal("ops"))
		Expect(tm[0].Text).To(Equal("Disk almost full\n/var is 95% full on node-1"))

		tg := telegram.Messages()
		Expect(tg).To(HaveLen(1))
		Expect(tg[0].To).To(Equal("-1001234567890"))
		Expect(getDelivery(ns, "everywhere", notifyv1.ChannelTelegram, "ops").Status.ProviderMessageID).To(Equal(tg[0].ID))

		for _, f := range []*providerfake.Server{slack.Server, teams.Server, telegram.Server} {
			Expect(f.Rejections()).To(BeEmpty())
		}
		// The Teams webhook URL is a credential: deliveries hold only the
		// reference to its Secret.
		d := getDelivery(ns, "everywhere", notifyv1.ChannelTeams, "ops")
		Expect(d.Spec.Recipient.Teams.WebhookURLSecretRef.Name).To(Equal("ops-room"))
	})

	It("renders each channel's template content", func() {
		Expect(k8sClient.Create(suiteCtx, &notifyv1.NotificationTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "deployed", Namespace: ns},
			Spec: notifyv1.NotificationTemplateContent{
				Params:   []notifyv1.TemplateParam{{Name: "app", Required: true}},
				Title:    "{{ .app }} deployed",
				Message:  "{{ .app }} is live.",
				Slack:    &notifyv1.SlackContent{Text: "*{{ .app }}* is live", Blocks: `[{"type":"section","text":{"type":"mrkdwn","text":{{ json .app }}}}]`},
				Teams:    &notifyv1.TeamsContent{Card: `{"type":"AdaptiveCard","version":"1.5","body":[{"type":"TextBlock","text":{{ json .app }}}]}`},
				Telegram: &notifyv1.TelegramContent{Text: "<b>{{ html .app }}</b> is live", ParseMode: notifyv1.TelegramHTML},
			},
		})).To(Succeed())
		chatTo("templated", "ops", all, func(s *notifyv1.NotificationSpec) {
			s.Title, s.Message = "", ""
			s.TemplateRef = &notifyv1.TemplateReference{Name: "deployed"}
			s.Params = map[string]string{"app": "checkout"}
		})
		waitPhase(ns, "templated", notifyv1.NotificationDelivered)
		Expect(slack.Messages()[0].Text).To(Equal("*checkout* is live"))
		Expect(string(slack.Messages()[0].Body)).To(ContainSubstring(`"blocks":[{"type":"section"`))
		Expect(teams.Messages()[0].Text).To(Equal("checkout"))
		Expect(telegram.Messages()[0].Text).To(Equal("<b>checkout</b> is live"))
		Expect(string(telegram.Messages()[0].Body)).To(ContainSubstring(`"parse_mode":"HTML"`))
	})

	It("links approvals in Slack and Teams to the inbox item, and requires inApp for them", func() {
		createRecipient(ns, "alice", func(s *notifyv1.RecipientSpec) {
			s.Slack = &notifyv1.SlackAddress{UserID: "U0ALICE001"}
		})
		createRecipient(ns, "room", func(s *notifyv1.RecipientSpec) {
			s.Username = "" // a room: no one's inbox
			s.Slack = &notifyv1.SlackAddress{ChannelID: "C0ROOM0001"}
			s.Teams = &notifyv1.TeamsAddress{WebhookURLSecretRef: notifyv1.SecretKeyReference{Name: "ops-room", Key: "url"}}
		})
		approval := func(s *notifyv1.NotificationSpec) {
			s.Type = notifyv1.TypeApproval
			s.Audience = notifyv1.Audience{Users: []string{"alice", "room"}}
			s.Actions = []notifyv1.Action{{ID: "approve", Label: "Approve", Outcome: notifyv1.OutcomeApprove}}
		}
		n := &notifyv1.Notification{ObjectMeta: metav1.ObjectMeta{Name: "no-inbox", Namespace: ns},
			Spec: notifyv1.NotificationSpec{Message: "Ship it?", Audience: notifyv1.Audience{Users: []string{"alice"}},
				Channels: []notifyv1.Channel{notifyv1.ChannelSlack}}}
		approval(&n.Spec)
		Expect(k8sClient.Create(suiteCtx, n)).To(MatchError(ContainSubstring("an approval sent to slack or teams also needs the inApp channel")))

		chatTo("approve", "alice", []notifyv1.Channel{notifyv1.ChannelInApp, notifyv1.ChannelSlack, notifyv1.ChannelTeams}, approval)
		Eventually(func(g Gomega) {
			g.Expect(slack.Messages()).To(HaveLen(2))
			g.Expect(teams.Messages()).To(HaveLen(1)) // the room's; alice has no Teams address
		}).Should(Succeed())
		// alice has an inbox: her link names her item. The room has none:
		// its link names the notification.
		item := getDeliveryName("approve", notifyv1.ChannelInApp, "alice")
		byTo := map[string]string{}
		for _, m := range slack.Messages() {
			byTo[m.To] = m.Text
		}
		base := "https://herald.example.com/inbox?"
		Expect(byTo["U0ALICE001"]).To(ContainSubstring("<" + base + "item=" + item + "&namespace=" + ns + "&notification=approve|Answer in the Herald inbox>"))
		Expect(byTo["C0ROOM0001"]).To(ContainSubstring("<" + base + "namespace=" + ns + "&notification=approve|Answer in the Herald inbox>"))
		Expect(strings.ReplaceAll(string(teams.Messages()[0].Body), `\u0026`, "&")).To(ContainSubstring(`"url":"` + base + "namespace=" + ns + `&notification=approve"`))
	})

	It("fails a Slack channel that does not exist as the recipient's fault, and the provider stays Ready", func() {
		slack.RefuseConversation("C0GONE0001", "channel_not_found")
		createRecipient(ns, "gone", func(s *notifyv1.RecipientSpec) { s.Slack = &notifyv1.SlackAddress{ChannelID: "C0GONE0001"} })
		chatTo("gone", "gone", []notifyv1.Channel{notifyv1.ChannelSlack}, nil)
		waitPhase(ns, "gone", notifyv1.NotificationFailed)
		d := getDelivery(ns, "gone", notifyv1.ChannelSlack, "gone")
		Expect(d.Status.Attempts).To(BeEquivalentTo(1))
		Expect(d.Status.Reason).To(Equal(notifyv1.ReasonRecipientRejected))
		Expect(d.Status.LastError).To(ContainSubstring("channel_not_found"))
		Expect(d.Status.Provider).To(Equal("slack"))
		Expect(slack2.Requests()).To(BeZero(), "a recipient fault moves on to no fallback")
		Consistently(func(g Gomega) {
			g.Expect(providerReady(g, ns, "slack").Status).To(Equal(metav1.ConditionTrue))
		}, "500ms").Should(Succeed())
	})

	It("fails a Slack channel the bot is not in, and an archived one, as the recipient's", func() {
		slack.RefuseConversation("C0NOTIN001", "not_in_channel")
		slack.RefuseConversation("C0ARCHIVE1", "is_archived")
		createRecipient(ns, "notin", func(s *notifyv1.RecipientSpec) { s.Slack = &notifyv1.SlackAddress{ChannelID: "C0NOTIN001"} })
		createRecipient(ns, "archived", func(s *notifyv1.RecipientSpec) { s.Slack = &notifyv1.SlackAddress{ChannelID: "C0ARCHIVE1"} })
		chatTo("notin", "notin", []notifyv1.Channel{notifyv1.ChannelSlack}, nil)
		chatTo("archived", "archived", []notifyv1.Channel{notifyv1.ChannelSlack}, nil)
		for name, code := range map[string]string{"notin": "not_in_channel", "archived": "is_archived"} {
			waitPhase(ns, name, notifyv1.NotificationFailed)
			d := getDelivery(ns, name, notifyv1.ChannelSlack, name)
			Expect(d.Status.Reason).To(Equal(notifyv1.ReasonRecipientRejected))
			Expect(d.Status.LastError).To(ContainSubstring(code))
		}
		waitProviderReady(ns, "slack")
	})

	It("falls back when Slack revokes the token, and marks the provider not Ready", func() {
		slack.FailNext(1, providerfake.ErrorSpec{Message: "token_revoked"})
		chatTo("revoked", "ops", []notifyv1.Channel{notifyv1.ChannelSlack}, nil)
		waitPhase(ns, "revoked", notifyv1.NotificationDelivered)
		d := getDelivery(ns, "revoked", notifyv1.ChannelSlack, "ops")
		Expect(d.Status.Provider).To(Equal("slack-backup"))
		Expect(slack2.Messages()).To(HaveLen(1))
		Eventually(func(g Gomega) {
			c := providerReady(g, ns, "slack")
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Message).To(ContainSubstring("token_revoked"))
		}).Should(Succeed())
	})

	It("falls back past a rejected token to a rate-limited provider, and waits for its slots", func() {
		createSecret(ns, "stale-bot", map[string]string{"token": "xoxb-stale"})
		createProvider(ns, "slack-stale", notifyv1.NotificationProviderSpec{
			Channel:  notifyv1.ChannelSlack,
			Slack:    &notifyv1.SlackProvider{BotTokenSecretRef: notifyv1.SecretKeyReference{Name: "stale-bot", Key: "token"}, BaseURL: slack.BaseURL()},
			Fallback: []string{"slack-paced"},
		})
		createProvider(ns, "slack-paced", notifyv1.NotificationProviderSpec{
			Channel:   notifyv1.ChannelSlack,
			Slack:     &notifyv1.SlackProvider{BotTokenSecretRef: notifyv1.SecretKeyReference{Name: "slack-backup-bot", Key: "token"}, BaseURL: slack2.BaseURL()},
			RateLimit: &notifyv1.RateLimit{Requests: 1, Per: metav1.Duration{Duration: time.Second}, Burst: 1},
		})
		waitProviderReady(ns, "slack-stale")
		waitProviderReady(ns, "slack-paced")
		viaStale := func(name string) {
			chatTo(name, "ops", []notifyv1.Channel{notifyv1.ChannelSlack}, func(s *notifyv1.NotificationSpec) {
				s.Providers = &notifyv1.ChannelProviders{Slack: "slack-stale"}
				s.Retry = fastRetry(10)
			})
		}
		// The first delivery meets the rejected token and falls back; the
		// provider's circuit opens.
		viaStale("paced-0")
		waitPhase(ns, "paced-0", notifyv1.NotificationDelivered)
		Expect(getDelivery(ns, "paced-0", notifyv1.ChannelSlack, "ops").Status.Provider).To(Equal("slack-paced"))
		Eventually(func(g Gomega) {
			g.Expect(providerReady(g, ns, "slack-stale").Status).To(Equal(metav1.ConditionFalse))
		}).Should(Succeed())
		// The next go straight to the fallback, one a second, waiting for
		// their slots without using attempts.
		names := []string{"paced-1", "paced-2", "paced-3"}
		for _, name := range names {
			viaStale(name)
		}
		var first, last time.Time
		for _, name := range names {
			waitPhase(ns, name, notifyv1.NotificationDelivered)
			d := getDelivery(ns, name, notifyv1.ChannelSlack, "ops")
			Expect(d.Status.Provider).To(Equal("slack-paced"))
			Expect(d.Status.Attempts).To(BeEquivalentTo(1))
			start := d.Status.History[0].StartTime.Time
			if first.IsZero() || start.Before(first) {
				first = start
			}
			if start.After(last) {
				last = start
			}
		}
		Expect(slack2.Messages()).To(HaveLen(4))
		Expect(last.Sub(first)).To(BeNumerically(">=", 1800*time.Millisecond))
		waitProviderReady(ns, "slack-paced")
	})

	It("waits out Slack's rate limit for Retry-After on the same provider, using no fallback", func() {
		slack.FailNext(1, providerfake.ErrorSpec{HTTPStatus: 429, RetryAfter: "1"})
		chatTo("limited", "ops", []notifyv1.Channel{notifyv1.ChannelSlack}, nil)
		waitPhase(ns, "limited", notifyv1.NotificationDelivered)
		d := getDelivery(ns, "limited", notifyv1.ChannelSlack, "ops")
		Expect(d.Status.History).To(HaveLen(2))
		Expect(d.Status.History[0].Reason).To(Equal(notifyv1.ReasonRateLimited))
		Expect(gaps(d.Status.History)[0]).To(BeNumerically(">=", time.Second))
		Expect(d.Status.Provider).To(Equal("slack"))
		Expect(slack2.Requests()).To(BeZero())
	})

	It("waits for Telegram's retry_after", func() {
		telegram.FailNext(1, providerfake.ErrorSpec{Code: 429, RetryAfter: "1"})
		chatTo("tg-limited", "ops", []notifyv1.Channel{notifyv1.ChannelTelegram}, nil)
		waitPhase(ns, "tg-limited", notifyv1.NotificationDelivered)
		d := getDelivery(ns, "tg-limited", notifyv1.ChannelTelegram, "ops")
		Expect(d.Status.History).To(HaveLen(2))
		Expect(d.Status.History[0].Reason).To(Equal(notifyv1.ReasonRateLimited))
		Expect(gaps(d.Status.History)[0]).To(BeNumerically(">=", time.Second))
	})

	It("retries a Teams 429 after Retry-After and a 502, and fails a 400 at once", func() {
		teams.FailNext(1, providerfake.ErrorSpec{HTTPStatus: 429, RetryAfter: "1"})
		teams.FailNext(1, providerfake.ErrorSpec{HTTPStatus: 502})
		chatTo("teams-retry", "ops", []notifyv1.Channel{notifyv1.ChannelTeams}, nil)
		waitPhase(ns, "teams-retry", notifyv1.NotificationDelivered)
		d := getDelivery(ns, "teams-retry", notifyv1.ChannelTeams, "ops")
		Expect(d.Status.History).To(HaveLen(3))
		Expect(d.Status.History[0].Reason).To(Equal(notifyv1.ReasonRateLimited))
		Expect(d.Status.History[1].Reason).To(Equal(notifyv1.ReasonTransient))
		Expect(gaps(d.Status.History)[0]).To(BeNumerically(">=", time.Second))

		teams.FailNext(1, providerfake.ErrorSpec{HTTPStatus: 400, Message: "InvalidRequestContent"})
		chatTo("teams-400", "ops", []notifyv1.Channel{notifyv1.ChannelTeams}, nil)
		waitPhase(ns, "teams-400", notifyv1.NotificationFailed)
		d = getDelivery(ns, "teams-400", notifyv1.ChannelTeams, "ops")
		Expect(d.Status.Attempts).To(BeEquivalentTo(1))
		Expect(d.Status.Reason).To(Equal(notifyv1.ReasonPermanentFailure))
		Expect(d.Status.LastError).To(ContainSubstring("400"))
	})

	It("fails a Teams room whose Secret has not opted in, as the recipient's fault", func() {
		Expect(k8sClient.Create(suiteCtx, secretWithoutOptIn(ns, "private-room", teams.WebhookURL("private")))).To(Succeed())
		createRecipient(ns, "private", func(s *notifyv1.RecipientSpec) {
			s.Teams = &notifyv1.TeamsAddress{WebhookURLSecretRef: notifyv1.SecretKeyReference{Name: "private-room", Key: "url"}}
		})
		chatTo("private", "private", []notifyv1.Channel{notifyv1.ChannelTeams}, nil)
		waitPhase(ns, "private", notifyv1.NotificationFailed)
		d := getDelivery(ns, "private", notifyv1.ChannelTeams, "private")
		Expect(d.Status.Reason).To(Equal(notifyv1.ReasonRecipientRejected))
		Expect(d.Status.LastError).To(ContainSubstring("not labelled notify.herald.dev/provider-secret=true"))
		Expect(d.Status.LastError).NotTo(ContainSubstring("sig="))
		Expect(teams.Requests()).To(BeZero())
		waitProviderReady(ns, "teams")
	})

	It("fails a Telegram user who blocked the bot as the recipient's fault, and a rejected token as the provider's", func() {
		telegram.BlockBy("555")
		createRecipient(ns, "blocker", func(s *notifyv1.RecipientSpec) { s.Telegram = &notifyv1.TelegramAddress{ChatID: "555"} })
		chatTo("blocked", "blocker", []notifyv1.Channel{notifyv1.ChannelTelegram}, nil)
		waitPhase(ns, "blocked", notifyv1.NotificationFailed)
		d := getDelivery(ns, "blocked", notifyv1.ChannelTelegram, "blocker")
		Expect(d.Status.Reason).To(Equal(notifyv1.ReasonRecipientRejected))
		Expect(d.Status.LastError).To(ContainSubstring("blocked by the user"))
		waitProviderReady(ns, "telegram")

		telegram.FailNext(1, providerfake.ErrorSpec{Code: 401, Message: "Unauthorized"})
		chatTo("unauthorized", "ops", []notifyv1.Channel{notifyv1.ChannelTelegram}, nil)
		waitPhase(ns, "unauthorized", notifyv1.NotificationFailed)
		d = getDelivery(ns, "unauthorized", notifyv1.ChannelTelegram, "ops")
		Expect(d.Status.Reason).To(Equal(notifyv1.ReasonPermanentFailure))
		Expect(d.Status.LastError).To(ContainSubstring("telegram 401"))
		Expect(d.Status.LastError).NotTo(ContainSubstring(telegram.Token))
		Eventually(func(g Gomega) {
			g.Expect(providerReady(g, ns, "telegram").Status).To(Equal(metav1.ConditionFalse))
		}).Should(Succeed())
	})

	It("skips a Telegram recipient without a chat", func() {
		createRecipient(ns, "nochat", nil)
		chatTo("nochat", "nochat", []notifyv1.Channel{notifyv1.ChannelTelegram}, nil)
		waitPhase(ns, "nochat", notifyv1.NotificationFailed)
		d := getDelivery(ns, "nochat", notifyv1.ChannelTelegram, "nochat")
		Expect(d.Status.Phase).To(Equal(notifyv1.DeliverySkipped))
		Expect(telegram.Requests()).To(BeZero())
	})
})

// secretWithoutOptIn is a Secret holding a Teams room URL that lacks the
// provider-secret label.
func secretWithoutOptIn(ns, name, url string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: map[string]string{"url": url}}
}
