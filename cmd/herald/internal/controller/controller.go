// Package controller is `herald controller`: the controller manager that
// fans out and delivers notifications. It is a production code path: it
// must not import anything dev-only (internal/dev, test helpers, fakes);
// cmd/herald's TestProductionImports checks that.
package controller

import (
	"flag"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/controllers"
	"github.com/herald-dev/herald/internal/apflimit"
)

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

// NewCommand returns the controller sub-command. Its flags are
// controllers.Options bound by AddFlags, with DefaultOptions() as defaults.
func NewCommand() *cobra.Command {
	opts := controllers.DefaultOptions()
	var logOpts zap.Options
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the controllers that fan out and deliver notifications",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctrl.SetLogger(zap.New(zap.UseFlagOptions(&logOpts)))
			if err := opts.Complete(); err != nil {
				return err
			}
			cfg, err := ctrl.GetConfig()
			if err != nil {
				return fmt.Errorf("loading kubeconfig: %w", err)
			}
			m := opts.Manager
			shard, err := m.ShardSelector()
			if err != nil {
				return err
			}
			leaderElectionCfg, err := apflimit.Configure(cfg, m.ClientRate())
			if err != nil {
				return err
			}
			mgr, err := ctrl.NewManager(cfg, ctrl.Options{
				Scheme:                  Scheme(),
				Cache:                   controllers.ShardCacheOptions(shard),
				Metrics:                 metricsserver.Options{BindAddress: m.MetricsAddr},
				HealthProbeBindAddress:  m.ProbeAddr,
				PprofBindAddress:        m.PprofAddr,
				LeaderElection:          m.LeaderElection,
				LeaderElectionConfig:    leaderElectionCfg,
				LeaderElectionID:        m.LeaderElectionID,
				LeaderElectionNamespace: m.LeaderElectionNamespace,
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
			ctrl.Log.WithName("setup").Info("starting controller", "shard", m.WatchLabelSelector, "workers", opts.DefaultWorkers, "retry", opts.DefaultRetry, "kubeAPIQPS", m.QPS, "kubeAPIAdaptive", m.AdaptiveQPS)
			return mgr.Start(cmd.Context())
		},
	}
	opts.AddFlags(cmd.Flags())
	gofs := flag.NewFlagSet("zap", flag.ExitOnError)
	logOpts.BindFlags(gofs)
	cmd.Flags().AddGoFlagSet(gofs)
	return cmd
}
