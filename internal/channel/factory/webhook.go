package factory

import (
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/webhook"
)

// buildWebhook builds a webhook sender. signingSecretRef names the Secret
// and the key that holds the HMAC key.
func (f *Factory) buildWebhook(r *secretReader, w *notifyv1.WebhookProvider) (channel.Sender, error) {
	if w.URL != "" {
		if err := f.checkURL("spec.webhook.url", w.URL); err != nil {
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
	return build(webhook.New(cfg))
}

// webhookSecrets lists the Secrets buildWebhook reads.
func webhookSecrets(w *notifyv1.WebhookProvider) []string {
	if w == nil || w.SigningSecretRef == nil {
		return nil
	}
	return []string{w.SigningSecretRef.Name}
}
