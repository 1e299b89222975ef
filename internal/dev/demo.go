package dev

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// DemoUsers are the Recipients `herald dev` creates in the demo namespace.
// Their usernames are the Kubernetes user names the inbox serves, so
// `kubectl get inboxitems --as alice` shows alice's inbox.
var DemoUsers = []notifyv1.RecipientSpec{
	{DisplayName: "Alice Example", Username: "alice", Email: "alice@example.com", Phone: "+4915112345671", Roles: []string{"sre", "approvers"}, Timezone: "Europe/Berlin",
		Slack: &notifyv1.SlackAddress{UserID: "U0ALICE001"}, Telegram: &notifyv1.TelegramAddress{ChatID: "100000001"}},
	{DisplayName: "Bob Example", Username: "bob", Email: "bob@example.com", Phone: "+4915112345672", Roles: []string{"sre"}, Timezone: "Europe/London",
		Slack: &notifyv1.SlackAddress{UserID: "U0BOB00001"}, Telegram: &notifyv1.TelegramAddress{ChatID: "100000002"}},
	{DisplayName: "Carol Example", Username: "carol", Email: "carol@example.com", Phone: "+4915112345673", Roles: []string{"approvers"}, Timezone: "America/New_York",
		Slack: &notifyv1.SlackAddress{UserID: "U0CAROL001"}, Telegram: &notifyv1.TelegramAddress{ChatID: "100000003"}},
}

// Credentials of the demo chat providers: the chat sinks expect them, and
// the demo Secrets hold them. They open nothing but the local sinks.
const (
	demoSlackToken    = "xoxb-0000000000-0000000000000-herald-dev-sink"
	demoTelegramToken = "7000000000:AAHeraldDevSinkTokenNotARealBot00"
	// DemoTeamsRoom is the room of the demo Teams provider's webhook.
	DemoTeamsRoom = "herald-dev"
)

// Names of the demo providers, each the default of its channel.
const (
	ProviderEmail    = "mailpit"
	ProviderWhatsApp = "whatsapp-sink"
	ProviderWebhook  = "webhook-sink"
	ProviderSlack    = "slack-sink"
	ProviderTeams    = "teams-sink"
	ProviderTelegram = "telegram-sink"
)

// createDemo creates the demo namespace, its Recipients (only when missing:
// edits survive a restart) and one default provider per channel pointing at
// the local sinks (always updated to the current ports).
func (e *Env) createDemo(ctx context.Context) error {
	c := e.Client
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.Namespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", e.Namespace, err)
	}
	for _, spec := range DemoUsers {
		r := &notifyv1.Recipient{
			ObjectMeta: metav1.ObjectMeta{Name: spec.Username, Namespace: e.Namespace, Labels: map[string]string{"herald.dev/demo": "true"}},
			Spec:       spec,
		}
		r.Spec.Roles = append([]string(nil), spec.Roles...)
		if err := c.Create(ctx, r); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating recipient %s: %w", spec.Username, err)
		}
	}
	host := func(port int) string { return net.JoinHostPort(loopback, strconv.Itoa(port)) }
	providers := map[string]notifyv1.NotificationProviderSpec{
		ProviderEmail: {Channel: notifyv1.ChannelEmail, Default: true, SMTP: &notifyv1.SMTPProvider{
			Host: loopback, Port: int32(e.Ports.MailpitSMTP), TLS: notifyv1.SMTPTLSNone, From: "Herald Dev <herald@herald-dev.localhost>",
		}},
		ProviderWhatsApp: {Channel: notifyv1.ChannelWhatsApp, Default: true, WhatsApp: &notifyv1.WhatsAppProvider{
			API: notifyv1.WhatsAppWAHA, BaseURL: "http://" + host(e.Ports.WhatsApp), Session: "default",
		}},
		ProviderWebhook: {Channel: notifyv1.ChannelWebhook, Default: true, Webhook: &notifyv1.WebhookProvider{
			URL: "http://" + host(e.Ports.Webhook) + "/hook", Headers: map[string]string{"X-Herald-Env": "dev"},
		}},
	}
	// The chat providers read their credentials from Secrets, as real
	// ones do.
	secrets := map[string]map[string]string{
		ProviderSlack:    {"token": demoSlackToken},
		ProviderTelegram: {"token": demoTelegramToken},
		ProviderTeams:    {"url": e.Teams.WebhookURL(DemoTeamsRoom)},
	}
	for name, data := range secrets {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.Namespace}}
		if _, err := controllerutil.CreateOrUpdate(ctx, c, sec, func() error {
			sec.Labels = map[string]string{"herald.dev/demo": "true", notifyv1.LabelProviderSecret: "true"}
			sec.StringData = data
			return nil
		}); err != nil {
			return fmt.Errorf("applying Secret %s: %w", name, err)
		}
	}
	inbox := e.WebURL() + "/"
	providers[ProviderSlack] = notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelSlack, Default: true, Slack: &notifyv1.SlackProvider{
		BotTokenSecretRef: notifyv1.SecretKeyReference{Name: ProviderSlack, Key: "token"}, BaseURL: e.SlackURL(), InboxURL: inbox,
	}}
	providers[ProviderTeams] = notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelTeams, Default: true, Teams: &notifyv1.TeamsProvider{
		WebhookURLSecretRef: &notifyv1.SecretKeyReference{Name: ProviderTeams, Key: "url"}, InboxURL: inbox,
	}}
	providers[ProviderTelegram] = notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelTelegram, Default: true, Telegram: &notifyv1.TelegramProvider{
		BotTokenSecretRef: notifyv1.SecretKeyReference{Name: ProviderTelegram, Key: "token"}, BaseURL: e.TelegramURL(),
	}}
	for name, spec := range providers {
		p := &notifyv1.NotificationProvider{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.Namespace}}
		if _, err := controllerutil.CreateOrUpdate(ctx, c, p, func() error {
			if p.Labels == nil {
				p.Labels = map[string]string{}
			}
			p.Labels["herald.dev/demo"] = "true"
			p.Spec = spec
			return nil
		}); err != nil {
			return fmt.Errorf("applying provider %s: %w", name, err)
		}
	}
	return nil
}

// demoUsernames lists the Recipients with a username in the demo
// namespace: the users the inbox page may act as.
func (e *Env) demoUsernames(ctx context.Context) ([]recipientView, error) {
	var list notifyv1.RecipientList
	reader := e.cached // the controllers' cache: no API call per request
	if reader == nil {
		reader = e.Client
	}
	if err := reader.List(ctx, &list, client.InNamespace(e.Namespace)); err != nil {
		return nil, err
	}
	var out []recipientView
	for _, r := range list.Items {
		if r.Spec.Username != "" {
			out = append(out, recipientView{Username: r.Spec.Username, DisplayName: r.Spec.DisplayName, Roles: r.Spec.Roles})
		}
	}
	slices.SortFunc(out, func(a, b recipientView) int { return strings.Compare(a.Username, b.Username) })
	return out, nil
}
