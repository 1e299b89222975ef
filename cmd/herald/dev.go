//go:build !nodev

package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/herald-dev/herald/controllers"
	"github.com/herald-dev/herald/internal/dev"
)

// newDevCommand runs a complete local Herald: control plane, controllers,
// inbox API server, sinks for every channel, demo data and an inbox page.
// See internal/dev and docs/operations.md.
//
// This file is the only one of the binary that imports internal/dev; a
// build with -tags nodev leaves it out (see nodev.go).
func newDevCommand() *cobra.Command {
	copts := controllers.DefaultOptions()
	// The dev sinks (Mailpit, WhatsApp, webhook) listen on loopback, which
	// the egress policy refuses by default.
	copts.EgressAllow = dev.LoopbackEgress()
	var logOpts zap.Options
	o := dev.Options{}
	var inbox, demo, logToStderr bool
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run Herald locally: etcd, kube-apiserver, the controllers, the inbox, email/WhatsApp/webhook sinks and a demo namespace",
		Long: `Run Herald locally with no cluster and no containers.

herald dev starts etcd and kube-apiserver (built by 'make envtest-bins'),
installs the CRDs, runs the controllers and the inbox API server in this
process, starts Mailpit as the email sink and local WhatsApp and webhook
sinks, creates the demo namespace with Recipients alice, bob and carol and a
default provider per channel, writes an admin kubeconfig, and prints what to
run next. It serves a small inbox web page on localhost.

Everything is kept in --state-dir; a second start resumes with the same
etcd data and ports. Ctrl-C stops everything.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := copts.Complete(); err != nil {
				return err
			}
			o.Controller = copts
			o.MetricsBindAddress = copts.Manager.MetricsAddr
			o.DisableInbox, o.DisableDemo = !inbox, !demo
			o.Out = cmd.OutOrStdout()
			// When the terminal's output goes away (`make dev | tee` and
			// Ctrl-C), writes must fail rather than kill the process
			// before it has stopped its children.
			signal.Ignore(syscall.SIGPIPE)
			if o.Reset {
				if err := dev.ResetState(o.StateDir); err != nil {
					return err
				}
				o.Reset = false
			}
			// The controllers' and the inbox server's logs go to a file, so
			// that the terminal shows the banner and what the sinks receive.
			var logw io.Writer = os.Stderr
			if !logToStderr {
				if err := os.MkdirAll(filepath.Join(o.StateDir, "logs"), 0o700); err != nil {
					return err
				}
				// Appended to, not truncated: a second `herald dev` on the same
				// directory may be refused and must not wipe the first's log.
				lf, err := os.OpenFile(filepath.Join(o.StateDir, "logs", "herald.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
				if err != nil {
					return err
				}
				defer lf.Close()
				fmt.Fprintf(lf, "--- herald dev (pid %d) starting at %s\n", os.Getpid(), time.Now().Format(time.RFC3339))
				logw = lf
			}
			// UseFlagOptions replaces every option, so it comes first.
			log := zap.New(zap.UseFlagOptions(&logOpts), zap.WriteTo(logw))
			ctrl.SetLogger(log)
			klog.SetLogger(log.WithName("klog"))
			o.Log = log
			if err := dev.Run(cmd.Context(), o); err != nil {
				return fmt.Errorf("herald dev: %w", err)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.StateDir, "state-dir", dev.DefaultStateDir, "Directory for all state (etcd data, ports, kubeconfig, logs, Mailpit's messages); a second start resumes from it.")
	fs.BoolVar(&o.Reset, "reset", false, "Delete the state directory first and start with an empty etcd.")
	fs.StringVar(&o.Namespace, "namespace", dev.DefaultNamespace, "Demo namespace: Recipients alice, bob and carol and one default provider per channel.")
	fs.IntVar(&o.Ports.Web, "web-port", 0, "Port of the inbox web page (default: the port this state directory used before, else a free one).")
	fs.BoolVar(&inbox, "inbox", true, "Run the inbox aggregated API server (inbox.herald.dev) behind kube-apiserver.")
	fs.BoolVar(&demo, "demo", true, "Create the demo Recipients and providers.")
	fs.StringVar(&o.BinDir, "bin-dir", "", "Directory with etcd and kube-apiserver (default: $KUBEBUILDER_ASSETS, else bin/k8s).")
	fs.StringVar(&o.Mailpit, "mailpit", "", "Mailpit binary (default: $HERALD_MAILPIT, else bin/mailpit).")
	fs.StringVar(&o.CRDDir, "crd-dir", "", "CRD manifests (default: config/crd/bases of the repository).")
	fs.BoolVar(&o.BuildMissing, "build-missing", true, "Build missing etcd, kube-apiserver and Mailpit with 'make envtest-bins' (several minutes the first time).")
	fs.BoolVar(&logToStderr, "log-to-stderr", false, "Write the controllers' and inbox server's logs to stderr instead of <state-dir>/logs/herald.log.")
	// The controller's own flags (workers, retry policy, logging) apply as
	// they do to `herald controller`.
	copts.AddFlags(fs)
	gofs := flag.NewFlagSet("zap", flag.ExitOnError)
	logOpts.BindFlags(gofs)
	fs.AddGoFlagSet(gofs)
	metrics := fs.Lookup("metrics-bind-address")
	metrics.DefValue = "0"
	_ = metrics.Value.Set("0")
	metrics.Usage = "Address of the controllers' Prometheus metrics endpoint; 0 disables it."
	for _, name := range []string{"health-probe-bind-address", "leader-elect", "leader-election-namespace", "leader-election-id", "watch-label-selector", "shared-status", "kube-api-qps", "kube-api-burst", "kube-api-adaptive"} {
		_ = fs.MarkHidden(name)
	}
	return cmd
}
