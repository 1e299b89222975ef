package kubectlherald

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/pkg/notify"
)

// sendFlags are the parts of a Notification that `send` takes.
type sendFlags struct {
	key                      string
	users, roles, channels   []string
	typ, category            string
	title, message, template string
	params, actions          []string
	expiresIn                time.Duration
	output                   string
	w                        waitFlags
}

func newSendCommand(o *Options) *cobra.Command {
	f := &sendFlags{}
	cmd := &cobra.Command{
		Use:   "send",
		Short: "Send a Notification from flags or a NotificationTemplate",
		Long: `send creates a Notification in the namespace, through Herald's Go package
(pkg/notify), and prints it. --key identifies it: sending the same key twice
sends once (the default key is new on every run).`,
		Example: `  kubectl herald send --to alice --channel inApp --channel email --title "Deploy done" --message "v1.2 is live"
  kubectl herald send --role sre --type critical --template disk-full --param node=node-1 --wait
  kubectl herald send --role approvers --type approval --message "Ship v1.2?" --action approve=Approve --action reject=Reject`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validateOutput(f.output); err != nil {
				return err
			}
			ns, err := o.namespace()
			if err != nil {
				return err
			}
			b, err := f.builder(ns, o.Clock.Now())
			if err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			n, err := b.Send(cmd.Context(), c)
			if err != nil {
				return err
			}
			if f.output != "" {
				if err := o.printObject(f.output, n, o.Out); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(o.Out, "notification.notify.herald.dev/%s created\n", n.Name)
			}
			if !f.w.wait {
				return nil
			}
			return o.waitAndReport(cmd.Context(), ns, n.Name, f.w.timeout, nil)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.key, "key", "", "idempotency key (pkg/notify): the same key sends once; default: new each run")
	fl.StringSliceVar(&f.users, "to", nil, "Recipient names (repeat or comma-separate)")
	fl.StringSliceVar(&f.roles, "role", nil, "Recipient roles")
	fl.StringSliceVar(&f.channels, "channel", []string{string(notifyv1.ChannelInApp)}, "channels")
	fl.StringVar(&f.typ, "type", string(notifyv1.TypeInformational), "informational, warning, critical or approval")
	fl.StringVar(&f.category, "category", "", "category, for recipients' preferences")
	fl.StringVar(&f.title, "title", "", "title")
	fl.StringVar(&f.message, "message", "", "message")
	fl.StringVar(&f.template, "template", "", "NotificationTemplate name (instead of --title/--message)")
	fl.StringArrayVar(&f.params, "param", nil, "template parameter NAME=VALUE")
	fl.StringArrayVar(&f.actions, "action", nil, "approval action ID=LABEL")
	fl.DurationVar(&f.expiresIn, "expires-in", 0, "expire deliveries not made within this time")
	addOutputFlag(cmd, &f.output, "the created Notification")
	f.w.add(cmd, "the Notification has finished")
	_ = cmd.RegisterFlagCompletionFunc("channel", channelCompletion)
	_ = cmd.RegisterFlagCompletionFunc("type", cobra.FixedCompletions([]string{
		string(notifyv1.TypeInformational), string(notifyv1.TypeWarning), string(notifyv1.TypeCritical), string(notifyv1.TypeApproval),
	}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// builder checks the flags and turns them into a pkg/notify builder.
func (f *sendFlags) builder(ns string, now time.Time) (*notify.Builder, error) {
	if len(f.users) == 0 && len(f.roles) == 0 {
		return nil, fmt.Errorf("no audience: give --to and/or --role")
	}
	if f.template == "" && f.message == "" {
		return nil, fmt.Errorf("nothing to send: give --message (and --title), or --template")
	}
	if f.template != "" && (f.title != "" || f.message != "") {
		return nil, fmt.Errorf("--template excludes --title and --message")
	}
	key := f.key
	if key == "" {
		key = "kubectl-herald/" + now.UTC().Format("20060102T150405.000000000Z")
	}
	b := notify.New(ns, key).ToRoles(f.roles...).To(f.users...).Type(notifyv1.NotificationType(f.typ))
	for _, ch := range f.channels {
		b.On(notifyv1.Channel(ch))
	}
	if f.category != "" {
		b.Category(f.category)
	}
	if f.template != "" {
		params := map[string]string{}
		for _, p := range f.params {
			k, v, ok := strings.Cut(p, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("--param %q: want NAME=VALUE", p)
			}
			params[k] = v
		}
		b.Template(f.template, params)
	} else {
		if len(f.params) > 0 {
			return nil, fmt.Errorf("--param needs --template")
		}
		b.Title(f.title).Message(f.message)
	}
	var actions []notifyv1.Action
	for _, a := range f.actions {
		id, label, ok := strings.Cut(a, "=")
		if !ok || id == "" || label == "" {
			return nil, fmt.Errorf("--action %q: want ID=LABEL", a)
		}
		actions = append(actions, notifyv1.Action{ID: id, Label: label})
	}
	if len(actions) > 0 {
		b.Approval(actions...)
	}
	if f.expiresIn > 0 {
		b.ExpiresAt(now.Add(f.expiresIn))
	}
	return b, nil
}
