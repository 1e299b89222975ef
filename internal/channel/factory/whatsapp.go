package factory

import (
	"fmt"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/whatsapp"
)

// credentialKey is the key of credentialsSecretRef each WhatsApp API
// requires; WAHA requires none (its apiKey is optional).
var credentialKey = map[notifyv1.WhatsAppAPI]string{
	notifyv1.WhatsAppCloud:  "token",
	notifyv1.WhatsAppTwilio: "authToken",
	notifyv1.WhatsAppWAHA:   "",
}

// buildWhatsApp builds the sender of the provider's WhatsApp API. The
// credentials Secret holds token (cloud); authToken, or apiKeySID and
// apiKeySecret (twilio); apiKey (waha, optional).
func (f *Factory) buildWhatsApp(r *secretReader, w *notifyv1.WhatsAppProvider) (channel.Sender, error) {
	if w.BaseURL != "" {
		if err := f.checkURL("spec.whatsapp.baseURL", w.BaseURL); err != nil {
			return nil, err
		}
	}
	client := f.httpClient()
	key := credentialKey[w.API]
	creds := map[string][]byte{}
	if ref := w.CredentialsSecretRef; ref != nil {
		var required []string
		if key != "" {
			required = append(required, key)
		}
		data, err := r.read(ref.Name, required...)
		if err != nil {
			return nil, err
		}
		creds = data
	} else if key != "" {
		return nil, invalid(fmt.Errorf("the %s api needs credentialsSecretRef with key %q", w.API, key))
	}
	switch w.API {
	case notifyv1.WhatsAppCloud:
		return build(whatsapp.NewCloud(whatsapp.CloudConfig{
			BaseURL: w.BaseURL, APIVersion: w.APIVersion, PhoneNumberID: w.PhoneNumberID,
			AccessToken: string(creds["token"]), DefaultRegion: w.DefaultRegion, HTTPClient: client,
		}))
	case notifyv1.WhatsAppTwilio:
		return build(whatsapp.NewTwilio(whatsapp.TwilioConfig{
			BaseURL: w.BaseURL, AccountSID: w.AccountSID, AuthToken: string(creds["authToken"]),
			APIKeySID: string(creds["apiKeySID"]), APIKeySecret: string(creds["apiKeySecret"]),
			From: w.From, DefaultRegion: w.DefaultRegion, HTTPClient: client,
		}))
	case notifyv1.WhatsAppWAHA:
		return build(whatsapp.NewWAHA(whatsapp.WAHAConfig{
			BaseURL: w.BaseURL, APIKey: string(creds["apiKey"]), Session: w.Session, DefaultRegion: w.DefaultRegion, HTTPClient: client,
		}))
	}
	return nil, invalid(fmt.Errorf("unknown whatsapp api %q", w.API))
}

// whatsAppSecrets lists the Secrets buildWhatsApp reads.
func whatsAppSecrets(w *notifyv1.WhatsAppProvider) []string {
	if w == nil || w.CredentialsSecretRef == nil {
		return nil
	}
	return []string{w.CredentialsSecretRef.Name}
}
