package controllers

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/utils/clock"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/controllers/eventrule"
	"github.com/herald-dev/herald/controllers/selfalert"
	"github.com/herald-dev/herald/internal/apflimit"
	"github.com/herald-dev/herald/internal/channel/egress"
	"github.com/herald-dev/herald/internal/metrics"
	"github.com/herald-dev/herald/internal/retry"
)

// Options configures the controllers and the manager that runs them.
// DefaultOptions holds every default, and AddFlags binds the options to the
// flags of `herald controller` with those defaults, so they are written
// down once. The delivery defaults reproduce the predecessor's job queue
// knobs: 5 workers per channel, 4 attempts (3 retries) with exponential
// backoff from 1s, and a 30s attempt timeout.
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
	SuccessEvents bool
	// Alerts are Herald's alerts about itself, sent through Herald
	// (controllers/selfalert); off unless Alerts.Namespace is set.
	Alerts selfalert.Options
	// DefaultRetry is the retry policy of deliveries whose Notification
	// sets none; it is complete (every field set).
	DefaultRetry   retry.Policy
	DefaultTimeout time.Duration
	// ProviderTripDuration is how long a provider that rejected a delivery
	// for a provider reason (credentials, sender) is skipped.
	ProviderTripDuration time.Duration
	// DefaultTTLAfterFinished deletes finished Notifications that set no
	// spec.ttlSecondsAfterFinished this long after they finished; 0 keeps
	// them forever.
	DefaultTTLAfterFinished time.Duration
	// EventRuleWorkers reconcile EventRules.
	EventRuleWorkers int
	// EventRuleMaxNotificationsPerMinute is the ceiling on every
	// EventRule's spec.maxNotificationsPerMinute: a tenant's rule never
	// makes more Notifications a minute than this.
	EventRuleMaxNotificationsPerMinute int
	// EventRuleNamespaceMaxNotificationsPerMinute is the budget all
	// EventRules of a namespace share, on top of each rule's own: a tenant
	// with many rules gets one namespace's worth, not one per rule.
	EventRuleNamespaceMaxNotificationsPerMinute int
	// EgressAllow lists CIDRs and host names senders may reach although
	// the egress policy refuses them by default (loopback, link-local,
	// private, the service range...). See docs/security.md.
	EgressAllow []string
	// ServiceCIDRs is the cluster's service range, refused unless
	// EgressAllow allows it. Empty when unknown.
	ServiceCIDRs []string
	// AllowInsecureSkipVerify lets SMTP providers set insecureSkipVerify;
	// without it such a provider is not Ready
	// (InsecureSkipVerifyNotAllowed). For test clusters only.
	AllowInsecureSkipVerify bool
	// InboxURL is the inbox web page that Slack and Teams messages of
	// approval notifications link to (a provider's inboxURL wins); empty
	// means no link.
	InboxURL string
	Clock    clock.PassiveClock

	Manager ManagerOptions

	// channelWorkers holds --channel-workers until Complete parses it.
	channelWorkers map[string]int
	retryStrategy  string
}

// ManagerOptions are the process's settings: endpoints, leader election
// and the client's rate limits.
type ManagerOptions struct {
	MetricsAddr             string
	ProbeAddr               string
	PprofAddr               string
	LeaderElection          bool
	LeaderElectionNamespace string
	// LeaderElectionID names the lease; each shard needs its own.
	LeaderElectionID string
	// QPS is the client's rate towards the API server: the ceiling when
	// AdaptiveQPS, fixed otherwise; negative means no client-side limit.
	QPS   float64
	Burst int
	// AdaptiveQPS lowers the rate when the API server answers 429 (its
	// priority and fairness queues are full) and raises it back to QPS
	// while requests go through (internal/apflimit).
	AdaptiveQPS bool
	// WatchLabelSelector limits the controller to the Notifications,
	// ChannelDeliveries, NotificationSchedules and EventRules it matches:
	// one shard (docs/scaling.md). Empty watches them all.
	WatchLabelSelector string
	// SharedStatus writes the status of the objects every shard reads
	// (providers, recipients, templates). Exactly one controller of a
	// sharded installation should; the others still load providers.
	SharedStatus bool
}

// ClientRate is the client rate limit of these options, reporting to the
// metrics herald_kube_api_client_qps and herald_kube_api_throttled_total.
func (m ManagerOptions) ClientRate() apflimit.Config {
	return apflimit.Config{
		QPS:          m.QPS,
		Burst:        m.Burst,
		Adaptive:     m.AdaptiveQPS,
		OnRateChange: metrics.KubeAPIClientQPS.Set,
		OnThrottled:  metrics.KubeAPIThrottled.Inc,
	}
}

// DefaultLeaderElectionID is the lease of an unsharded controller.
const DefaultLeaderElectionID = "herald-controller.notify.herald.dev"

// ShardSelector parses WatchLabelSelector; nil means every object.
func (m ManagerOptions) ShardSelector() (labels.Selector, error) {
	if m.WatchLabelSelector == "" {
		return nil, nil
	}
	sel, err := labels.Parse(m.WatchLabelSelector)
	if err != nil {
		return nil, fmt.Errorf("--watch-label-selector: %w", err)
	}
	return sel, nil
}

// DefaultOptions returns the defaults documented in docs/operations.md.
func DefaultOptions() Options {
	return Options{
		DefaultWorkers:       5,
		NotificationWorkers:  4,
		FanOutParallelism:    16,
		StatusInterval:       time.Second,
		DefaultRetry:         retry.Default(),
		DefaultTimeout:       30 * time.Second,
		ProviderTripDuration: 5 * time.Minute,
		EventRuleWorkers:     2,
		// The API's default budget: a rule that sets none gets what the
		// operator allows every rule.
		EventRuleMaxNotificationsPerMinute: notifyv1.DefaultEventRuleNotificationsPerMinute,
		// Five rules at the default budget.
		EventRuleNamespaceMaxNotificationsPerMinute: eventrule.DefaultNamespaceNotificationsPerMinute,
		// Seven days: long enough to look into last week's deliveries,
		// short enough that etcd holds a bounded number (docs/operations.md).
		DefaultTTLAfterFinished: 7 * 24 * time.Hour,
		// Nothing beyond globally routable addresses: a tenant's webhook
		// must not reach the cluster's own network.
		EgressAllow:  nil,
		ServiceCIDRs: nil,
		// Certificates are verified: a provider may not opt out alone.
		AllowInsecureSkipVerify: false,
		Clock:                   clock.RealClock{},
		Alerts:                  selfalert.DefaultOptions(),
		Manager: ManagerOptions{
			MetricsAddr: ":8080",
			ProbeAddr:   ":8081",
			QPS:         100,
			Burst:       200,
			// Never more than QPS, less while the API server says 429.
			AdaptiveQPS: true,

			LeaderElectionID: DefaultLeaderElectionID,
			SharedStatus:     true,
		},
	}
}

// AddFlags binds o to fs; each flag's default is o's current value.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	m := &o.Manager
	fs.StringVar(&m.MetricsAddr, "metrics-bind-address", m.MetricsAddr, "Address of the Prometheus metrics endpoint; 0 disables it.")
	fs.StringVar(&m.ProbeAddr, "health-probe-bind-address", m.ProbeAddr, "Address of the /healthz and /readyz endpoints.")
	fs.StringVar(&m.PprofAddr, "pprof-bind-address", m.PprofAddr, "Address of the net/http/pprof endpoints, for profiling; empty disables them.")
	fs.BoolVar(&m.LeaderElection, "leader-elect", m.LeaderElection, "Elect a leader so that only one replica reconciles at a time.")
	fs.StringVar(&m.LeaderElectionNamespace, "leader-election-namespace", m.LeaderElectionNamespace, "Namespace of the leader election lease (default: the pod's namespace).")
	fs.StringVar(&m.LeaderElectionID, "leader-election-id", m.LeaderElectionID, "Name of the leader election lease; every shard needs its own.")
	fs.StringVar(&m.WatchLabelSelector, "watch-label-selector", m.WatchLabelSelector, "Handle only the Notifications, ChannelDeliveries, NotificationSchedules and EventRules this label selector matches, e.g. 'sharding.herald.dev/key in (shard1)' or '!sharding.herald.dev/key' (docs/scaling.md).")
	fs.BoolVar(&m.SharedStatus, "shared-status", m.SharedStatus, "Write the status of providers, recipients and templates, which every shard reads; turn it off on all shards but one.")
	fs.Float64Var(&m.QPS, "kube-api-qps", m.QPS, "Queries per second to the Kubernetes API server: the ceiling with --kube-api-adaptive, else per resource type; -1 for no client-side limit.")
	fs.IntVar(&m.Burst, "kube-api-burst", m.Burst, "Burst of queries to the Kubernetes API server (at the ceiling).")
	fs.BoolVar(&m.AdaptiveQPS, "kube-api-adaptive", m.AdaptiveQPS, "Share one client rate limit of at most --kube-api-qps across the process, halve it when the API server answers 429 Too Many Requests and raise it back while requests go through.")

	fs.IntVar(&o.DefaultWorkers, "workers", o.DefaultWorkers, "Concurrent deliveries per channel (JOB_QUEUE_MAX_WORKERS).")
	fs.StringToIntVar(&o.channelWorkers, "channel-workers", nil, "Per-channel worker counts overriding --workers, e.g. email=10,webhook=20.")
	fs.IntVar(&o.NotificationWorkers, "notification-workers", o.NotificationWorkers, "Concurrent Notification reconciles (fan-out and aggregation).")
	fs.IntVar(&o.FanOutParallelism, "fan-out-parallelism", o.FanOutParallelism, "Concurrent delivery creates while fanning out one Notification.")
	r := &o.DefaultRetry
	fs.IntVar(&r.MaxAttempts, "default-max-attempts", r.MaxAttempts, "Attempts per delivery unless the Notification says otherwise: the first plus JOB_QUEUE_DEFAULT_MAX_RETRIES (3).")
	o.retryStrategy = string(r.Strategy)
	fs.StringVar(&o.retryStrategy, "default-retry-strategy", o.retryStrategy, "Backoff strategy: Exponential, Linear or Fixed (JOB_QUEUE_RETRY_STRATEGY).")
	fs.DurationVar(&r.InitialDelay, "default-initial-delay", r.InitialDelay, "Delay after the first failed attempt.")
	fs.DurationVar(&r.MaxDelay, "default-max-delay", r.MaxDelay, "Longest delay between attempts.")
	fs.Float64Var(&r.Jitter, "default-jitter", r.Jitter, "Fraction (0-1) of each delay drawn at random, to spread retries.")
	fs.DurationVar(&o.DefaultTimeout, "default-timeout", o.DefaultTimeout, "Timeout of one attempt (JOB_QUEUE_DEFAULT_TIMEOUT_SECONDS).")
	fs.DurationVar(&o.ProviderTripDuration, "provider-trip-duration", o.ProviderTripDuration, "How long a provider that rejected a delivery for a provider reason (credentials, sender) is skipped; changing it or its Secret ends this at once.")
	fs.DurationVar(&o.StatusInterval, "status-interval", o.StatusInterval, "Least time between two status writes of a Notification whose deliveries are in flight; finishing always writes at once.")
	fs.DurationVar(&o.DefaultTTLAfterFinished, "default-ttl-after-finished", o.DefaultTTLAfterFinished, "Delete finished Notifications (and their deliveries) this long after they finished unless they set spec.ttlSecondsAfterFinished; 0 keeps them.")
	fs.StringSliceVar(&o.EgressAllow, "egress-allow", o.EgressAllow, "CIDRs and host names senders may connect to although they are refused by default (loopback, link-local, private, unique-local, multicast, unspecified, the service range), e.g. 10.20.0.0/16,smtp.internal.example. Credentials may go to these hosts without TLS.")
	fs.StringSliceVar(&o.ServiceCIDRs, "egress-service-cidr", o.ServiceCIDRs, "The cluster's service IP range(s), refused as destinations unless --egress-allow names them.")
	fs.BoolVar(&o.AllowInsecureSkipVerify, "allow-insecure-skip-verify", o.AllowInsecureSkipVerify, "Let SMTP providers set insecureSkipVerify (no certificate verification); without it such a provider is not Ready. For test clusters only.")
	fs.StringVar(&o.InboxURL, "inbox-url", o.InboxURL, "Address of the inbox web page; Slack and Teams messages of approval notifications link to their item there (?item=<inbox item>&namespace=<ns>&notification=<name>). A provider's spec.<channel>.inboxURL overrides it.")
	fs.IntVar(&o.EventRuleMaxNotificationsPerMinute, "eventrule-max-notifications-per-minute", o.EventRuleMaxNotificationsPerMinute, fmt.Sprintf("Ceiling on every EventRule's spec.maxNotificationsPerMinute (1-%d): no rule makes more Notifications a minute, whatever its spec says.", notifyv1.MaxEventRuleNotificationsPerMinute))
	fs.IntVar(&o.EventRuleNamespaceMaxNotificationsPerMinute, "eventrule-namespace-max-notifications-per-minute", o.EventRuleNamespaceMaxNotificationsPerMinute, fmt.Sprintf("Budget (1-%d) of Notifications a minute that all EventRules of one namespace share, on top of each rule's own: a tenant with many rules gets no more than this.", eventrule.MaxNamespaceNotificationsPerMinute))
	fs.BoolVar(&o.SuccessEvents, "success-events", o.SuccessEvents, "Emit a Normal Event for every delivered Notification (one more API write each); failures always get Warning Events.")
	o.Alerts.AddFlags(fs)
}

// Complete turns what the flags gave into options and checks them.
func (o *Options) Complete() error {
	if o.retryStrategy != "" {
		o.DefaultRetry.Strategy = retry.Strategy(o.retryStrategy)
	}
	if len(o.channelWorkers) > 0 {
		workers := map[notifyv1.Channel]int{}
		for name, n := range o.channelWorkers {
			ch, ok := channelByName(name)
			if !ok {
				return fmt.Errorf("--channel-workers: unknown channel %q (want one of %s)", name, channelNames())
			}
			if n < 1 {
				return fmt.Errorf("--channel-workers: %s needs at least 1 worker", name)
			}
			workers[ch] = n
		}
		o.Workers = workers
	}
	return o.Validate()
}

// Validate checks the options Setup relies on.
func (o *Options) Validate() error {
	if err := o.DefaultRetry.Validate(); err != nil {
		return fmt.Errorf("default retry policy: %w", err)
	}
	if o.DefaultTTLAfterFinished < 0 {
		return fmt.Errorf("--default-ttl-after-finished must not be negative, got %s", o.DefaultTTLAfterFinished)
	}
	shard, err := o.Manager.ShardSelector()
	if err != nil {
		return err
	}
	if o.Manager.LeaderElection && o.Manager.LeaderElectionID == DefaultLeaderElectionID && namesAShard(shard) {
		// Sharing the unsharded controller's lease, the shard would wait
		// for that controller forever, or it for the shard.
		return fmt.Errorf("--watch-label-selector %q selects a shard: give it a --leader-election-id of its own", o.Manager.WatchLabelSelector)
	}
	if err := o.Manager.ClientRate().Validate(); err != nil {
		return err
	}
	if o.Manager.LeaderElectionID == "" {
		return fmt.Errorf("--leader-election-id must not be empty")
	}
	if n := o.EventRuleMaxNotificationsPerMinute; n < 1 || n > notifyv1.MaxEventRuleNotificationsPerMinute {
		return fmt.Errorf("--eventrule-max-notifications-per-minute must be between 1 and %d, got %d", notifyv1.MaxEventRuleNotificationsPerMinute, n)
	}
	if n := o.EventRuleNamespaceMaxNotificationsPerMinute; n < 1 || n > eventrule.MaxNamespaceNotificationsPerMinute {
		return fmt.Errorf("--eventrule-namespace-max-notifications-per-minute must be between 1 and %d, got %d", eventrule.MaxNamespaceNotificationsPerMinute, n)
	}
	if o.DefaultTimeout <= 0 {
		return fmt.Errorf("default attempt timeout must be positive, got %s", o.DefaultTimeout)
	}
	if _, err := o.EgressPolicy(); err != nil {
		return fmt.Errorf("--egress-allow/--egress-service-cidr: %w", err)
	}
	if o.InboxURL != "" {
		if u, err := url.Parse(o.InboxURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("--inbox-url must be an absolute http or https URL, got %q", o.InboxURL)
		}
	}
	return o.Alerts.Validate()
}

// namesAShard reports whether sel selects only objects that carry the
// shard label (key=value, key in (...), key): a named shard, as opposed to
// the controller of unlabelled objects (!key), which keeps the default
// lease so that moving from one controller to shards hands over through it.
func namesAShard(sel labels.Selector) bool {
	if sel == nil {
		return false
	}
	reqs, _ := sel.Requirements()
	for _, r := range reqs {
		if r.Key() != notifyv1.LabelShardKey {
			continue
		}
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In, selection.Exists:
			return true
		}
	}
	return false
}

// EgressPolicy is the policy senders connect under.
func (o *Options) EgressPolicy() (*egress.Policy, error) {
	return egress.New(o.EgressAllow, o.ServiceCIDRs)
}

func channelByName(name string) (notifyv1.Channel, bool) {
	for _, c := range notifyv1.Channels {
		if strings.EqualFold(string(c), name) {
			return c, true
		}
	}
	return "", false
}

func channelNames() string {
	var names []string
	for _, c := range notifyv1.Channels {
		names = append(names, string(c))
	}
	return strings.Join(names, ", ")
}
