package kubectlherald

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
)

// The inbox verbs read the caller's own inbox from Herald's aggregated
// API (inbox.herald.dev, served through kube-apiserver), as the user of
// the kubeconfig (or --as). Acknowledgement is not offered: the inbox API
// has read, archive and answers, and no separate acknowledgement.

func newInboxCommand(o *Options) *cobra.Command {
	var (
		follow, all bool
		output      string
	)
	cmd := &cobra.Command{
		Use:   "inbox",
		Short: "List your in-app notifications; --follow streams new ones",
		Long: `inbox lists the in-app notifications of the user of your kubeconfig (or
--as) in the namespace, or in every namespace with -A. --follow then keeps
printing new items and changes as they happen, over the inbox's
Server-Sent Events stream through kube-apiserver.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validateOutput(output); err != nil {
				return err
			}
			ns := ""
			if !all {
				var err error
				if ns, err = o.namespace(); err != nil {
					return err
				}
			}
			if follow {
				return o.followInbox(cmd.Context(), ns, output)
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			var list inboxv1.InboxItemList
			if err := c.List(cmd.Context(), &list, client.InNamespace(ns)); err != nil {
				return inboxError(err)
			}
			if output != "" {
				return o.printObject(output, &list, o.Out)
			}
			writeItems(o.Out, list.Items, o.Clock.Now())
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "after the list, print new items and changes as they happen")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "every namespace")
	addOutputFlag(cmd, &output, "items")
	cmd.AddCommand(newInboxGetCommand(o),
		newInboxMarkCommand(o, "read", "read", "Mark an item read", `{"status":{"read":true}}`),
		newInboxMarkCommand(o, "archive", "archived", "Archive an item", `{"status":{"archived":true}}`),
		newInboxMarkCommand(o, "ack", "acknowledged", "Acknowledge an item: final; it stops the notification's escalation and reminders for you", `{"status":{"acknowledged":true}}`),
		newInboxAnswerCommand(o))
	return cmd
}

func newInboxGetCommand(o *Options) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:               "get NAME",
		Short:             "Show one item of your inbox",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.completeItems,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateOutput(output); err != nil {
				return err
			}
			it, err := o.getItem(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if output != "" {
				return o.printObject(output, it, o.Out)
			}
			writeItem(o.Out, it)
			return nil
		},
	}
	addOutputFlag(cmd, &output, "the item")
	return cmd
}

func newInboxMarkCommand(o *Options, verb, done, short, patch string) *cobra.Command {
	return &cobra.Command{
		Use:               verb + " NAME",
		Short:             short,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.completeItems,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.patchItem(cmd.Context(), args[0], patch); err != nil {
				return err
			}
			fmt.Fprintf(o.Out, "inboxitem.inbox.herald.dev/%s %s\n", args[0], done)
			return nil
		},
	}
}

func newInboxAnswerCommand(o *Options) *cobra.Command {
	var comment string
	cmd := &cobra.Command{
		Use:   "answer NAME ACTION",
		Short: "Answer an approval in your inbox (an answer is final)",
		Args:  cobra.ExactArgs(2),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return o.completeItems(cmd, args, toComplete)
			}
			it, err := o.getItem(cmd.Context(), args[0])
			if err != nil || len(args) > 1 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var ids []string
			for _, a := range it.Spec.Actions {
				ids = append(ids, a.ID)
			}
			return ids, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			resp := map[string]any{"action": args[1]}
			if comment != "" {
				resp["comment"] = comment
			}
			data, err := json.Marshal(map[string]any{"status": map[string]any{"response": resp}})
			if err != nil {
				return err
			}
			if err := o.patchItem(cmd.Context(), args[0], string(data)); err != nil {
				return err
			}
			fmt.Fprintf(o.Out, "inboxitem.inbox.herald.dev/%s answered %q\n", args[0], args[1])
			return nil
		},
	}
	cmd.Flags().StringVar(&comment, "comment", "", "a comment with the answer (at most 1024 characters)")
	return cmd
}

func (o *Options) getItem(ctx context.Context, name string) (*inboxv1.InboxItem, error) {
	c, err := o.client()
	if err != nil {
		return nil, err
	}
	ns, err := o.namespace()
	if err != nil {
		return nil, err
	}
	var it inboxv1.InboxItem
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &it); err != nil {
		return nil, inboxError(err)
	}
	return &it, nil
}

func (o *Options) patchItem(ctx context.Context, name, patch string) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	ns, err := o.namespace()
	if err != nil {
		return err
	}
	it := &inboxv1.InboxItem{}
	it.Namespace, it.Name = ns, name
	if err := c.Patch(ctx, it, client.RawPatch("application/merge-patch+json", []byte(patch))); err != nil {
		return inboxError(err)
	}
	return nil
}

func (o *Options) completeItems(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	return o.completeNames(cmd, args, &inboxv1.InboxItemList{})
}

// inboxError says what to check when the inbox API is not there.
func inboxError(err error) error {
	if strings.Contains(err.Error(), "no matches for kind") || strings.Contains(err.Error(), "the server could not find the requested resource") {
		return fmt.Errorf("the inbox API (inbox.herald.dev/v1alpha1) is not served by this cluster: is `herald apiserver` installed and its APIService Available? (%w)", err)
	}
	return err
}

// followInbox prints the inbox stream: the current items (the stream's
// first event, a reset), then each new item, change and removal. When the
// stream ends (a server restarted, a proxy closed it) it reconnects with
// the last event id, so nothing is missed or repeated; a refusal (403, no
// inbox API) ends it with an error.
func (o *Options) followInbox(ctx context.Context, ns, output string) error {
	cfg, err := o.restConfig()
	if err != nil {
		return err
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	path := "/apis/inbox.herald.dev/v1alpha1/stream"
	if ns != "" {
		path = "/apis/inbox.herald.dev/v1alpha1/namespaces/" + ns + "/stream"
	}
	// cfg.Host may end with "/", and "//apis" is a 404.
	url := strings.TrimSuffix(cfg.Host, "/") + path + "?watch=1"
	lastID := ""
	backoff := time.Second
	for {
		err := o.followOnce(ctx, httpClient, url, output, &lastID)
		if ctx.Err() != nil {
			return nil
		}
		var refused *streamRefused
		if errors.As(err, &refused) {
			return err
		}
		if err != nil {
			fmt.Fprintf(o.ErrOut, "inbox stream: %v; reconnecting in %s\n", err, backoff)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// streamRefused is an answer other than 200 to opening the stream.
type streamRefused struct{ err error }

func (e *streamRefused) Error() string { return e.err.Error() }
func (e *streamRefused) Unwrap() error { return e.err }

// followOnce reads one connection of the stream, resuming after *lastID.
func (o *Options) followOnce(ctx context.Context, httpClient *http.Client, url, output string, lastID *string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *lastID != "" {
		req.Header.Set("Last-Event-ID", *lastID)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("opening the inbox stream: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &streamRefused{inboxError(fmt.Errorf("opening the inbox stream: %s: %s", resp.Status, strings.TrimSpace(string(body))))}
	}
	var printErr error
	err = readSSE(resp.Body, func(ev sseEvent) bool {
		printErr = o.printEvent(ev, output)
		if printErr == nil && ev.ID != "" {
			*lastID = ev.ID
		}
		return printErr == nil
	})
	if printErr != nil {
		return &streamRefused{printErr}
	}
	if err != nil {
		return fmt.Errorf("reading the inbox stream: %w", err)
	}
	return fmt.Errorf("the server ended the stream")
}

// printEvent prints one stream event: a reset as the list of items, the
// others as one line each (or the item as yaml/json).
func (o *Options) printEvent(ev sseEvent, output string) error {
	now := o.Clock.Now()
	switch ev.Type {
	case "reset":
		var list inboxv1.InboxItemList
		if err := json.Unmarshal([]byte(ev.Data), &list); err != nil {
			return fmt.Errorf("inbox stream: reset event: %w", err)
		}
		if output != "" {
			return o.printObject(output, &list, o.Out)
		}
		writeItems(o.Out, list.Items, now)
	case "item", "update", "remove":
		var it inboxv1.InboxItem
		if err := json.Unmarshal([]byte(ev.Data), &it); err != nil {
			return fmt.Errorf("inbox stream: %s event: %w", ev.Type, err)
		}
		if output != "" {
			return o.printObject(output, &it, o.Out)
		}
		label := map[string]string{"item": "NEW", "update": "CHANGED", "remove": "REMOVED"}[ev.Type]
		fmt.Fprintf(o.Out, "%-8s %s\t%s\t%s\t%s\t%s\n", label, it.Name, it.Spec.Title, it.Spec.Type, it.Spec.Category, itemState(&it))
	}
	return nil
}

func writeItems(w io.Writer, items []inboxv1.InboxItem, now time.Time) {
	if len(items) == 0 {
		fmt.Fprintln(w, "No items.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tTITLE\tTYPE\tCATEGORY\tSTATE\tAGE")
	for i := range items {
		it := &items[i]
		age := ""
		if t := it.Spec.CreatedTime; t != nil {
			age = duration.HumanDuration(now.Sub(t.Time))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", it.Namespace, it.Name, oneLine(it.Spec.Title, 60), it.Spec.Type, it.Spec.Category, itemState(it), age)
	}
	tw.Flush()
}

func writeItem(w io.Writer, it *inboxv1.InboxItem) {
	fmt.Fprintf(w, "Name:      %s/%s\nTitle:     %s\nType:      %s\nCategory:  %s\nState:     %s\n", it.Namespace, it.Name, it.Spec.Title, it.Spec.Type, it.Spec.Category, itemState(it))
	fmt.Fprintf(w, "Message:\n  %s\n", strings.ReplaceAll(it.Spec.Message, "\n", "\n  "))
	for _, a := range it.Spec.Actions {
		fmt.Fprintf(w, "Action:    %s (%s)\n", a.ID, a.Label)
	}
	if r := it.Status.Response; r != nil {
		fmt.Fprintf(w, "Answer:    %s %s\n", r.Action, r.Comment)
	}
}

func itemState(it *inboxv1.InboxItem) string {
	var s []string
	if it.Status.Read {
		s = append(s, "read")
	} else {
		s = append(s, "unread")
	}
	if it.Status.Archived {
		s = append(s, "archived")
	}
	if it.Status.Acknowledged {
		s = append(s, "acknowledged")
	}
	if r := it.Status.Response; r != nil {
		s = append(s, "answered "+r.Action)
	} else if len(it.Spec.Actions) > 0 {
		s = append(s, "awaiting answer")
	}
	return strings.Join(s, ",")
}
