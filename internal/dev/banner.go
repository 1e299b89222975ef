package dev

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// relPath shows path relative to the working directory when it is inside
// it, so the printed commands can be pasted in the repository.
func relPath(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	rel, err := filepath.Rel(wd, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		return path
	}
	return rel
}

// samplesDir is the demo manifests, relative to the repository.
const samplesDir = "config/samples/dev"

// PrintBanner writes what runs where and exactly what to run next.
func (e *Env) PrintBanner(w io.Writer) {
	how := "started"
	if e.Resumed {
		how = "resumed (same etcd data; --reset starts afresh)"
	}
	fmt.Fprintf(w, "\nHerald dev environment is ready: %s in %.1fs, state in %s\n", how, e.StartupTime.Seconds(), relPath(e.StateDir))
	for _, n := range e.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	samples := samplesDir
	if e.opts.RepoRoot != "" {
		samples = relPath(filepath.Join(e.opts.RepoRoot, samplesDir))
	}
	kubeconfig := e.Kubeconfig
	if !filepath.IsAbs(relPath(kubeconfig)) {
		kubeconfig = "$PWD/" + relPath(kubeconfig)
	}

	fmt.Fprintf(w, "\nIn another terminal:\n\n")
	lines := []string{
		"export KUBECONFIG=" + kubeconfig + "   # admin; default namespace " + e.Namespace,
		"kubectl get recipients,notificationproviders",
		"kubectl apply -f " + samples + "/notification.yaml",
		"kubectl get notifications -w                # Ctrl-C when it is Delivered",
		"kubectl get channeldeliveries",
	}
	if e.InboxErr == nil {
		lines = append(lines,
			"kubectl get inboxitems --as alice",
			"kubectl apply -f "+samples+"/approval.yaml",
			"kubectl wait --for=condition=Approved notification/release-approval --timeout=10m   # answer it on the inbox page",
		)
	}
	for _, l := range lines {
		fmt.Fprintf(w, "  %s\n", l)
	}

	fmt.Fprintf(w, "\nWhere things are:\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if e.InboxErr == nil {
		fmt.Fprintf(tw, "  inbox page\t%s\tpick a user, watch items arrive, mark read, answer approvals (dev-only proxy, impersonates the user)\n", e.WebURL())
	} else {
		fmt.Fprintf(tw, "  inbox page\t%s\tthe inbox API is not available: %v\n", e.WebURL(), e.InboxErr)
	}
	fmt.Fprintf(tw, "  email (Mailpit)\t%s\tevery email the \"%s\" provider sends\n", e.MailpitURL(), ProviderEmail)
	fmt.Fprintf(tw, "  WhatsApp sink\t%s\ta WAHA API (provider \"%s\"); messages are printed here and on the page\n", e.WhatsAppURL(), ProviderWhatsApp)
	fmt.Fprintf(tw, "  webhook sink\t%s\tprovider \"%s\"; requests are printed here and on the page\n", e.WebhookURL(), ProviderWebhook)
	fmt.Fprintf(tw, "  Slack sink\t%s\tSlack's chat.postMessage (provider \"%s\"); messages are printed here and on the page\n", e.SlackURL(), ProviderSlack)
	fmt.Fprintf(tw, "  Teams sink\t%s\ta Workflows webhook per room (provider \"%s\", room %s); cards are printed here and on the page\n", e.TeamsURL(), ProviderTeams, DemoTeamsRoom)
	fmt.Fprintf(tw, "  Telegram sink\t%s\tthe Bot API's sendMessage (provider \"%s\"); messages are printed here and on the page\n", e.TelegramURL(), ProviderTelegram)
	fmt.Fprintf(tw, "  kube-apiserver\t%s\t\n", e.APIServerURL())
	fmt.Fprintf(tw, "  logs\t%s\tcontrollers and inbox in herald.log\n", relPath(e.state.path("logs")))
	_ = tw.Flush()

	if e.InboxErr == nil {
		fmt.Fprintf(w, "\nThe inbox as Server-Sent Events (alice), through kube-apiserver:\n\n")
		pki := relPath(e.state.path("pki"))
		fmt.Fprintf(w, "  curl -N --cacert %[1]s/ca.crt --cert %[1]s/admin.crt --key %[1]s/admin.key -H 'Impersonate-User: alice' \\\n      %[2]s/apis/inbox.herald.dev/v1alpha1/namespaces/%[3]s/stream\n", pki, e.APIServerURL(), e.Namespace)
		fmt.Fprintf(w, "  curl -N %s/api/users/alice/stream        # the same through the page's proxy\n", e.WebURL())
	}
	fmt.Fprintf(w, "\nCtrl-C stops everything; `herald dev` again resumes where you left off.\n\n")
}

// Run starts the environment, prints the banner, and serves until ctx ends
// (Ctrl-C) or a part fails; then it stops everything.
func Run(ctx context.Context, opts Options) error {
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	e, err := Start(ctx, opts)
	if err != nil {
		if ctx.Err() != nil {
			// Ctrl-C during start-up: Start has stopped what it started.
			fmt.Fprintf(out, "herald dev: stopped during start-up\n")
			return nil
		}
		return err
	}
	e.PrintBanner(out)
	var runErr error
	select {
	case <-ctx.Done():
		fmt.Fprintf(out, "\nherald dev: stopping\n")
	case runErr = <-e.Failed():
		fmt.Fprintf(out, "\nherald dev: %v; stopping\n", runErr)
	}
	if err := e.Stop(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr == nil {
		fmt.Fprintf(out, "herald dev: stopped; state kept in %s\n", relPath(e.StateDir))
	}
	return runErr
}
