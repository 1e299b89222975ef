package factory

import (
	"errors"
	"strings"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/webhook"
)

// buildWebhook builds a webhook sender. signingSecretRef names the Secret
// and the key that holds the HMAC key; each of headersFrom names the
// Secret and key holding a header's value.
func (f *Factory) buildWebhook(r *secretReader, w *notifyv1.WebhookProvider) (channel.Sender, error) {
	if w.URL != "" {
		if err := f.checkURL("spec.webhook.url", w.URL); err != nil {
			return nil, err
		}
	}
	if len(w.HeadersFrom) > 0 {
		// Admission requires url too; objects stored past it may lack it.
		if w.URL == "" {
			return nil, invalid(errors.New("spec.webhook.headersFrom needs spec.webhook.url: header values from Secrets are never sent to recipients' webhookURLs"))
		}
		// The signing secret is no credential (an HMAC reveals nothing),
		// header values from Secrets are.
		if err := f.requireHTTPS("spec.webhook.url", strings.TrimSpace(w.URL), "the spec.webhook.headersFrom values"); err != nil {
			return nil, err
		}
	}
	cfg := webhook.Config{URL: w.URL, Headers: w.Headers, Client: f.httpClient()}
	if ref := w.SigningSecretRef; ref != nil {
		data, err := r.read(ref.Name, ref.Key)
		if err != nil {
			return nil, err
		}
		cfg.Secret = data[ref.Key]
	}
	for _, h := range w.HeadersFrom {
		data, err := r.read(h.SecretKeyRef.Name, h.SecretKeyRef.Key)
		if err != nil {
			return nil, err
		}
		if cfg.SecretHeaders == nil {
			cfg.SecretHeaders = map[string]string{}
		}
		cfg.SecretHeaders[h.Name] = string(data[h.SecretKeyRef.Key])
	}
	return build(webhook.New(cfg))
}

// webhookSecrets lists the Secrets buildWebhook reads, in its order. A
// Secret named twice is read twice and listed twice.
func webhookSecrets(w *notifyv1.WebhookProvider) []string {
	if w == nil {
		return nil
	}
	var names []string
	if w.SigningSecretRef != nil {
		names = append(names, w.SigningSecretRef.Name)
	}
	for _, h := range w.HeadersFrom {
		names = append(names, h.SecretKeyRef.Name)
	}
	return names
}
