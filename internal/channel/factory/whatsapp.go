package factory

import (
	"errors"
	"fmt"
	"strings"

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
	if err := f.whatsAppTLS(w, creds); err != nil {
		return nil, err
	}
	if err := checkReceipts(r, w, creds); err != nil {
		return nil, err
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

// whatsAppTLS refuses a provider that would send its credentials over
// plain HTTP: the Cloud API's Bearer token and Twilio's basic auth always
// travel with each request, WAHA's X-Api-Key when the Secret holds one. An
// empty baseURL is the API's own https endpoint.
func (f *Factory) whatsAppTLS(w *notifyv1.WhatsAppProvider, creds map[string][]byte) error {
	if w.BaseURL == "" {
		return nil
	}
	var what string
	switch w.API {
	case notifyv1.WhatsAppCloud:
		what = "the Cloud API access token (Authorization: Bearer)"
	case notifyv1.WhatsAppTwilio:
		what = "the Twilio credentials (HTTP basic auth)"
	case notifyv1.WhatsAppWAHA:
		if len(creds["apiKey"]) == 0 {
			return nil
		}
		what = "the WAHA API key (X-Api-Key)"
	default:
		return nil
	}
	return f.requireHTTPS("spec.whatsapp.baseURL", strings.TrimSpace(w.BaseURL), what)
}

// checkReceipts reads the Secrets `herald receiver` will verify this
// provider's status callbacks with, so that a missing or unlabelled one
// shows in the provider's Ready condition rather than only as callbacks
// the receiver refuses. Twilio signs callbacks with the account's auth
// token (key authToken, which a twilio provider's Secret always holds).
func checkReceipts(r *secretReader, w *notifyv1.WhatsAppProvider, creds map[string][]byte) error {
	rc := w.Receipts
	if rc == nil {
		return nil
	}
	switch w.API {
	case notifyv1.WhatsAppCloud:
		for _, ref := range []*notifyv1.SecretKeyReference{rc.AppSecretRef, rc.VerifyTokenRef} {
			if ref == nil {
				return invalid(errors.New("receipts for the cloud api need appSecretRef and verifyTokenRef"))
			}
			if _, err := r.read(ref.Name, ref.Key); err != nil {
				return err
			}
		}
	case notifyv1.WhatsAppTwilio:
		if len(creds["authToken"]) == 0 {
			return invalid(errors.New("receipts for the twilio api need key \"authToken\" in credentialsSecretRef: Twilio signs status callbacks with the account's auth token"))
		}
	default:
		return invalid(fmt.Errorf("receipts are not available for the %s api", w.API))
	}
	return nil
}

// whatsAppSecrets lists the Secrets buildWhatsApp reads.
func whatsAppSecrets(w *notifyv1.WhatsAppProvider) []string {
	if w == nil {
		return nil
	}
	var names []string
	if w.CredentialsSecretRef != nil {
		names = append(names, w.CredentialsSecretRef.Name)
	}
	if rc := w.Receipts; rc != nil {
		for _, ref := range []*notifyv1.SecretKeyReference{rc.AppSecretRef, rc.VerifyTokenRef} {
			if ref != nil {
				names = append(names, ref.Name)
			}
		}
	}
	return names
}
