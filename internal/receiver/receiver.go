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
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/metrics"
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
