// Package receiver is `herald receiver`: an HTTP endpoint for the status
// callbacks WhatsApp providers send after a message was accepted. It
// verifies each callback with the secret of the NotificationProvider its
// URL names, finds the ChannelDelivery by the provider message ID and
// records status.receipt; a reported failure turns the delivery Failed.
//
//	GET  /receipts/meta/<namespace>/<provider>    Meta's subscription handshake
//	POST /receipts/meta/<namespace>/<provider>    Meta webhook (X-Hub-Signature-256)
//	POST /receipts/twilio/<namespace>/<provider>  Twilio status callback (X-Twilio-Signature)
//
// The parsing, signatures and state rules are the pure package
// internal/receipt; this package is the HTTP and Kubernetes side. It is a
// production code path and imports nothing dev-only.
package receiver

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/whatsapp"
	"github.com/herald-dev/herald/internal/metrics"
	"github.com/herald-dev/herald/internal/patch"
	"github.com/herald-dev/herald/internal/receipt"
)

// MessageIDIndex indexes the receiver's cached WhatsApp deliveries by
// status.providerMessageID, so a callback finds its delivery with one
// index lookup in its namespace, not a list of every delivery.
//
// An index in the receiver's cache, rather than a label with a hash of the
// message ID: a label would cost the delivery controller a second write
// (metadata, not status) for every WhatsApp message it sends, whether or
// not anyone has receipts configured, while the index costs only memory in
// the receiver, which caches WhatsApp deliveries alone and without their
// rendered content (CacheOptions).
const MessageIDIndex = "status.providerMessageID"

// CacheOptions is what the receiver's cache holds: WhatsApp deliveries
// without their content, NotificationProviders, and only the Secrets that
// opted in to provider use.
func CacheOptions() cache.Options {
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&notifyv1.ChannelDelivery{}: {
				Label:     labels.SelectorFromSet(labels.Set{notifyv1.LabelChannel: string(notifyv1.ChannelWhatsApp)}),
				Transform: trimDelivery,
			},
			&corev1.Secret{}: {
				Label: labels.SelectorFromSet(labels.Set{notifyv1.LabelProviderSecret: "true"}),
			},
		},
	}
}

// trimDelivery drops what the receiver never reads: the rendered content
// (most of a delivery) and managed fields.
func trimDelivery(obj any) (any, error) {
	if d, ok := obj.(*notifyv1.ChannelDelivery); ok {
		d.Spec.Content = notifyv1.RenderedContent{}
		d.ManagedFields = nil
	}
	return obj, nil
}

// Setup adds the receiver to mgr: the message ID index and the HTTP
// server, which every replica runs (no leader election: receipts are
// written with the optimistic lock, so replicas never overwrite each
// other).
func Setup(mgr ctrl.Manager, opts Options) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &notifyv1.ChannelDelivery{}, MessageIDIndex,
		func(o client.Object) []string {
			if id := o.(*notifyv1.ChannelDelivery).Status.ProviderMessageID; id != "" {
				return []string{id}
			}
			return nil
		}); err != nil {
		return nil, fmt.Errorf("indexing deliveries by provider message ID: %w", err)
	}
	s := &Server{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Scheme:    mgr.GetScheme(),
		Recorder:  mgr.GetEventRecorder("herald-receiver"),
		Clock:     clock.RealClock{},
		Options:   opts,
	}
	if err := mgr.Add(s); err != nil {
		return nil, err
	}
	return s, nil
}

// Server serves the receipts endpoint.
type Server struct {
	// Client reads from the cache and writes status.
	Client client.Client
	// APIReader re-reads a delivery whose status write conflicted.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	Options   Options
	// Listener, when set, is served instead of listening on
	// Options.BindAddress (tests).
	Listener net.Listener

	once     sync.Once
	inFlight chan struct{}
	limits   *namespaceLimits
}

// NeedLeaderElection is false: every replica serves callbacks.
func (s *Server) NeedLeaderElection() bool { return false }

// Start serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	l := s.Listener
	if l == nil {
		var err error
		if l, err = net.Listen("tcp", s.Options.BindAddress); err != nil {
			return fmt.Errorf("receiver: %w", err)
		}
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    16 << 10,
		// Requests are not cancelled with ctx: Shutdown lets the ones in
		// flight finish their writes.
		BaseContext: func(net.Listener) context.Context { return log.IntoContext(context.Background(), log.FromContext(ctx)) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	log.FromContext(ctx).WithName("receiver").Info("serving receipts", "address", l.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

func (s *Server) init() {
	s.once.Do(func() {
		if s.Clock == nil {
			s.Clock = clock.RealClock{}
		}
		s.inFlight = make(chan struct{}, max(1, s.Options.MaxInFlight))
		s.limits = newNamespaceLimits(rate.Limit(s.Options.NamespaceRate), s.Options.NamespaceBurst)
	})
}

// Handler is the receipts endpoint.
func (s *Server) Handler() http.Handler {
	s.init()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /receipts/meta/{namespace}/{provider}", s.bounded(apiCloud, s.metaHandshake))
	mux.HandleFunc("POST /receipts/meta/{namespace}/{provider}", s.bounded(apiCloud, s.metaCallback))
	mux.HandleFunc("POST /receipts/twilio/{namespace}/{provider}", s.bounded(apiTwilio, s.twilioCallback))
	return mux
}

const (
	apiCloud  = string(notifyv1.WhatsAppCloud)
	apiTwilio = string(notifyv1.WhatsAppTwilio)
)

// Request outcomes, the label of herald_receipt_requests_total.
const (
	outcomeRecorded      = "recorded"
	outcomeIgnored       = "ignored"
	outcomeReplayed      = "replayed"
	outcomeUnknown       = "unknown_message"
	outcomeUnsigned      = "unsigned"
	outcomeBadSignature  = "bad_signature"
	outcomeRateLimited   = "rate_limited"
	outcomeInvalid       = "invalid"
	outcomeNotEnabled    = "not_enabled"
	outcomeUnavailable   = "secret_unavailable"
	outcomeTooLarge      = "too_large"
	outcomeBusy          = "busy"
	outcomeError         = "error"
	outcomeHandshake     = "handshake"
	outcomeHandshakeDeny = "handshake_refused"
)

// answer ends a request with a status code and a short plain-text reason,
// and counts it.
func answer(w http.ResponseWriter, api string, code int, outcome, format string, args ...any) {
	metrics.ReceiptRequests.WithLabelValues(api, outcome).Inc()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintf(w, format+"\n", args...)
}

// target is the provider a callback's URL names.
type target struct {
	namespace, name string
}

// bounded runs h with a slot of the in-flight limit and a bounded body,
// for a URL whose namespace and provider are well-formed names.
func (s *Server) bounded(api string, h func(http.ResponseWriter, *http.Request, target)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.inFlight <- struct{}{}:
			defer func() { <-s.inFlight }()
		default:
			w.Header().Set("Retry-After", "1")
			answer(w, api, http.StatusServiceUnavailable, outcomeBusy, "too many callbacks at once; retry")
			return
		}
		t := target{namespace: r.PathValue("namespace"), name: r.PathValue("provider")}
		if len(validation.IsDNS1123Label(t.namespace)) > 0 || len(validation.IsDNS1123Subdomain(t.name)) > 0 {
			answer(w, api, http.StatusNotFound, outcomeNotEnabled, "no such provider")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.Options.MaxBodyBytes)
		h(w, r, t)
	}
}

// provider returns the WhatsApp provider the URL names when it speaks api
// and opted in to receipts.
func (s *Server) provider(ctx context.Context, t target, api string) (*notifyv1.NotificationProvider, error) {
	var p notifyv1.NotificationProvider
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: t.namespace, Name: t.name}, &p); err != nil {
		return nil, err
	}
	w := p.Spec.WhatsApp
	if p.Spec.Channel != notifyv1.ChannelWhatsApp || w == nil || string(w.API) != api || w.Receipts == nil {
		return nil, apierrors.NewNotFound(notifyv1.GroupVersion.WithResource("notificationproviders").GroupResource(), t.name)
	}
	return &p, nil
}

// secret reads one key of an opted-in Secret of the namespace. The cache
// holds only Secrets labelled notify.herald.dev/provider-secret: "true",
// so any other Secret is not found.
func (s *Server) secret(ctx context.Context, namespace, name, key string) ([]byte, error) {
	var sec corev1.Secret
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &sec); err != nil {
		return nil, fmt.Errorf("Secret %s (labelled %s=true): %w", name, notifyv1.LabelProviderSecret, err)
	}
	if sec.Type == corev1.SecretTypeServiceAccountToken || sec.Labels[notifyv1.LabelProviderSecret] != "true" {
		return nil, fmt.Errorf("Secret %s may not be used by providers", name)
	}
	v := sec.Data[key]
	if len(v) == 0 {
		return nil, fmt.Errorf("Secret %s has no key %q", name, key)
	}
	return v, nil
}

// readBody reads the bounded body, answering 413 when it is too large.
func readBody(w http.ResponseWriter, r *http.Request, api string) ([]byte, bool) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			answer(w, api, http.StatusRequestEntityTooLarge, outcomeTooLarge, "body larger than %d bytes", tooLarge.Limit)
		} else {
			answer(w, api, http.StatusBadRequest, outcomeInvalid, "reading body failed")
		}
		return nil, false
	}
	return body, true
}

// refuseSignature answers a callback whose signature failed: 401 when
// there was none, 403 when it does not match.
func refuseSignature(w http.ResponseWriter, api string, err error) {
	if errors.Is(err, receipt.ErrUnsigned) {
		answer(w, api, http.StatusUnauthorized, outcomeUnsigned, "the callback is not signed")
		return
	}
	answer(w, api, http.StatusForbidden, outcomeBadSignature, "the signature does not match")
}

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

// ownedStatus is a verified status with the provider whose deliveries it
// may concern.
type ownedStatus struct {
	provider *notifyv1.NotificationProvider
	receipt.Status
}

// Results of one status, the label of herald_receipts_total.
const (
	resultRecorded = "recorded"
	resultReplayed = "replayed"
	resultStale    = "stale"
	resultUnknown  = "unknown_message"
	resultTooOld   = "outside_window"
	resultIgnored  = "ignored"
	resultError    = "error"
)

func stateLabel(s notifyv1.ReceiptState) string {
	if s == "" {
		return "other"
	}
	return string(s)
}

// record applies the verified statuses of one callback (foreign more
// matched no message of this provider) and answers:
//
//	200 when any status was recorded, ignored (a state Herald does not
//	    record) or stale (behind the recorded one), or there was none;
//	503 when a write failed, so the provider sends it again;
//	409 when every status was a replay of what is recorded, or lay outside
//	    the time window;
//	404 when no status matched a delivery of this provider;
//	429 when the namespace is over its rate.
func (s *Server) record(w http.ResponseWriter, r *http.Request, namespace, api string,
	statuses []ownedStatus, foreign int, classify func(int) *channel.Error) {
	ctx := r.Context()
	now := s.Clock.Now()
	var cost int
	for _, st := range statuses {
		if st.State != "" {
			cost++
		}
	}
	if cost > 0 && !s.limits.allow(namespace, cost, now) {
		w.Header().Set("Retry-After", "1")
		answer(w, api, http.StatusTooManyRequests, outcomeRateLimited, "namespace %s is over its receipt rate; retry", namespace)
		return
	}
	counts := map[string]int{resultUnknown: foreign}
	for _, st := range statuses {
		res := resultIgnored
		if st.State != "" {
			res = s.apply(ctx, st.provider, api, st.Status, classify, now)
		}
		counts[res]++
		metrics.Receipts.WithLabelValues(api, stateLabel(st.State), res).Inc()
	}
	switch {
	case counts[resultError] > 0:
		w.Header().Set("Retry-After", "5")
		answer(w, api, http.StatusServiceUnavailable, outcomeError, "a receipt could not be written; retry")
	case counts[resultRecorded] > 0:
		answer(w, api, http.StatusOK, outcomeRecorded, "recorded %d", counts[resultRecorded])
	case counts[resultStale]+counts[resultIgnored] > 0 || len(statuses)+foreign == 0:
		answer(w, api, http.StatusOK, outcomeIgnored, "nothing to record")
	case counts[resultReplayed]+counts[resultTooOld] > 0:
		answer(w, api, http.StatusConflict, outcomeReplayed, "already recorded, or outside the accepted time window")
	default:
		answer(w, api, http.StatusNotFound, outcomeUnknown, "no delivery of this provider sent that message")
	}
}

// apply records one status on the delivery that sent its message.
func (s *Server) apply(ctx context.Context, p *notifyv1.NotificationProvider, api string, st receipt.Status,
	classify func(int) *channel.Error, now time.Time) string {
	logger := log.FromContext(ctx).WithValues("namespace", p.Namespace, "provider", p.Name, "message", st.MessageID, "state", st.State)
	d, err := s.find(ctx, p, st.MessageID)
	if err != nil {
		logger.Error(err, "receipts: looking up the delivery")
		return resultError
	}
	if d == nil {
		return resultUnknown
	}
	if !st.Time.IsZero() && !s.inWindow(d, st.Time, now) {
		return resultTooOld
	}
	var failure *channel.Error
	if st.State == notifyv1.ReceiptFailed {
		failure = classify(st.Code)
	}
	verdict := receipt.Stale
	err = retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		verdict = receipt.Decide(d.Status.Phase, d.Status.Receipt, st.State)
		if verdict != receipt.Apply {
			return nil
		}
		next := d.DeepCopy()
		h := patch.NewHelper(next, s.Client, patch.ReceiverFieldOwner)
		receipt.Record(&next.Status, st, failure, now)
		_, err := h.Patch(ctx, next, patch.WithOptimisticLock())
		if apierrors.IsConflict(err) {
			fresh := &notifyv1.ChannelDelivery{}
			if gerr := s.APIReader.Get(ctx, client.ObjectKeyFromObject(d), fresh); gerr != nil {
				return gerr
			}
			if fresh.Status.ProviderMessageID != st.MessageID {
				verdict = receipt.Stale
				return nil
			}
			d = fresh
			return err
		}
		if err == nil {
			d = next
		}
		return err
	})
	switch {
	case err != nil:
		logger.Error(err, "receipts: writing the receipt")
		return resultError
	case verdict == receipt.Replay:
		return resultReplayed
	case verdict == receipt.Stale:
		return resultStale
	}
	if failure != nil {
		s.announceFailure(d, failure)
	}
	logger.V(1).Info("receipt recorded")
	return resultRecorded
}

// find returns the delivery of provider p whose providerMessageID is id,
// or nil.
func (s *Server) find(ctx context.Context, p *notifyv1.NotificationProvider, id string) (*notifyv1.ChannelDelivery, error) {
	var list notifyv1.ChannelDeliveryList
	if err := s.Client.List(ctx, &list, client.InNamespace(p.Namespace), client.MatchingFields{MessageIDIndex: id}); err != nil {
		return nil, err
	}
	for i := range list.Items {
		d := &list.Items[i]
		if d.Spec.Channel == notifyv1.ChannelWhatsApp && d.Status.Provider == p.Name && d.Status.ProviderMessageID == id {
			return d, nil
		}
	}
	return nil, nil
}

// inWindow reports whether a status time is believable: not older than
// MaxAge, not in the future, and not before the attempt that sent the
// message started (beyond the clock skew). A captured callback replayed
// later fails the first check.
func (s *Server) inWindow(d *notifyv1.ChannelDelivery, at, now time.Time) bool {
	skew := s.Options.ClockSkew
	if now.Sub(at) > s.Options.MaxAge || at.Sub(now) > skew {
		return false
	}
	for i := len(d.Status.History) - 1; i >= 0; i-- {
		if h := d.Status.History[i]; h.Outcome == "Succeeded" {
			return !at.Before(h.StartTime.Add(-skew))
		}
	}
	return true
}

// announceFailure emits the Warning Events of a delivery a receipt failed:
// on the delivery, and on its Notification, whose counts the notification
// controller then recomputes.
func (s *Server) announceFailure(d *notifyv1.ChannelDelivery, failure *channel.Error) {
	s.Recorder.Eventf(d, nil, corev1.EventTypeWarning, notifyv1.ReasonReceiptFailed, "Receipt",
		"the provider accepted the message, then reported it failed (%s): %s", receipt.FailedReason(failure), failure.Error())
	if owner := metav1.GetControllerOf(d); owner != nil && owner.Kind == "Notification" {
		n := &notifyv1.Notification{ObjectMeta: metav1.ObjectMeta{Name: owner.Name, Namespace: d.Namespace, UID: owner.UID}}
		s.Recorder.Eventf(n, nil, corev1.EventTypeWarning, notifyv1.ReasonReceiptFailed, "Receipt",
			"delivery %s to %q failed after the provider accepted it (%s, %s)", d.Name, d.Spec.Recipient.Name, receipt.FailedReason(failure), failure.Code)
	}
}

// namespaceLimits holds one token bucket per namespace that recorded
// receipts. Buckets are created only after a callback's signature was
// verified, so only tenants with a working receipts Secret add entries;
// full buckets (idle namespaces) are dropped when the map grows.
type namespaceLimits struct {
	mu      sync.Mutex
	limit   rate.Limit
	burst   int
	buckets map[string]*rate.Limiter
}

const maxNamespaceBuckets = 4096

func newNamespaceLimits(limit rate.Limit, burst int) *namespaceLimits {
	return &namespaceLimits{limit: limit, burst: burst, buckets: map[string]*rate.Limiter{}}
}

func (l *namespaceLimits) allow(namespace string, n int, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[namespace]
	if b == nil {
		if len(l.buckets) >= maxNamespaceBuckets {
			for ns, other := range l.buckets {
				if other.TokensAt(now) >= float64(l.burst) {
					delete(l.buckets, ns)
				}
			}
		}
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[namespace] = b
	}
	return b.AllowN(now, min(n, l.burst))
}
