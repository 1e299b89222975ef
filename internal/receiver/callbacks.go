package receiver

import (
	"context"
	"crypto/hmac"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel/whatsapp"
	"github.com/herald-dev/herald/internal/metrics"
	"github.com/herald-dev/herald/internal/receipt"
)

// metaHandshake answers the GET Meta sends when the callback URL is saved
// in the app dashboard, with the provider's verify token.
func (s *Server) metaHandshake(w http.ResponseWriter, r *http.Request, t target) {
	ctx := r.Context()
	p, err := s.provider(ctx, t, apiCloud)
	if err != nil {
		answer(w, apiCloud, http.StatusNotFound, outcomeNotEnabled, "no cloud provider with receipts here")
		return
	}
	ref := p.Spec.WhatsApp.Receipts.VerifyTokenRef
	if ref == nil {
		answer(w, apiCloud, http.StatusForbidden, outcomeHandshakeDeny, "no verify token configured")
		return
	}
	token, err := s.secret(ctx, t.namespace, ref.Name, ref.Key)
	if err != nil {
		log.FromContext(ctx).Info("receipts: verify token unavailable", "namespace", t.namespace, "provider", t.name, "error", err.Error())
		answer(w, apiCloud, http.StatusServiceUnavailable, outcomeUnavailable, "the provider's verify token cannot be read")
		return
	}
	q := r.URL.Query()
	challenge, ok := receipt.MetaHandshake(q.Get("hub.mode"), q.Get("hub.verify_token"), q.Get("hub.challenge"), token)
	if !ok {
		answer(w, apiCloud, http.StatusForbidden, outcomeHandshakeDeny, "verification refused")
		return
	}
	// The body is the challenge alone, nothing around it: Meta compares
	// it byte for byte.
	metrics.ReceiptRequests.WithLabelValues(apiCloud, outcomeHandshake).Inc()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = io.WriteString(w, challenge)
}

// metaCallback takes a Meta webhook POST: the body is verified against
// X-Hub-Signature-256 with the provider's app secret before it is read.
func (s *Server) metaCallback(w http.ResponseWriter, r *http.Request, t target) {
	ctx := r.Context()
	body, ok := readBody(w, r, apiCloud)
	if !ok {
		return
	}
	p, err := s.provider(ctx, t, apiCloud)
	if err != nil {
		answer(w, apiCloud, http.StatusNotFound, outcomeNotEnabled, "no cloud provider with receipts here")
		return
	}
	ref := p.Spec.WhatsApp.Receipts.AppSecretRef
	if ref == nil {
		answer(w, apiCloud, http.StatusServiceUnavailable, outcomeUnavailable, "no app secret configured")
		return
	}
	appSecret, err := s.secret(ctx, t.namespace, ref.Name, ref.Key)
	if err != nil {
		log.FromContext(ctx).Info("receipts: app secret unavailable", "namespace", t.namespace, "provider", t.name, "error", err.Error())
		answer(w, apiCloud, http.StatusServiceUnavailable, outcomeUnavailable, "the provider's app secret cannot be read")
		return
	}
	if err := receipt.VerifyMeta(body, r.Header.Get(receipt.MetaSignatureHeader), appSecret); err != nil {
		refuseSignature(w, apiCloud, err)
		return
	}
	parsed, err := receipt.ParseMeta(body)
	if err != nil {
		answer(w, apiCloud, http.StatusBadRequest, outcomeInvalid, "%v", err)
		return
	}
	// One Meta app has one callback URL for all its phone numbers, so a
	// webhook may carry statuses of other numbers: they belong to another
	// provider of this namespace with that phoneNumberID and the same app
	// secret (the signature proved it), or to no one here.
	owners := map[string]*notifyv1.NotificationProvider{p.Spec.WhatsApp.PhoneNumberID: p}
	statuses := make([]ownedStatus, 0, len(parsed))
	var foreign int
	for _, ms := range parsed {
		owner := p
		if ms.PhoneNumberID != "" {
			var known bool
			if owner, known = owners[ms.PhoneNumberID]; !known {
				owner = s.sameApp(ctx, p, appSecret, ms.PhoneNumberID)
				owners[ms.PhoneNumberID] = owner
			}
		}
		if owner == nil {
			foreign++
			metrics.Receipts.WithLabelValues(apiCloud, stateLabel(ms.State), resultUnknown).Inc()
			continue
		}
		statuses = append(statuses, ownedStatus{provider: owner, Status: ms.Status})
	}
	s.record(w, r, p.Namespace, apiCloud, statuses, foreign, whatsapp.CloudReceiptError)
}

// sameApp returns the cloud provider of p's namespace that sends from
// phoneNumberID, takes receipts and verifies them with the same app secret
// as p, or nil.
func (s *Server) sameApp(ctx context.Context, p *notifyv1.NotificationProvider, appSecret []byte, phoneNumberID string) *notifyv1.NotificationProvider {
	var list notifyv1.NotificationProviderList
	if err := s.Client.List(ctx, &list, client.InNamespace(p.Namespace)); err != nil {
		return nil
	}
	for i := range list.Items {
		q := &list.Items[i]
		w := q.Spec.WhatsApp
		if q.Spec.Channel != notifyv1.ChannelWhatsApp || w == nil || w.API != notifyv1.WhatsAppCloud || w.PhoneNumberID != phoneNumberID ||
			w.Receipts == nil || w.Receipts.AppSecretRef == nil {
			continue
		}
		secret, err := s.secret(ctx, q.Namespace, w.Receipts.AppSecretRef.Name, w.Receipts.AppSecretRef.Key)
		if err == nil && hmac.Equal(secret, appSecret) {
			return q
		}
	}
	return nil
}

// twilioCallback takes a Twilio status callback: the form is verified
// against X-Twilio-Signature with the account's auth token and the URL
// Twilio called.
func (s *Server) twilioCallback(w http.ResponseWriter, r *http.Request, t target) {
	ctx := r.Context()
	body, ok := readBody(w, r, apiTwilio)
	if !ok {
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		answer(w, apiTwilio, http.StatusUnsupportedMediaType, outcomeInvalid, "a status callback is a form POST")
		return
	}
	p, err := s.provider(ctx, t, apiTwilio)
	if err != nil {
		answer(w, apiTwilio, http.StatusNotFound, outcomeNotEnabled, "no twilio provider with receipts here")
		return
	}
	var authToken []byte
	if ref := p.Spec.WhatsApp.CredentialsSecretRef; ref != nil {
		authToken, err = s.secret(ctx, t.namespace, ref.Name, "authToken")
	} else {
		err = errors.New("no credentialsSecretRef")
	}
	if err != nil {
		log.FromContext(ctx).Info("receipts: Twilio auth token unavailable", "namespace", t.namespace, "provider", t.name, "error", err.Error())
		answer(w, apiTwilio, http.StatusServiceUnavailable, outcomeUnavailable, "the provider's auth token cannot be read")
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		answer(w, apiTwilio, http.StatusBadRequest, outcomeInvalid, "the body is not a form")
		return
	}
	if err := receipt.VerifyTwilio(s.requestURL(r), form, r.Header.Get(receipt.TwilioSignatureHeader), authToken); err != nil {
		refuseSignature(w, apiTwilio, err)
		return
	}
	ts, err := receipt.ParseTwilio(form)
	if err != nil {
		answer(w, apiTwilio, http.StatusBadRequest, outcomeInvalid, "%v", err)
		return
	}
	if ts.AccountSID != "" && ts.AccountSID != p.Spec.WhatsApp.AccountSID {
		metrics.Receipts.WithLabelValues(apiTwilio, stateLabel(ts.State), resultUnknown).Inc()
		s.record(w, r, p.Namespace, apiTwilio, nil, 1, whatsapp.TwilioReceiptError)
		return
	}
	s.record(w, r, p.Namespace, apiTwilio, []ownedStatus{{provider: p, Status: ts.Status}}, 0, whatsapp.TwilioReceiptError)
}

// requestURL is the URL the provider called, as it signed it.
func (s *Server) requestURL(r *http.Request) string {
	if s.Options.PublicURL != "" {
		return s.Options.PublicURL + r.URL.RequestURI()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}
