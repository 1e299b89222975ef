// Package provider holds the NotificationProvider reconciler: it validates
// each provider, builds its sender from the provider and its Secrets, and
// keeps it, with its rate limit and circuit, in the sender cache that
// delivery handlers read.
package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel/factory"
	"github.com/herald-dev/herald/internal/patch"
	"github.com/herald-dev/herald/internal/sendercache"
)

// providerSecretIndex indexes NotificationProviders by the Secrets they
// reference, so that a Secret change re-validates exactly its providers.
const providerSecretIndex = "spec.secretNames"

// providerResync re-reads Secrets now and then, in case a change was missed.
const providerResync = 10 * time.Minute

// Reconciler validates NotificationProviders, resolves their Secret
// references and keeps a ready-to-use sender for each in the Registry.
type Reconciler struct {
	client.Client
	// SecretReader reads Secrets directly from the API server: Herald
	// caches only Secret metadata (to notice changes), never their data.
	SecretReader client.Reader
	Registry     *sendercache.Cache
	Recorder     events.EventRecorder
	// Trips delivers a request whenever a delivery opens a provider's
	// circuit, so its Ready condition reports it.
	Trips chan event.TypedGenericEvent[*notifyv1.NotificationProvider]
	// Clock tells whether a circuit is still open.
	Clock clock.PassiveClock
	// Settings are what every sender is built with: the egress policy
	// and the HTTP client dialling under it.
	Settings factory.Settings
	// ReadOnly loads providers into the Registry without writing their
	// status: a shard other than the one writing shared status
	// (--shared-status=false) reads providers but does not report on them.
	ReadOnly bool
}

// +kubebuilder:rbac:groups=notify.herald.dev,resources=notificationproviders,verbs=get;list;watch
// +kubebuilder:rbac:groups=notify.herald.dev,resources=notificationproviders/status,verbs=patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch

func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var p notifyv1.NotificationProvider
	if err := r.Get(ctx, req.NamespacedName, &p); err != nil {
		if apierrors.IsNotFound(err) {
			r.Registry.Delete(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	patcher := patch.NewHelper(&p, r.Client, patch.ControllerFieldOwner)

	b, err := (&factory.Factory{Secrets: r.SecretReader, Settings: r.Settings}).Build(ctx, &p)
	entry := &sendercache.Entry{
		Fingerprint: b.Fingerprint(),
		Name:        p.Name,
		Namespace:   p.Namespace,
		Channel:     p.Spec.Channel,
		Default:     p.Spec.Default,
		Suspended:   p.Spec.Suspend,
		Fallback:    p.Spec.Fallback,
		Pacer:       r.pacer(req.NamespacedName, p.Spec.RateLimit),
	}
	cond := metav1.Condition{Type: notifyv1.ConditionReady, Status: metav1.ConditionTrue, ObservedGeneration: p.Generation}
	if err != nil {
		entry.Reason, entry.Message = notifyv1.ReasonInvalidConfig, err.Error()
		var ce *factory.ConfigError
		if errors.As(err, &ce) {
			entry.Reason = ce.Reason
		}
		cond.Status = metav1.ConditionFalse
	} else {
		entry.Ready, entry.Sender = true, b.Sender
		entry.Reason, entry.Message = notifyv1.ReasonReady, fmt.Sprintf("%s provider is configured", p.Spec.Channel)
		if p.Spec.Suspend {
			entry.Reason, entry.Message = notifyv1.ReasonSuspended, "deliveries wait while the provider is suspended"
		}
	}
	cond.Reason, cond.Message = entry.Reason, entry.Message
	r.Registry.Set(entry)

	requeue := providerResync
	now := r.Clock.Now()
	if tripped, why := entry.Tripped(now); entry.Ready && tripped {
		until := entry.TrippedUntil()
		cond.Status, cond.Reason = metav1.ConditionFalse, notifyv1.ReasonProviderRejected
		cond.Message = fmt.Sprintf("%s; skipped until %s unless the provider or its Secret changes", why, until.UTC().Format(time.RFC3339))
		requeue = until.Sub(now) + time.Second
	}
	if p.Spec.Default {
		if defs := r.Registry.Defaults(p.Namespace, entry.Channel); len(defs) > 1 && defs[0].Name != p.Name {
			cond.Message += fmt.Sprintf("; warning: %s is also a default %s provider and is used instead", defs[0].Name, p.Spec.Channel)
		}
	}
	if r.ReadOnly {
		return ctrl.Result{RequeueAfter: requeue}, nil
	}
	meta.SetStatusCondition(&p.Status.Conditions, cond)
	p.Status.ObservedGeneration = p.Generation
	wrote, err := patcher.Patch(ctx, &p, patch.WithOptimisticLock())
	if err != nil {
		return patch.RequeueOnConflict(err, "provider status")
	}
	if wrote && cond.Status == metav1.ConditionFalse {
		r.Recorder.Eventf(&p, nil, "Warning", cond.Reason, "Validate", "%s", cond.Message)
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// pacer keeps a provider's rate limiter across reconciles when the limit is
// unchanged, so re-validation does not hand out a fresh burst.
func (r *Reconciler) pacer(key types.NamespacedName, rl *notifyv1.RateLimit) *sendercache.Pacer {
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
	return sendercache.NewPacer(limit, burst)
}

// SetupWithManager watches providers and the metadata of Secrets: a change
// to a referenced Secret re-validates its providers.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &notifyv1.NotificationProvider{}, providerSecretIndex,
		func(o client.Object) []string { return factory.SecretNames(o.(*notifyv1.NotificationProvider)) }); err != nil {
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
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.Trips != nil {
		b = b.WatchesRawSource(source.Channel(r.Trips, &handler.TypedEnqueueRequestForObject[*notifyv1.NotificationProvider]{}))
	}
	return b.Complete(r)
}
