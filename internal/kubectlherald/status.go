package kubectlherald

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

func newStatusCommand(o *Options) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Show a Notification and its deliveries as a tree, per channel",
		Long: `status prints the Notification's phase and counts, then each channel's
deliveries: recipient, phase, reason, attempts, when the next attempt is due
and the last error. With -o yaml|json it prints the Notification and its
deliveries as a List.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.completeNotifications,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateOutput(output); err != nil {
				return err
			}
			c, ns, n, err := o.notification(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			var list notifyv1.ChannelDeliveryList
			if err := c.List(cmd.Context(), &list, client.InNamespace(ns),
				client.MatchingLabels{notifyv1.LabelNotification: notifyv1.LabelValue(n.Name)}); err != nil {
				return fmt.Errorf("listing deliveries of %s/%s: %w", ns, n.Name, err)
			}
			// The label is a sanitised name; the spec names the notification exactly.
			var own []notifyv1.ChannelDelivery
			for _, d := range list.Items {
				if d.Spec.Notification == n.Name {
					own = append(own, d)
				}
			}
			if output != "" {
				l := &metav1.List{TypeMeta: metav1.TypeMeta{Kind: "List", APIVersion: "v1"}}
				objs := []client.Object{n}
				for i := range own {
					objs = append(objs, &own[i])
				}
				for _, obj := range objs {
					raw, err := o.rawOf(obj)
					if err != nil {
						return err
					}
					l.Items = append(l.Items, raw)
				}
				return o.printObject(output, l, o.Out)
			}
			writeTree(o.Out, n, own, o.Clock.Now())
			return nil
		},
	}
	addOutputFlag(cmd, &output, "the Notification and its deliveries")
	return cmd
}

// writeTree prints n and its deliveries grouped by channel, recipients in
// name order. now dates the next attempts ("in 3s").
func writeTree(w io.Writer, n *notifyv1.Notification, deliveries []notifyv1.ChannelDelivery, now time.Time) {
	s := n.Status
	phase := string(s.Phase)
	if phase == "" {
		phase = "Pending"
	}
	fmt.Fprintf(w, "Notification %s/%s: %s\n", n.Namespace, n.Name, phase)
	d := s.Deliveries
	fmt.Fprintf(w, "  recipients %d; deliveries %d: %d succeeded, %d failed, %d expired, %d skipped, %d cancelled, %d pending, %d sending\n",
		s.Recipients, d.Total, d.Succeeded, d.Failed, d.Expired, d.Skipped, d.Cancelled, d.Pending, d.Sending)
	for _, c := range s.Conditions {
		fmt.Fprintf(w, "  %s=%s %s: %s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	if r := s.Retry; r != nil {
		fmt.Fprintf(w, "  last retry %q at %s: %d deliveries re-driven%s\n", r.Value, r.Time.UTC().Format(time.RFC3339), r.Deliveries, filterText(r))
	}
	if c := s.Cancel; c != nil {
		fmt.Fprintf(w, "  cancelled %q at %s", c.Value, c.Time.UTC().Format(time.RFC3339))
		if c.NotCreated > 0 {
			fmt.Fprintf(w, "; %d deliveries never created", c.NotCreated)
		}
		fmt.Fprintln(w)
	}
	byChannel := map[notifyv1.Channel][]notifyv1.ChannelDelivery{}
	var channels []notifyv1.Channel
	for _, dl := range deliveries {
		if _, ok := byChannel[dl.Spec.Channel]; !ok {
			channels = append(channels, dl.Spec.Channel)
		}
		byChannel[dl.Spec.Channel] = append(byChannel[dl.Spec.Channel], dl)
	}
	sort.Slice(channels, func(i, j int) bool { return channels[i] < channels[j] })
	for ci, ch := range channels {
		list := byChannel[ch]
		sort.Slice(list, func(i, j int) bool { return list[i].Spec.Recipient.Name < list[j].Spec.Recipient.Name })
		branch, stem := "├─", "│ "
		if ci == len(channels)-1 {
			branch, stem = "└─", "  "
		}
		fmt.Fprintf(w, "%s %s (%d)\n", branch, ch, len(list))
		for di, dl := range list {
			leaf := "├─"
			if di == len(list)-1 {
				leaf = "└─"
			}
			fmt.Fprintf(w, "%s %s %s\n", stem, leaf, deliveryLine(&dl, now))
		}
	}
}

// deliveryLine is one delivery: recipient, phase (reason), attempts, next
// attempt, provider and last error.
func deliveryLine(d *notifyv1.ChannelDelivery, now time.Time) string {
	s := d.Status
	phase := string(d.Phase())
	if d.Spec.DeliveredOnCreate && s.Phase == "" {
		phase += " (on create)"
	}
	if phase == "" {
		phase = "Pending"
	}
	parts := []string{d.Spec.Recipient.Name, phase}
	if s.Reason != "" {
		parts[1] += " (" + s.Reason + ")"
	}
	parts = append(parts, fmt.Sprintf("attempts %d", s.Attempts))
	if s.AttemptsBeforeRetry > 0 {
		parts[len(parts)-1] += fmt.Sprintf(" (%d before the last retry)", s.AttemptsBeforeRetry)
	}
	if t := s.NextAttemptTime; t != nil && !d.Phase().Finished() {
		if t.After(now) {
			parts = append(parts, "next attempt in "+duration.HumanDuration(t.Sub(now)))
		} else {
			parts = append(parts, "next attempt due")
		}
	}
	if s.Provider != "" {
		parts = append(parts, "provider "+s.Provider)
	}
	if s.LastError != "" && s.Phase != notifyv1.DeliverySucceeded {
		parts = append(parts, "last error: "+oneLine(s.LastError, 120))
	}
	return strings.Join(parts, "  ")
}

func filterText(r *notifyv1.RetryRecord) string {
	var f []string
	if r.Channel != "" {
		f = append(f, "channel "+string(r.Channel))
	}
	if r.Reason != "" {
		f = append(f, "reason "+r.Reason)
	}
	if len(f) == 0 {
		return ""
	}
	return " (" + strings.Join(f, ", ") + ")"
}

// oneLine keeps an error on one line of at most n characters.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}
