// Package controllers wires Herald's reconcilers into a controller-runtime
// manager. Each reconciler has a package of its own below this one:
//
//	notification/  fan-out, aggregation, approvals
//	delivery/      one reconciler per channel, handlers, attempt recording
//	provider/      NotificationProviders → the sender cache
//	recipient/     address checks
//	template/      NotificationTemplate checks
//	schedule/      NotificationSchedules → Notifications
//	eventrule/     core/v1 Events → Notifications
//
// docs/architecture.md shows how a Notification travels through them.
package controllers

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/controllers/delivery"
	"github.com/herald-dev/herald/controllers/eventrule"
	"github.com/herald-dev/herald/controllers/notification"
	"github.com/herald-dev/herald/controllers/provider"
	"github.com/herald-dev/herald/controllers/recipient"
	"github.com/herald-dev/herald/controllers/schedule"
	"github.com/herald-dev/herald/controllers/selfalert"
	"github.com/herald-dev/herald/controllers/template"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/factory"
	"github.com/herald-dev/herald/internal/metrics"
	"github.com/herald-dev/herald/internal/sendercache"
)

// CacheOptions is how a manager running these controllers should cache.
// Objects are kept without their managedFields: no controller reads them,
// they are often the larger part of a small object, and a patch sent
// without them leaves the server's record as it is.
func CacheOptions() cache.Options {
	return ShardCacheOptions(nil)
}

// ShardCacheOptions is CacheOptions for one shard: the kinds that carry
// the work (ShardedKinds) are cached only where shard matches them, while
// what every shard reads (providers, recipients, templates, Secrets,
// Events) is cached whole. A nil shard caches everything.
func ShardCacheOptions(shard labels.Selector) cache.Options {
	byObject := map[client.Object]cache.ByObject{
		// Events are cached cluster-wide for the EventRule controller,
		// which reads only part of each.
		&corev1.Event{}: {Transform: eventrule.TrimEvent},
	}
	if shard != nil {
		for _, obj := range ShardedKinds() {
			byObject[obj] = cache.ByObject{Label: shard}
		}
	}
	return cache.Options{DefaultTransform: cache.TransformStripManagedFields(), ByObject: byObject}
}

// ShardedKinds are the kinds --watch-label-selector applies to.
func ShardedKinds() []client.Object {
	return []client.Object{&notifyv1.Notification{}, &notifyv1.ChannelDelivery{}, &notifyv1.NotificationSchedule{}, &notifyv1.EventRule{}}
}

// Setup registers every Herald controller with the manager. It fails when a
// channel of the API has no handler, before anything starts.
func Setup(mgr ctrl.Manager, opts Options) (*sendercache.Cache, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	policy, err := opts.EgressPolicy()
	if err != nil {
		return nil, err
	}
	senders := sendercache.NewCache()
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
	viaProvider := func(ch notifyv1.Channel) delivery.Handler {
		return &delivery.ProviderHandler{Channel: ch, Registry: senders, TripFor: opts.ProviderTripDuration,
			OnTrip: onTrip, Providers: mgr.GetClient(), Clock: opts.Clock}
	}
	handlers := delivery.Handlers{
		notifyv1.ChannelInApp:    delivery.InAppHandler{},
		notifyv1.ChannelEmail:    viaProvider(notifyv1.ChannelEmail),
		notifyv1.ChannelWhatsApp: viaProvider(notifyv1.ChannelWhatsApp),
		notifyv1.ChannelWebhook:  viaProvider(notifyv1.ChannelWebhook),
		notifyv1.ChannelSlack:    viaProvider(notifyv1.ChannelSlack),
		notifyv1.ChannelTeams:    viaProvider(notifyv1.ChannelTeams),
		notifyv1.ChannelTelegram: viaProvider(notifyv1.ChannelTelegram),
	}
	if err := handlers.Validate(); err != nil {
		return nil, err
	}

	recorder := mgr.GetEventRecorder("herald-controller")
	if err := (&notification.Reconciler{
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

		DefaultTTLAfterFinished: opts.DefaultTTLAfterFinished,
	}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up notification controller: %w", err)
	}
	for _, ch := range notifyv1.Channels {
		workers := opts.DefaultWorkers
		if w, ok := opts.Workers[ch]; ok {
			workers = w
		}
		if err := (&delivery.Reconciler{
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
	// A provider fault that `herald receiver` records from a delivery
	// receipt opens the provider's circuit, as one met at send time does.
	if err := (&delivery.ReceiptTrips{Client: mgr.GetClient(), Registry: senders, TripFor: opts.ProviderTripDuration,
		OnTrip: onTrip, Clock: opts.Clock}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the delivery receipts controller: %w", err)
	}
	if err := (&provider.Reconciler{
		Client:       mgr.GetClient(),
		SecretReader: mgr.GetAPIReader(),
		Registry:     senders,
		Recorder:     recorder,
		Trips:        trips,
		Clock:        opts.Clock,
		Settings: factory.Settings{
			Egress:     policy,
			HTTPClient: channel.NewHTTPClient(policy),
			// SMTP providers may skip certificate checks only if the
			// cluster admin allows it.
			AllowInsecureSkipVerify: opts.AllowInsecureSkipVerify,
			InboxURL:                opts.InboxURL,
		},
		ReadOnly: !opts.Manager.SharedStatus,
	}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up provider controller: %w", err)
	}
	// Recipients and templates are read by every shard; their checks only
	// write status, so one controller of a sharded installation runs them.
	if opts.Manager.SharedStatus {
		if err := (&recipient.Reconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
			return nil, fmt.Errorf("setting up recipient controller: %w", err)
		}
		if err := (&template.Reconciler{Client: mgr.GetClient(), Recorder: recorder}).SetupWithManager(mgr); err != nil {
			return nil, fmt.Errorf("setting up template controller: %w", err)
		}
	}
	if err := (&schedule.Reconciler{Client: mgr.GetClient(), Recorder: recorder, Clock: opts.Clock}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up schedule controller: %w", err)
	}
	if err := (&eventrule.Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  recorder,
		Clock:     opts.Clock,
		Workers:   opts.EventRuleWorkers,
		// Every tenant's rules are held to the operator's ceiling.
		MaxNotificationsPerMinute: opts.EventRuleMaxNotificationsPerMinute,
		// and all rules of a namespace share one budget besides.
		NamespaceMaxNotificationsPerMinute: opts.EventRuleNamespaceMaxNotificationsPerMinute,
	}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up event rule controller: %w", err)
	}
	if opts.Alerts.Namespace != "" {
		if err := mgr.Add(&selfalert.Alerter{Client: mgr.GetClient(), Options: opts.Alerts, Clock: opts.Clock}); err != nil {
			return nil, fmt.Errorf("setting up Herald's alerts: %w", err)
		}
	}
	metrics.RegisterPhaseGauge(mgr.GetCache())
	metrics.RegisterHealth(mgr.GetCache(), opts.Clock)
	return senders, nil
}
