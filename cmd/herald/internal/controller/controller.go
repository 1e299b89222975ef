// Package controller is `herald controller`: the controller manager that
// fans out and delivers notifications. It is a production code path: it
// must not import anything dev-only (internal/dev, test helpers, fakes);
// cmd/herald's TestProductionImports checks that.
package controller

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/controllers"
	"github.com/herald-dev/herald/internal/retry"
)

// Flags are the controller's settings. The retry and worker defaults are
// the predecessor's JOB_QUEUE_* knobs. herald dev binds them too, so that
// its in-process controllers take the same flags.
type Flags struct {
	// MetricsAddr is --metrics-bind-address.
	MetricsAddr    string
	probeAddr      string
	pprofAddr      string
	leaderElect    bool
	leaderElectNS  string
	qps            float64
	burst          int
	workers        int
	channelWorkers map[string]int
	notifWorkers   int
	fanOut         int
	maxAttempts    int
	strategy       string
	initialDelay   time.Duration
	maxDelay       time.Duration
	jitter         float64
	timeout        time.Duration
	tripFor        time.Duration
	statusInterval time.Duration
	successEvents  bool
	// Zap is the logging configuration (--zap-* flags).
	Zap zap.Options
}

// Bind adds the flags to cmd.
func (f *Flags) Bind(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.MetricsAddr, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint; 0 disables it.")
	fs.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	fs.StringVar(&f.pprofAddr, "pprof-bind-address", "", "Address of the net/http/pprof endpoints, for profiling; empty disables them.")
	fs.BoolVar(&f.leaderElect, "leader-elect", false, "Elect a leader so that only one replica reconciles at a time.")
	fs.StringVar(&f.leaderElectNS, "leader-election-namespace", "", "Namespace of the leader election lease (default: the pod's namespace).")
	fs.Float64Var(&f.qps, "kube-api-qps", 100, "Queries per second to the Kubernetes API server.")
	fs.IntVar(&f.burst, "kube-api-burst", 200, "Burst of queries to the Kubernetes API server.")
	fs.IntVar(&f.workers, "workers", 5, "Concurrent deliveries per channel (JOB_QUEUE_MAX_WORKERS).")
	fs.StringToIntVar(&f.channelWorkers, "channel-workers", nil, "Per-channel worker counts overriding --workers, e.g. email=10,webhook=20.")
	fs.IntVar(&f.notifWorkers, "notification-workers", 4, "Concurrent Notification reconciles (fan-out and aggregation).")
	fs.IntVar(&f.fanOut, "fan-out-parallelism", 16, "Concurrent delivery creates while fanning out one Notification.")
	fs.IntVar(&f.maxAttempts, "default-max-attempts", 4, "Attempts per delivery unless the Notification says otherwise: the first plus JOB_QUEUE_DEFAULT_MAX_RETRIES (3).")
	fs.StringVar(&f.strategy, "default-retry-strategy", "Exponential", "Backoff strategy: Exponential, Linear or Fixed (JOB_QUEUE_RETRY_STRATEGY).")
	fs.DurationVar(&f.initialDelay, "default-initial-delay", time.Second, "Delay after the first failed attempt.")
	fs.DurationVar(&f.maxDelay, "default-max-delay", 5*time.Minute, "Longest delay between attempts.")
	fs.Float64Var(&f.jitter, "default-jitter", 0, "Fraction (0-1) of each delay drawn at random, to spread retries.")
	fs.DurationVar(&f.timeout, "default-timeout", 30*time.Second, "Timeout of one attempt (JOB_QUEUE_DEFAULT_TIMEOUT_SECONDS).")
	fs.DurationVar(&f.tripFor, "provider-trip-duration", 5*time.Minute, "How long a provider that rejected a delivery for a provider reason (credentials, sender) is skipped; changing it or its Secret ends this at once.")
	fs.DurationVar(&f.statusInterval, "status-interval", time.Second, "Least time between two status writes of a Notification whose deliveries are in flight; finishing always writes at once.")
	fs.BoolVar(&f.successEvents, "success-events", false, "Emit a Normal Event for every delivered Notification (one more API write each); failures always get Warning Events.")
	gofs := flag.NewFlagSet("zap", flag.ExitOnError)
	f.Zap.BindFlags(gofs)
	fs.AddGoFlagSet(gofs)
}

// Options turns the flags into the controllers' options.
func (f *Flags) Options() (controllers.Options, error) {
	opts := controllers.DefaultOptions()
	opts.DefaultWorkers = f.workers
	opts.NotificationWorkers = f.notifWorkers
	opts.FanOutParallelism = f.fanOut
	opts.DefaultTimeout = f.timeout
	opts.ProviderTripDuration = f.tripFor
	opts.StatusInterval = f.statusInterval
	opts.SuccessEvents = f.successEvents
	opts.DefaultRetry = retry.Policy{
		Strategy:     retry.Strategy(f.strategy),
		MaxAttempts:  f.maxAttempts,
		InitialDelay: f.initialDelay,
		MaxDelay:     f.maxDelay,
		Jitter:       f.jitter,
	}
	if err := opts.DefaultRetry.Validate(); err != nil {
		return opts, err
	}
	opts.Workers = map[notifyv1.Channel]int{}
	for name, n := range f.channelWorkers {
		ch, ok := channelByName(name)
		if !ok {
			return opts, fmt.Errorf("--channel-workers: unknown channel %q (want one of %s)", name, channelNames())
		}
		if n < 1 {
			return opts, fmt.Errorf("--channel-workers: %s needs at least 1 worker", name)
		}
		opts.Workers[ch] = n
	}
	return opts, nil
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

// Scheme holds every type the controller reads.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := notifyv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// NewCommand returns the controller sub-command.
func NewCommand() *cobra.Command {
	f := &Flags{}
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the controllers that fan out and deliver notifications",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctrl.SetLogger(zap.New(zap.UseFlagOptions(&f.Zap)))
			opts, err := f.Options()
			if err != nil {
				return err
			}
			cfg, err := ctrl.GetConfig()
			if err != nil {
				return fmt.Errorf("loading kubeconfig: %w", err)
			}
			cfg.QPS, cfg.Burst = float32(f.qps), f.burst
			mgr, err := ctrl.NewManager(cfg, ctrl.Options{
				Scheme:                  Scheme(),
				Cache:                   controllers.CacheOptions(),
				Metrics:                 metricsserver.Options{BindAddress: f.MetricsAddr},
				HealthProbeBindAddress:  f.probeAddr,
				PprofBindAddress:        f.pprofAddr,
				LeaderElection:          f.leaderElect,
				LeaderElectionID:        "herald-controller.notify.herald.dev",
				LeaderElectionNamespace: f.leaderElectNS,
				// The process ends as soon as the manager stops, so the
				// lease can be given up then: a rolling update hands over
				// at once instead of after the lease expires.
				LeaderElectionReleaseOnCancel: true,
			})
			if err != nil {
				return fmt.Errorf("creating manager: %w", err)
			}
			if _, err := controllers.Setup(mgr, opts); err != nil {
				return err
			}
			if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
				return err
			}
			if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
				return err
			}
			ctrl.Log.WithName("setup").Info("starting controller", "workers", opts.DefaultWorkers, "retry", opts.DefaultRetry)
			return mgr.Start(cmd.Context())
		},
	}
	f.Bind(cmd)
	return cmd
}
