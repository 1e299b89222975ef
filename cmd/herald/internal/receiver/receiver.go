// Package receiver is `herald receiver`: the HTTP endpoint for WhatsApp
// providers' status callbacks (delivery receipts), package
// internal/receiver. It is a production code path: it must not import
// anything dev-only; cmd/herald's TestProductionImports checks that.
package receiver

import (
	"flag"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/apflimit"
	"github.com/herald-dev/herald/internal/receiver"
)

// scheme holds the types the receiver reads: Secrets, Events and Herald's
// kinds.
func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := notifyv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// NewCommand returns the receiver sub-command. Its flags are
// receiver.Options bound by AddFlags, with DefaultOptions() as defaults.
func NewCommand() *cobra.Command {
	opts := receiver.DefaultOptions()
	var logOpts zap.Options
	cmd := &cobra.Command{
		Use:   "receiver",
		Short: "Serve the status callbacks of WhatsApp providers and record delivery receipts",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctrl.SetLogger(zap.New(zap.UseFlagOptions(&logOpts)))
			if err := opts.Validate(); err != nil {
				return err
			}
			cfg, err := ctrl.GetConfig()
			if err != nil {
				return fmt.Errorf("loading kubeconfig: %w", err)
			}
			// No leader election: the config it would use is not needed.
			if _, err := apflimit.Configure(cfg, opts.ClientRate()); err != nil {
				return err
			}
			mgr, err := ctrl.NewManager(cfg, ctrl.Options{
				Scheme:                 scheme(),
				Cache:                  receiver.CacheOptions(),
				Metrics:                metricsserver.Options{BindAddress: opts.MetricsAddr},
				HealthProbeBindAddress: opts.ProbeAddr,
			})
			if err != nil {
				return fmt.Errorf("creating manager: %w", err)
			}
			if _, err := receiver.Setup(mgr, opts); err != nil {
				return err
			}
			if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
				return err
			}
			// Ready once the caches have synced: before that every
			// callback would look like an unknown message.
			if err := mgr.AddReadyzCheck("readyz", func(r *http.Request) error {
				if !mgr.GetCache().WaitForCacheSync(r.Context()) {
					return fmt.Errorf("caches not synced")
				}
				return nil
			}); err != nil {
				return err
			}
			ctrl.Log.WithName("setup").Info("starting receiver", "address", opts.BindAddress, "publicURL", opts.PublicURL)
			return mgr.Start(cmd.Context())
		},
	}
	opts.AddFlags(cmd.Flags())
	gofs := flag.NewFlagSet("zap", flag.ExitOnError)
	logOpts.BindFlags(gofs)
	cmd.Flags().AddGoFlagSet(gofs)
	return cmd
}
