package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/email"
	"github.com/herald-dev/herald/internal/channel/webhook"
	"github.com/herald-dev/herald/internal/channel/whatsapp"
	"github.com/herald-dev/herald/internal/provider"
)

// Provider Ready reasons.
const (
	ReasonProviderReady   = "Ready"
	ReasonSecretNotFound  = "SecretNotFound"
	ReasonSecretKeyAbsent = "SecretKeyMissing"
	ReasonInvalidConfig   = "InvalidConfig"
	ReasonSuspended       = "Suspended"
	ReasonDuplicateDef    = "DuplicateDefault"
)

// providerSecretIndex indexes NotificationProviders by the Secrets they
// reference, so that a Secret change re-validates exactly its providers.
const providerSecretIndex = "spec.secretNames"

// providerResync re-reads Secrets now and then, in case a change was missed.
const providerResync = 10 * time.Minute

// ProviderReconciler validates NotificationProviders, resolves their Secret
// references and keeps a ready-to-use sender for each in the Registry.
type ProviderReconciler struct {
	client.Client
	// SecretReader reads Secrets directly from the API server: Herald
	// caches only Secret metadata (to notice changes), never their data.
	SecretReader client.Reader
	Registry     *provider.Registry
	Recorder     events.EventRecorder
	// Trips delivers a request whenever a delivery opens a provider's
	// circuit, so its Ready condition reports it.
	Trips chan event.TypedGenericEvent[*notifyv1.NotificationProvider]
}

// ReasonProviderRejected is the Ready reason while a provider's circuit is
// open after it rejected a delivery for a provider reason.
const ReasonProviderRejected = "DeliveriesRejected"

// +kubebuilder:rbac:groups=notify.herald.dev,resources=notificationproviders,verbs=get;list;watch
// +kubebuilder:rbac:groups=notify.herald.dev,resources=notificationproviders/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch

func (r *ProviderReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var p notifyv1.NotificationProvider
	if err := r.Get(ctx, req.NamespacedName, &p); err != nil {
		if apierrors.IsNotFound(err) {
			r.Registry.Delete(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	before := p.Status.DeepCopy()

	b := r.build(ctx, &p)
	entry := &provider.Entry{
		Fingerprint: b.fingerprint,
		Name:        p.Name,
		Namespace:   p.Namespace,
		Channel:     p.Spec.Channel,
		Default:     p.Spec.Default,
		Suspended:   p.Spec.Suspend,
		Fallback:    p.Spec.Fallback,
		Pacer:       r.pacer(req.NamespacedName, p.Spec.RateLimit),
	}
	cond := metav1.Condition{Type: notifyv1.ConditionReady, Status: metav1.ConditionTrue, ObservedGeneration: p.Generation}
	if b.err != nil {
		entry.Reason, entry.Message = b.reason, b.err.Error()
		cond.Status = metav1.ConditionFalse
	} else {
		entry.Ready, entry.Sender = true, b.sender
		entry.Reason, entry.Message = ReasonProviderReady, fmt.Sprintf("%s provider is configured", p.Spec.Channel)
		if p.Spec.Suspend {
			entry.Reason, entry.Message = ReasonSuspended, "deliveries wait while the provider is suspended"
		}
	}
	cond.Reason, cond.Message = entry.Reason, entry.Message
	r.Registry.Set(entry)

	requeue := providerResync
	now := time.Now()
	if tripped, why := entry.Tripped(now); entry.Ready && tripped {
		until := entry.TrippedUntil()
		cond.Status, cond.Reason = metav1.ConditionFalse, ReasonProviderRejected
		cond.Message = fmt.Sprintf("%s; skipped until %s unless the provider or its Secret changes", why, until.UTC().Format(time.RFC3339))
		requeue = until.Sub(now) + time.Second
	}
	if p.Spec.Default {
		if defs := r.Registry.Defaults(p.Namespace, entry.Channel); len(defs) > 1 && defs[0].Name != p.Name {
			cond.Message += fmt.Sprintf("; warning: %s is also a default %s provider and is used instead", defs[0].Name, p.Spec.Channel)
		}
	}
	meta.SetStatusCondition(&p.Status.Conditions, cond)
	p.Status.ObservedGeneration = p.Generation
	if !equality.Semantic.DeepEqual(before, &p.Status) {
		if err := r.Status().Update(ctx, &p); err != nil {
			if apierrors.IsConflict(err) {
				return ctrl.Result{Requeue: true}, nil
			}
			return ctrl.Result{}, fmt.Errorf("updating provider status: %w", err)
		}
		if cond.Status == metav1.ConditionFalse {
			r.Recorder.Eventf(&p, nil, "Warning", cond.Reason, "Validate", "%s", cond.Message)
		}
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// pacer keeps a provider's rate limiter across reconciles when the limit is
// unchanged, so re-validation does not hand out a fresh burst.
func (r *ProviderReconciler) pacer(key types.NamespacedName, rl *notifyv1.RateLimit) *provider.Pacer {
	if rl == nil {
		return nil
	}
	per := rl.Per.Duration
	if per <= 0 {
		per = time.Second
	}
	limit := rate.Limit(float64(rl.Requests) / per.Seconds())
	burst := int(rl.Burst)
	if burst == 0 {
		burst = int(rl.Requests)
	}
	if old, ok := r.Registry.Get(key); ok && old.Pacer != nil && old.Pacer.Limit == limit && old.Pacer.Burst == burst {
		return old.Pacer
	}
	return provider.NewPacer(limit, burst)
}

// configError is a provider problem with the Ready reason it maps to.
type configError struct {
	reason string
	err    error
}

func (e *configError) Error() string { return e.err.Error() }

// built is the outcome of building a provider's sender.
type built struct {
	sender channel.Sender
	// fingerprint identifies the configuration: the provider's generation
	// and the resourceVersions of the Secrets it read.
	fingerprint string
	reason      string
	err         error
}

func (r *ProviderReconciler) build(ctx context.Context, p *notifyv1.NotificationProvider) built {
	versions := []string{fmt.Sprint(p.Generation)}
	ctx = context.WithValue(ctx, secretVersionsKey{}, &versions)
	s, err := r.buildSender(ctx, p)
	b := built{sender: s, fingerprint: strings.Join(versions, "/")}
	if err == nil {
		return b
	}
	var ce *configError
	if errors.As(err, &ce) {
		b.reason, b.err = ce.reason, ce.err
		return b
	}
	b.reason, b.err = ReasonInvalidConfig, err
	return b
}

// secretVersionsKey collects the resourceVersions of Secrets read while
// building one provider.
type secretVersionsKey struct{}

func (r *ProviderReconciler) buildSender(ctx context.Context, p *notifyv1.NotificationProvider) (channel.Sender, error) {
	switch p.Spec.Channel {
	case notifyv1.ChannelEmail:
		s := p.Spec.SMTP
		if s == nil {
			return nil, fmt.Errorf("spec.smtp is required for an email provider")
		}
		cfg := email.Config{
			Host: s.Host, Port: int(s.Port), From: s.From, ReplyTo: s.ReplyTo,
			InsecureSkipVerify: s.InsecureSkipVerify,
		}
		switch s.TLS {
		case notifyv1.SMTPTLSNone:
			cfg.TLS = email.TLSNone
		case notifyv1.SMTPImplicitTLS:
			cfg.TLS = email.TLSImplicit
		default:
			cfg.TLS = email.TLSStartTLS
		}
		if ref := s.AuthSecretRef; ref != nil {
			data, err := r.secret(ctx, p.Namespace, ref.Name, "username", "password")
			if err != nil {
				return nil, err
			}
			cfg.Username, cfg.Password = string(data["username"]), string(data["password"])
		}
		if ref := s.CASecretRef; ref != nil {
			data, err := r.secret(ctx, p.Namespace, ref.Name, "ca.crt")
			if err != nil {
				return nil, err
			}
			cfg.CAPEM = data["ca.crt"]
		}
		return email.New(cfg)

	case notifyv1.ChannelWebhook:
		w := p.Spec.Webhook
		if w == nil {
			return nil, fmt.Errorf("spec.webhook is required for a webhook provider")
		}
		cfg := webhook.Config{URL: w.URL, Headers: w.Headers}
		if ref := w.SigningSecretRef; ref != nil {
			data, err := r.secret(ctx, p.Namespace, ref.Name, ref.Key)
			if err != nil {
				return nil, err
			}
			cfg.Secret = data[ref.Key]
		}
		return webhook.New(cfg)

	case notifyv1.ChannelWhatsApp:
		return r.buildWhatsApp(ctx, p)
	}
	return nil, fmt.Errorf("channel %q has no providers", p.Spec.Channel)
}

func (r *ProviderReconciler) buildWhatsApp(ctx context.Context, p *notifyv1.NotificationProvider) (channel.Sender, error) {
	w := p.Spec.WhatsApp
	if w == nil {
		return nil, fmt.Errorf("spec.whatsapp is required for a whatsapp provider")
	}
	creds := map[string][]byte{}
	credKey := map[notifyv1.WhatsAppAPI]string{
		notifyv1.WhatsAppCloud:  "token",
		notifyv1.WhatsAppTwilio: "authToken",
		notifyv1.WhatsAppWAHA:   "",
	}[w.API]
	if ref := w.CredentialsSecretRef; ref != nil {
		var keys []string
		if credKey != "" {
			keys = append(keys, credKey)
		}
		data, err := r.secret(ctx, p.Namespace, ref.Name, keys...)
		if err != nil {
			return nil, err
		}
		creds = data
	} else if credKey != "" {
		return nil, &configError{reason: ReasonInvalidConfig, err: fmt.Errorf("the %s api needs credentialsSecretRef with key %q", w.API, credKey)}
	}
	switch w.API {
	case notifyv1.WhatsAppCloud:
		return whatsapp.NewCloud(whatsapp.CloudConfig{
			BaseURL: w.BaseURL, APIVersion: w.APIVersion, PhoneNumberID: w.PhoneNumberID,
			AccessToken: string(creds["token"]), DefaultRegion: w.DefaultRegion,
		})
	case notifyv1.WhatsAppTwilio:
		return whatsapp.NewTwilio(whatsapp.TwilioConfig{
			BaseURL: w.BaseURL, AccountSID: w.AccountSID, AuthToken: string(creds["authToken"]),
			APIKeySID: string(creds["apiKeySID"]), APIKeySecret: string(creds["apiKeySecret"]),
			From: w.From, DefaultRegion: w.DefaultRegion,
		})
	case notifyv1.WhatsAppWAHA:
		return whatsapp.NewWAHA(whatsapp.WAHAConfig{
			BaseURL: w.BaseURL, APIKey: string(creds["apiKey"]), Session: w.Session, DefaultRegion: w.DefaultRegion,
		})
	}
	return nil, fmt.Errorf("unknown whatsapp api %q", w.API)
}

// secret reads a Secret in the provider's namespace and checks that the
// required keys are present. Cross-namespace references are impossible by
// construction: the reference carries no namespace.
func (r *ProviderReconciler) secret(ctx context.Context, namespace, name string, required ...string) (map[string][]byte, error) {
	var s corev1.Secret
	if err := r.SecretReader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &configError{reason: ReasonSecretNotFound, err: fmt.Errorf("Secret %q not found in namespace %s", name, namespace)}
		}
		return nil, fmt.Errorf("reading Secret %s: %w", name, err)
	}
	if v, ok := ctx.Value(secretVersionsKey{}).(*[]string); ok {
		*v = append(*v, name+"@"+s.ResourceVersion)
	}
	for _, k := range required {
		if len(s.Data[k]) == 0 {
			return nil, &configError{reason: ReasonSecretKeyAbsent, err: fmt.Errorf("Secret %q has no key %q", name, k)}
		}
	}
	return s.Data, nil
}

func secretNames(p *notifyv1.NotificationProvider) []string {
	var out []string
	if s := p.Spec.SMTP; s != nil {
		if s.AuthSecretRef != nil {
			out = append(out, s.AuthSecretRef.Name)
		}
		if s.CASecretRef != nil {
			out = append(out, s.CASecretRef.Name)
		}
	}
	if w := p.Spec.WhatsApp; w != nil && w.CredentialsSecretRef != nil {
		out = append(out, w.CredentialsSecretRef.Name)
	}
	if w := p.Spec.Webhook; w != nil && w.SigningSecretRef != nil {
		out = append(out, w.SigningSecretRef.Name)
	}
	return out
}

// SetupWithManager watches providers and the metadata of Secrets: a change
// to a referenced Secret re-validates its providers.
func (r *ProviderReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &notifyv1.NotificationProvider{}, providerSecretIndex,
		func(o client.Object) []string { return secretNames(o.(*notifyv1.NotificationProvider)) }); err != nil {
		return fmt.Errorf("indexing providers by secret: %w", err)
	}
	secretToProviders := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		var list notifyv1.NotificationProviderList
		if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{providerSecretIndex: o.GetName()}); err != nil {
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for _, p := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&p)})
		}
		return reqs
	})
	b := ctrl.NewControllerManagedBy(mgr).
		For(&notifyv1.NotificationProvider{}).
		WatchesMetadata(&corev1.Secret{}, secretToProviders)
	if r.Trips != nil {
		b = b.WatchesRawSource(source.Channel(r.Trips, &handler.TypedEnqueueRequestForObject[*notifyv1.NotificationProvider]{}))
	}
	return b.Complete(r)
}
