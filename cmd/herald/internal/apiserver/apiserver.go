// Package apiserver is `herald apiserver`: the inbox aggregated API
// server. It is a production code path: it must not import anything
// dev-only (internal/dev, test helpers, fakes); cmd/herald's
// TestProductionImports checks that.
package apiserver

import (
	"flag"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/herald-dev/herald/internal/inbox/apiserver"
)

// NewCommand returns the sub-command that runs the inbox aggregated API
// server (inbox.herald.dev/v1alpha1). kube-apiserver proxies to it through
// an APIService; see docs/inbox.md and config/apiserver/.
func NewCommand() *cobra.Command {
	o := apiserver.NewOptions()
	cmd := &cobra.Command{
		Use:   "apiserver",
		Short: "Run the inbox aggregated API server (inbox.herald.dev) that serves in-app notifications to their recipients",
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := o.NewServer()
			if err != nil {
				return err
			}
			klog.InfoS("starting inbox API server", "port", o.SecureServing.BindPort, "namespace", o.Namespace)
			return s.Run(cmd.Context())
		},
	}
	o.AddFlags(cmd.Flags())
	// The generic API server logs through klog; -v sets its verbosity.
	gofs := flag.NewFlagSet("klog", flag.ExitOnError)
	klog.InitFlags(gofs)
	cmd.Flags().AddGoFlagSet(gofs)
	return cmd
}
