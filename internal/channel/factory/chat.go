package factory

import (
	"context"
	"errors"
	"fmt"
	"strings"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/slack"
	"github.com/herald-dev/herald/internal/channel/teams"
	"github.com/herald-dev/herald/internal/channel/telegram"
)

// This file builds the chat channels' senders: Slack, Microsoft Teams and
// Telegram. Their credentials (bot tokens, Teams webhook URLs) come from
// Secrets like every other provider's, and only travel over TLS unless
// the egress allowlist names the host.

// inboxURL is the provider's own inbox address, or the controller's.
func (f *Factory) inboxURL(own string) string {
	if own != "" {
		return own
	}
	return f.InboxURL
}

// buildSlack builds a Slack sender from the bot token's Secret.
func (f *Factory) buildSlack(r *secretReader, s *notifyv1.SlackProvider) (channel.Sender, error) {
	base := strings.TrimSpace(s.BaseURL)
	if base != "" {
		if err := f.checkURL("spec.slack.baseURL", base); err != nil {
			return nil, err
		}
		if err := f.requireHTTPS("spec.slack.baseURL", base, "the Slack bot token (Authorization: Bearer)"); err != nil {
			return nil, err
		}
	}
	ref := s.BotTokenSecretRef
	data, err := r.read(ref.Name, ref.Key)
	if err != nil {
		return nil, err
	}
	return build(slack.New(slack.Config{
		BaseURL: base, Token: string(data[ref.Key]), DefaultChannel: s.DefaultChannel,
		InboxURL: f.inboxURL(s.InboxURL), HTTPClient: f.httpClient(),
	}))
}

// buildTelegram builds a Telegram sender from the bot token's Secret.
func (f *Factory) buildTelegram(r *secretReader, t *notifyv1.TelegramProvider) (channel.Sender, error) {
	base := strings.TrimSpace(t.BaseURL)
	if base != "" {
		if err := f.checkURL("spec.telegram.baseURL", base); err != nil {
			return nil, err
		}
		if err := f.requireHTTPS("spec.telegram.baseURL", base, "the Telegram bot token (in the request path)"); err != nil {
			return nil, err
		}
	}
	ref := t.BotTokenSecretRef
	data, err := r.read(ref.Name, ref.Key)
	if err != nil {
		return nil, err
	}
	return build(telegram.New(telegram.Config{BaseURL: base, Token: string(data[ref.Key]), HTTPClient: f.httpClient()}))
}

// buildTeams builds a Teams sender. The provider's default room, if any,
// is read now; recipients' rooms are read from their Secrets at each send,
// with the same checks.
func (f *Factory) buildTeams(r *secretReader, t *notifyv1.TeamsProvider) (channel.Sender, error) {
	cfg := teams.Config{InboxURL: f.inboxURL(t.InboxURL), HTTPClient: f.httpClient()}
	if ref := t.WebhookURLSecretRef; ref != nil {
		data, err := r.read(ref.Name, ref.Key)
		if err != nil {
			return nil, err
		}
		u := strings.TrimSpace(string(data[ref.Key]))
		if err := f.checkTeamsURL(fmt.Sprintf("the webhook URL in Secret %q", ref.Name), u); err != nil {
			return nil, err
		}
		cfg.DefaultWebhookURL = u
	}
	namespace, secrets := r.namespace, f.Secrets
	cfg.Webhook = func(ctx context.Context, ref channel.SecretKey) (string, error) {
		rr := &secretReader{ctx: ctx, client: secrets, namespace: namespace}
		data, err := rr.read(ref.Name, ref.Key)
		if err != nil {
			return "", recipientConfigError(err)
		}
		u := strings.TrimSpace(string(data[ref.Key]))
		if err := f.checkTeamsURL(fmt.Sprintf("the recipient's webhook URL in Secret %q", ref.Name), u); err != nil {
			return "", recipientConfigError(err)
		}
		return u, nil
	}
	return build(teams.New(cfg))
}

// checkTeamsURL checks a Teams webhook URL: a URL, a host the egress
// policy allows, and https unless the allowlist names the host.
func (f *Factory) checkTeamsURL(what, u string) error {
	if err := teams.CheckWebhookURL(u); err != nil {
		return invalid(fmt.Errorf("%s: %w", what, err))
	}
	if err := f.checkURL(what, u); err != nil {
		return err
	}
	return f.requireHTTPS("Workflows webhook URL", u, what+" (a credential)")
}

// recipientConfigError classifies a problem with a recipient's own Secret
// or URL: it ends that recipient's delivery and no other. A Secret that
// could not be read (the API server did not answer) is transient.
func recipientConfigError(err error) error {
	var ce *ConfigError
	if !errors.As(err, &ce) {
		return channel.NewTransient("secret", err)
	}
	if ce.Reason == ReasonDestinationNotAllowed {
		e := channel.NewDestinationNotAllowed(ce.Err)
		e.Scope = channel.ScopeRecipient
		return e
	}
	e := channel.NewPermanent(ce.Reason, ce.Err)
	e.Scope = channel.ScopeRecipient
	return e
}

// chatSecrets lists the Secrets the chat builders read.
func chatSecrets(spec *notifyv1.NotificationProviderSpec) []string {
	switch {
	case spec.Channel == notifyv1.ChannelSlack && spec.Slack != nil:
		return []string{spec.Slack.BotTokenSecretRef.Name}
	case spec.Channel == notifyv1.ChannelTelegram && spec.Telegram != nil:
		return []string{spec.Telegram.BotTokenSecretRef.Name}
	case spec.Channel == notifyv1.ChannelTeams && spec.Teams != nil && spec.Teams.WebhookURLSecretRef != nil:
		return []string{spec.Teams.WebhookURLSecretRef.Name}
	}
	return nil
}
