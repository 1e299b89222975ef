// Package kubectlherald is the kubectl plugin `kubectl herald`
// (cmd/kubectl-herald): Herald's own verbs for people at a terminal. It
// reads the user's kubeconfig with kubectl's flags (k8s.io/cli-runtime)
// and sends through pkg/notify.
package kubectlherald

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// Options are what every verb shares: kubectl's connection flags, the
// streams, and a clock for the times it prints and the values it sets.
type Options struct {
	ConfigFlags *genericclioptions.ConfigFlags
	genericiooptions.IOStreams
	Clock clock.Clock

	scheme *runtime.Scheme
}

// NewCommand returns `kubectl herald` with every verb.
func NewCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{
		ConfigFlags: genericclioptions.NewConfigFlags(true),
		IOStreams:   streams,
		Clock:       clock.RealClock{},
		scheme:      newScheme(),
	}
	cmd := &cobra.Command{
		Use:   "kubectl-herald",
		Short: "Send, inspect, re-drive and cancel Herald notifications; read your inbox",
		Long: `kubectl herald works with Herald's notifications in the current namespace
(or --namespace), with the identity and cluster of your kubeconfig.

  kubectl herald send --to alice --title "Deploy done" --message "v1.2 is live" --wait
  kubectl herald status disk-full
  kubectl herald retry disk-full --channel webhook
  kubectl herald cancel disk-full
  kubectl herald inbox --follow`,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl herald"},
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	o.ConfigFlags.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(newSendCommand(o), newStatusCommand(o), newRetryCommand(o), newCancelCommand(o), newInboxCommand(o))
	return cmd
}

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := notifyv1.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := inboxv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// restConfig is the user's kubeconfig with the flags applied.
func (o *Options) restConfig() (*rest.Config, error) {
	cfg, err := o.ConfigFlags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig: %w", err)
	}
	return cfg, nil
}

// client is a client for Herald's kinds, talking straight to the API
// server (no cache: one command, a few requests).
func (o *Options) client() (client.WithWatch, error) {
	cfg, err := o.restConfig()
	if err != nil {
		return nil, err
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	return client.NewWithWatch(cfg, client.Options{Scheme: o.scheme, HTTPClient: httpClient, Mapper: mapper})
}

// namespace is --namespace, else the kubeconfig context's, else default.
// notification reads the Notification name in the current namespace, and
// returns the client and namespace it used, for the verbs that act on one.
func (o *Options) notification(ctx context.Context, name string) (client.WithWatch, string, *notifyv1.Notification, error) {
	c, err := o.client()
	if err != nil {
		return nil, "", nil, err
	}
	ns, err := o.namespace()
	if err != nil {
		return nil, "", nil, err
	}
	var n notifyv1.Notification
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &n); err != nil {
		return nil, "", nil, fmt.Errorf("reading notification %s/%s: %w", ns, name, err)
	}
	return c, ns, &n, nil
}

func (o *Options) namespace() (string, error) {
	ns, _, err := o.ConfigFlags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", fmt.Errorf("reading the namespace from kubeconfig: %w", err)
	}
	return ns, nil
}

// printObject prints obj as yaml or json (kind and apiVersion set from the
// scheme, as kubectl does).
func (o *Options) printObject(format string, obj runtime.Object, w io.Writer) error {
	var p printers.ResourcePrinter
	switch format {
	case "yaml":
		p = &printers.YAMLPrinter{}
	case "json":
		p = &printers.JSONPrinter{}
	default:
		return fmt.Errorf("unknown output format %q: use yaml or json", format)
	}
	p = printers.NewTypeSetter(o.scheme).ToPrinter(p)
	return p.PrintObj(obj, w)
}

// addOutputFlag adds -o yaml|json with completion.
func addOutputFlag(cmd *cobra.Command, target *string, what string) {
	cmd.Flags().StringVarP(target, "output", "o", "", "print "+what+" as yaml or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"yaml", "json"}, cobra.ShellCompDirectiveNoFileComp))
}

func validateOutput(format string) error {
	switch format {
	case "", "yaml", "json":
		return nil
	}
	return fmt.Errorf("unknown output format %q: use yaml or json", format)
}

// completeNotifications completes the names of the namespace's
// Notifications.
func (o *Options) completeNotifications(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	return o.completeNames(cmd, args, &notifyv1.NotificationList{})
}

// completeNames offers the names of the objects of list's kind in the
// current namespace for a verb's one NAME argument. Completion runs on
// every TAB, so the list is bounded in time.
func (o *Options) completeNames(cmd *cobra.Command, args []string, list client.ObjectList) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
	defer cancel()
	c, err := o.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	ns, err := o.namespace()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	names := make([]string, 0, len(items))
	for _, it := range items {
		if m, err := meta.Accessor(it); err == nil {
			names = append(names, m.GetName())
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
