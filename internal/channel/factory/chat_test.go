package factory

import (
	"context"
	"errors"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/egress"
	"github.com/herald-dev/herald/internal/channel/slack"
	"github.com/herald-dev/herald/internal/channel/teams"
	"github.com/herald-dev/herald/internal/channel/telegram"
	"github.com/herald-dev/herald/internal/dev/providerfake"
)

const telegramToken = "7000000001:AAHeraldTestTokenForTheFakeBotApi0"

func chatProvider(spec notifyv1.NotificationProviderSpec) *notifyv1.NotificationProvider {
	return provider(spec)
}

// TestBuildChat: each chat provider reads its Secret, with the same
// opt-in and TLS rules as the others, and builds its channel's sender.
func TestBuildChat(t *testing.T) {
	unlabelled := secret("unlabelled", map[string]string{"token": "xoxb-1"})
	unlabelled.Labels = nil
	c := fake.NewClientBuilder().WithObjects(
		secret("slack", map[string]string{"token": "xoxb-1-2-abc"}),
		secret("telegram", map[string]string{"token": telegramToken}),
		secret("room", map[string]string{"url": "https://prod-01.example.com/workflows/1/triggers/manual/paths/invoke?sig=x"}),
		secret("http-room", map[string]string{"url": "http://flows.example.com/workflows/1"}),
		unlabelled,
	).Build()
	key := func(name, k string) notifyv1.SecretKeyReference {
		return notifyv1.SecretKeyReference{Name: name, Key: k}
	}
	slackP := func(s notifyv1.SlackProvider) *notifyv1.NotificationProvider {
		return chatProvider(notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelSlack, Slack: &s})
	}
	telegramP := func(s notifyv1.TelegramProvider) *notifyv1.NotificationProvider {
		return chatProvider(notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelTelegram, Telegram: &s})
	}
	teamsP := func(s notifyv1.TeamsProvider) *notifyv1.NotificationProvider {
		return chatProvider(notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelTeams, Teams: &s})
	}
	ref := func(name, k string) *notifyv1.SecretKeyReference { r := key(name, k); return &r }
	allow := egress.MustNew([]string{"127.0.0.0/8"}, nil)
	for _, tc := range []struct {
		name   string
		p      *notifyv1.NotificationProvider
		policy *egress.Policy
		reason string // ConfigError reason; empty when built
		says   string
	}{
		{name: "slack", p: slackP(notifyv1.SlackProvider{BotTokenSecretRef: key("slack", "token")})},
		{name: "slack, unlabelled Secret", p: slackP(notifyv1.SlackProvider{BotTokenSecretRef: key("unlabelled", "token")}), reason: ReasonSecretNotAllowed},
		{name: "slack, missing key", p: slackP(notifyv1.SlackProvider{BotTokenSecretRef: key("slack", "bot")}), reason: ReasonSecretKeyMissing},
		{name: "slack, not a slack token", p: slackP(notifyv1.SlackProvider{BotTokenSecretRef: key("telegram", "token")}), reason: ReasonInvalidConfig, says: "xoxb-"},
		{name: "slack over http", p: slackP(notifyv1.SlackProvider{BotTokenSecretRef: key("slack", "token"), BaseURL: "http://slack.example.com/api"}), reason: ReasonInsecureCredentials, says: "Slack bot token"},
		{name: "slack over http to an allowed host", p: slackP(notifyv1.SlackProvider{BotTokenSecretRef: key("slack", "token"), BaseURL: "http://127.0.0.1:1/api"}), policy: allow},
		{name: "slack to loopback, not allowed", p: slackP(notifyv1.SlackProvider{BotTokenSecretRef: key("slack", "token"), BaseURL: "https://127.0.0.1/api"}), reason: ReasonDestinationNotAllowed},
		{name: "telegram", p: telegramP(notifyv1.TelegramProvider{BotTokenSecretRef: key("telegram", "token")})},
		{name: "telegram over http", p: telegramP(notifyv1.TelegramProvider{BotTokenSecretRef: key("telegram", "token"), BaseURL: "http://bots.example.com"}), reason: ReasonInsecureCredentials, says: "Telegram bot token"},
		{name: "telegram, malformed token", p: telegramP(notifyv1.TelegramProvider{BotTokenSecretRef: key("slack", "token")}), reason: ReasonInvalidConfig, says: "BotFather"},
		{name: "teams without a default room", p: teamsP(notifyv1.TeamsProvider{})},
		{name: "teams with a default room", p: teamsP(notifyv1.TeamsProvider{WebhookURLSecretRef: ref("room", "url")})},
		{name: "teams, default room over http", p: teamsP(notifyv1.TeamsProvider{WebhookURLSecretRef: ref("http-room", "url")}), reason: ReasonInsecureCredentials},
		{name: "teams, unlabelled room Secret", p: teamsP(notifyv1.TeamsProvider{WebhookURLSecretRef: ref("unlabelled", "token")}), reason: ReasonSecretNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := (&Factory{Secrets: c, Settings: Settings{Egress: tc.policy}}).Build(t.Context(), tc.p)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Build: %v", err)
				}
				switch b.Sender.(type) {
				case *slack.Sender, *telegram.Sender, *teams.Sender:
				default:
					t.Fatalf("sender %T", b.Sender)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Reason != tc.reason || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Build error = %v, want %s saying %q", err, tc.reason, tc.says)
			}
			for _, s := range []string{"xoxb-1-2-abc", telegramToken, "sig=x"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q repeats a credential", err)
				}
			}
		})
	}
}

// TestTeamsRecipientRooms: a recipient's room is read from its Secret at
// send time, under the same rules; a refusal is the recipient's fault
// only.
func TestTeamsRecipientRooms(t *testing.T) {
	fakeTeams := providerfake.NewTeams()
	defer fakeTeams.Close()
	unlabelled := secret("unlabelled", map[string]string{"url": fakeTeams.WebhookURL("x")})
	unlabelled.Labels = nil
	c := fake.NewClientBuilder().WithObjects(
		secret("ops-room", map[string]string{"url": fakeTeams.WebhookURL("ops")}),
		secret("public-http", map[string]string{"url": "http://flows.example.com/workflows/1"}),
		unlabelled,
	).Build()
	b, err := (&Factory{Secrets: c, Settings: Settings{Egress: egress.MustNew([]string{"127.0.0.0/8"}, nil)}}).Build(t.Context(),
		chatProvider(notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelTeams, Teams: &notifyv1.TeamsProvider{}}))
	if err != nil {
		t.Fatal(err)
	}
	send := func(secretName string) error {
		_, err := b.Sender.Send(context.Background(), &channel.Message{Title: "t", Body: "b",
			Recipient: channel.Recipient{Name: "r", TeamsWebhook: &channel.SecretKey{Name: secretName, Key: "url"}}})
		return err
	}
	if err := send("ops-room"); err != nil {
		t.Fatalf("ops-room: %v", err)
	}
	if m := fakeTeams.Messages(); len(m) != 1 || m[0].To != "ops" {
		t.Fatalf("messages %+v", m)
	}
	for name, want := range map[string]string{
		"missing":     ReasonSecretNotFound,
		"unlabelled":  ReasonSecretNotAllowed,
		"public-http": ReasonInsecureCredentials,
	} {
		err := send(name)
		var ce *channel.Error
		if !errors.As(err, &ce) || ce.Code != want || !ce.RecipientFault() || ce.Retryable() {
			t.Errorf("%s: got %v, want a permanent recipient fault %s", name, err, want)
		}
	}
}

func TestChatSecretNames(t *testing.T) {
	for _, tc := range []struct {
		spec notifyv1.NotificationProviderSpec
		want []string
	}{
		{notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelSlack, Slack: &notifyv1.SlackProvider{BotTokenSecretRef: notifyv1.SecretKeyReference{Name: "s", Key: "k"}}}, []string{"s"}},
		{notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelTelegram, Telegram: &notifyv1.TelegramProvider{BotTokenSecretRef: notifyv1.SecretKeyReference{Name: "t", Key: "k"}}}, []string{"t"}},
		{notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelTeams, Teams: &notifyv1.TeamsProvider{}}, nil},
		{notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelTeams, Teams: &notifyv1.TeamsProvider{WebhookURLSecretRef: &notifyv1.SecretKeyReference{Name: "r", Key: "k"}}}, []string{"r"}},
	} {
		got := SecretNames(chatProvider(tc.spec))
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: %v, want %v", tc.spec.Channel, got, tc.want)
		}
	}
}
