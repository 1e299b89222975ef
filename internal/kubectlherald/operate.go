package kubectlherald

import (
	"context"
	"encoding/json"
	"fmt"
	"os/user"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/pkg/notify"
)

// waitFlags are --wait and --timeout, shared by the verbs that can wait
// for a Notification's outcome.
type waitFlags struct {
	wait    bool
	timeout time.Duration
}

func (f *waitFlags) add(cmd *cobra.Command, what string) {
	cmd.Flags().BoolVar(&f.wait, "wait", false, "wait until "+what+", then print the outcome")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 10*time.Minute, "how long --wait waits")
}

func newRetryCommand(o *Options) *cobra.Command {
	var (
		channel, reason string
		w               waitFlags
	)
	cmd := &cobra.Command{
		Use:   "retry NAME",
		Short: "Re-drive a Notification's Failed and Expired deliveries",
		Long: `retry gives the Notification's Failed and Expired deliveries (optionally only
one channel's, or only those with one reason) a fresh set of attempts. Their
history keeps the old attempts; the Notification goes back to Dispatching and
finishes again. It sets the annotation notify.herald.dev/retry to the current
time: each new value re-drives once.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.completeNotifications,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, n, err := o.notification(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if n.Status.Cancel != nil || n.Annotations[notifyv1.AnnotationCancel] != "" {
				return fmt.Errorf("notification %s/%s was cancelled: a cancelled notification is not re-driven; send a new one", ns, args[0])
			}
			if channel != "" && !slices.Contains(notifyv1.Channels, notifyv1.Channel(channel)) {
				return fmt.Errorf("--channel %q: not a channel (%s)", channel, strings.Join(channelNames(), ", "))
			}
			value := notify.RetryValue(o.Clock.Now())
			filter := notify.RetryFilter{Channel: notifyv1.Channel(channel), Reason: reason}
			if err := notify.Retry(cmd.Context(), c, ns, args[0], value, filter); err != nil {
				return err
			}
			fmt.Fprintf(o.Out, "notification.notify.herald.dev/%s retry requested (%s=%s)\n", args[0], notifyv1.AnnotationRetry, value)
			if !w.wait {
				return nil
			}
			return o.waitAndReport(cmd.Context(), ns, args[0], w.timeout, func(n *notifyv1.Notification) bool {
				return n.Status.Retry != nil && n.Status.Retry.Value == value
			})
		},
	}
	cmd.Flags().StringVar(&channel, "channel", "", "re-drive only this channel's deliveries")
	cmd.Flags().StringVar(&reason, "reason", "", "re-drive only deliveries with this reason (e.g. AttemptsExhausted, Expired)")
	_ = cmd.RegisterFlagCompletionFunc("channel", channelCompletion)
	_ = cmd.RegisterFlagCompletionFunc("reason", cobra.FixedCompletions([]string{
		notifyv1.ReasonAttemptsExhausted, notifyv1.ReasonPermanentFailure, notifyv1.ReasonRecipientRejected,
		notifyv1.ReasonProviderNotReady, notifyv1.ReasonExpired,
	}, cobra.ShellCompDirectiveNoFileComp))
	w.add(cmd, "the re-driven deliveries have finished")
	return cmd
}

func newCancelCommand(o *Options) *cobra.Command {
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "cancel NAME",
		Short: "Cancel a Notification: nothing not yet sent is sent",
		Long: `cancel stops the Notification: its fan-out creates no more deliveries, no
delivery starts another attempt, and every delivery not yet sent ends
Cancelled. A send already in flight finishes and is recorded. The
Notification ends Cancelled. It cannot be undone. It sets the annotation
notify.herald.dev/cancel to who asked and when.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.completeNotifications,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, n, err := o.notification(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if n.Status.Phase.Finished() {
				fmt.Fprintf(o.ErrOut, "notification %s/%s has already finished (%s): there is nothing left to cancel; the cancel is only recorded\n", ns, args[0], n.Status.Phase)
			}
			value := "kubectl herald cancel at " + o.Clock.Now().UTC().Format(time.RFC3339)
			if u, err := user.Current(); err == nil && u.Username != "" {
				value = "by " + u.Username + ", " + value
			}
			if err := notify.Cancel(cmd.Context(), c, ns, args[0], value); err != nil {
				return err
			}
			fmt.Fprintf(o.Out, "notification.notify.herald.dev/%s cancel requested\n", args[0])
			if !w.wait {
				return nil
			}
			return o.waitAndReport(cmd.Context(), ns, args[0], w.timeout, func(n *notifyv1.Notification) bool {
				return n.Status.Cancel != nil
			})
		},
	}
	w.add(cmd, "the Notification has finished")
	return cmd
}

// waitAndReport waits for the Notification to finish (and done) and
// prints its outcome; it fails when the wait times out.
func (o *Options) waitAndReport(ctx context.Context, ns, name string, timeout time.Duration, done func(*notifyv1.Notification) bool) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	n, err := notify.WaitFinished(ctx, c, ns, name, 250*time.Millisecond, done)
	if err != nil {
		return err
	}
	d := n.Status.Deliveries
	fmt.Fprintf(o.Out, "notification.notify.herald.dev/%s %s: %d succeeded, %d failed, %d expired, %d skipped, %d cancelled\n",
		name, n.Status.Phase, d.Succeeded, d.Failed, d.Expired, d.Skipped, d.Cancelled)
	return nil
}

func channelCompletion(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return channelNames(), cobra.ShellCompDirectiveNoFileComp
}

func channelNames() []string {
	out := make([]string, 0, len(notifyv1.Channels))
	for _, c := range notifyv1.Channels {
		out = append(out, string(c))
	}
	return out
}

// rawOf encodes obj, its kind and apiVersion set, for a metav1.List (whose
// printers encode Raw and ignore Object).
func (o *Options) rawOf(obj client.Object) (runtime.RawExtension, error) {
	gvk, err := apiutil.GVKForObject(obj, o.scheme)
	if err != nil {
		return runtime.RawExtension{}, err
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	data, err := json.Marshal(obj)
	return runtime.RawExtension{Raw: data}, err
}
