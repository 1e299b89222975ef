package controllers

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/retry"
	"github.com/herald-dev/herald/internal/sendercache"
)

// CacheOptions is how a manager running these controllers should cache.
// Objects are kept without their managedFields: no controller reads them,
// they are often the larger part of a small object, and an update sent
// without them leaves the server's record as it is.
func CacheOptions() cache.Options {
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		// Events are cached cluster-wide for the EventRule controller,
		// which reads only part of each.
		ByObject: map[client.Object]cache.ByObject{&corev1.Event{}: {Transform: trimEvent}},
	}
}

// trimEvent keeps what EventRules match and render: the event's identity,
// type, reason, message, involved object, count and times. The reporting
// fields, related object, labels and annotations are dropped.
func trimEvent(obj any) (any, error) {
	e, ok := obj.(*corev1.Event)
	if !ok {
		return obj, nil
	}
	e.ManagedFields, e.Labels, e.Annotations, e.OwnerReferences = nil, nil, nil, nil
	e.Source, e.Action, e.Related = corev1.EventSource{}, "", nil
	e.ReportingController, e.ReportingInstance = "", ""
	return e, nil
}

// Options configures the controllers. The defaults reproduce the
// predecessor's job queue knobs: 5 workers per channel, 4 attempts (3
// retries) with exponential backoff from 1s, and a 30s attempt timeout.
type Options struct {
	// Workers is the number of concurrent deliveries per channel; a
	// channel missing from the map gets DefaultWorkers.
	Workers        map[notifyv1.Channel]int
	DefaultWorkers int
	// NotificationWorkers reconcile Notifications (fan-out, aggregation).
	NotificationWorkers int
	// FanOutParallelism bounds concurrent creates for one notification.
	FanOutParallelism int
	// StatusInterval is the least time between status writes of a
	// notification in flight.
	StatusInterval time.Duration
	// SuccessEvents emits a Normal Event for each delivered notification.
	SuccessEvents  bool
	DefaultRetry   retry.Policy
	DefaultTimeout time.Duration
	// ProviderTripDuration is how long a provider that rejected a delivery
	// for a provider reason (credentials, sender) is skipped.
	ProviderTripDuration time.Duration
	Clock                clock.PassiveClock
}

// DefaultOptions returns the defaults documented in docs/operations.md.
func DefaultOptions() Options {
	return Options{
		DefaultWorkers:       5,
		NotificationWorkers:  4,
		FanOutParallelism:    16,
		DefaultRetry:         retry.Default(),
		DefaultTimeout:       30 * time.Second,
		ProviderTripDuration: 5 * time.Minute,
		Clock:                clock.RealClock{},
	}
}

// Setup registers every Herald controller with the manager. It fails when a
// channel of the API has no handler, before anything starts.
func Setup(mgr ctrl.Manager, opts Options) (*sendercache.Cache, error) {
	if err := opts.DefaultRetry.Validate(); err != nil {
		return nil, fmt.Errorf("default retry policy: %w", err)
	}
	if opts.DefaultTimeout <= 0 {
		return nil, fmt.Errorf("default attempt timeout must be positive, got %s", opts.DefaultTimeout)
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	registry := sendercache.NewCache()
	// A delivery that trips a provider's circuit nudges the provider
	// controller, which reports it in the provider's Ready condition.
	trips := make(chan event.TypedGenericEvent[*notifyv1.NotificationProvider], 64)
	onTrip := func(namespace, name string) {
		select {
		case trips <- event.TypedGenericEvent[*notifyv1.NotificationProvider]{
			Object: &notifyv1.NotificationProvider{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}},
		}:
		default: // the periodic resync reports it later
		}
	}
	viaProvider := func(ch notifyv1.Channel) Handler {
		return &ProviderHandler{Channel: ch, Registry: registry, TripFor: opts.ProviderTripDuration, OnTrip: onTrip, Providers: mgr.GetClient()}
	}
	handlers := Handlers{
		notifyv1.ChannelInApp:    InAppHandler{},
		notifyv1.ChannelEmail:    viaProvider(notifyv1.ChannelEmail),
		notifyv1.ChannelWhatsApp: viaProvider(notifyv1.ChannelWhatsApp),
		notifyv1.ChannelWebhook:  viaProvider(notifyv1.ChannelWebhook),
	}
	if err := handlers.Validate(); err != nil {
		return nil, err
	}

	recorder := mgr.GetEventRecorder("herald-controller")
	if err := (&NotificationReconciler{
		Client:            mgr.GetClient(),
		APIReader:         mgr.GetAPIReader(),
		Recorder:          recorder,
		Clock:             opts.Clock,
		DefaultRetry:      opts.DefaultRetry,
		DefaultTimeout:    opts.DefaultTimeout,
		FanOutParallelism: opts.FanOutParallelism,
		Workers:           opts.NotificationWorkers,
		StatusInterval:    opts.StatusInterval,
		SuccessEvents:     opts.SuccessEvents,
	}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up notification controller: %w", err)
	}
	for _, ch := range notifyv1.Channels {
		workers := opts.DefaultWorkers
		if w, ok := opts.Workers[ch]; ok {
			workers = w
		}
		if err := (&DeliveryReconciler{
			Client:         mgr.GetClient(),
			Channel:        ch,
			Handler:        handlers[ch],
			Recorder:       recorder,
			Clock:          opts.Clock,
			DefaultRetry:   opts.DefaultRetry,
			DefaultTimeout: opts.DefaultTimeout,
			Workers:        workers,
		}).SetupWithManager(mgr); err != nil {
			return nil, fmt.Errorf("setting up %s delivery controller: %w", ch, err)
		}
	}
	if err := (&ProviderReconciler{
		Client:       mgr.GetClient(),
		SecretReader: mgr.GetAPIReader(),
		Registry:     registry,
		Recorder:     recorder,
		Trips:        trips,
	}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up provider controller: %w", err)
	}
	if err := (&RecipientReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up recipient controller: %w", err)
	}
	if err := (&NotificationTemplateReconciler{Client: mgr.GetClient(), Recorder: recorder}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up template controller: %w", err)
	}
	if err := (&NotificationScheduleReconciler{Client: mgr.GetClient(), Recorder: recorder, Clock: opts.Clock}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up schedule controller: %w", err)
	}
	if err := (&EventRuleReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  recorder,
		Clock:     opts.Clock,
		Workers:   2,
	}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up event rule controller: %w", err)
	}
	registerPhaseGauge(mgr.GetCache())
	return registry, nil
}
