// Package apiserver is `herald apiserver`: the inbox aggregated API
// server. It is a production code path: it must not import anything
// dev-only (internal/dev, test helpers, fakes); cmd/herald's
// TestProductionImports checks that.
package apiserver

import (
	"flag"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/herald-dev/herald/internal/inbox/apiserver"
	"github.com/herald-dev/herald/internal/inbox/servingcert"
)

// NewCommand returns the sub-command that runs the inbox aggregated API
// server (inbox.herald.dev/v1alpha1). kube-apiserver proxies to it through
// an APIService; see docs/inbox.md and config/apiserver/.
func NewCommand() *cobra.Command {
	o := apiserver.NewOptions()
	rotation := servingcert.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "apiserver",
		Short: "Run the inbox aggregated API server (inbox.herald.dev) that serves in-app notifications to their recipients",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if rotation.Enabled() {
				// The certificate comes from Herald's own rotator: start
				// it, and serve once the Secret's files are mounted and
				// the APIService trusts their CA.
				cfg, err := o.ClientConfig()
				if err != nil {
					return err
				}
				ctrl.SetLogger(klog.Background().WithName("cert-rotation"))
				certFile, keyFile := o.SecureServing.ServerCert.CertKey.CertFile, o.SecureServing.ServerCert.CertKey.KeyFile
				ready, errc, err := rotation.Start(ctx, cfg, certFile, keyFile)
				if err != nil {
					return err
				}
				klog.InfoS("waiting for the serving certificate", "secret", rotation.Secret, "apiService", rotation.APIService, "dir", certFile)
				select {
				case <-ready:
				case err := <-errc:
					return fmt.Errorf("before serving: %w", err)
				case <-ctx.Done():
					return nil
				}
			}
			s, err := o.NewServer()
			if err != nil {
				return err
			}
			klog.InfoS("starting inbox API server", "port", o.SecureServing.BindPort, "namespace", o.Namespace)
			return s.Run(ctx)
		},
	}
	o.AddFlags(cmd.Flags())
	rotation.AddFlags(cmd.Flags())
	// The generic API server logs through klog; -v sets its verbosity.
	gofs := flag.NewFlagSet("klog", flag.ExitOnError)
	klog.InitFlags(gofs)
	cmd.Flags().AddGoFlagSet(gofs)
	return cmd
}
