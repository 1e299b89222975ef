//go:build e2e

// Package e2e drives the inbox page of `herald dev` in a real browser.
// Run it with `make test-e2e` (it needs Debian's chromium; .ci/run installs
// it). It starts the development environment in this process exactly as
// `herald dev` does, and applies the same manifests README.md's walkthrough
// shows.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/dev"
	heraldenvtest "github.com/herald-dev/herald/internal/dev/testutil/envtest"
)

const (
	// Budgets for conditions, not sleeps: each wait ends as soon as its
	// condition holds.
	uiTimeout  = 30 * time.Second
	apiTimeout = 60 * time.Second
)

func chromiumPath(t *testing.T) string {
	if p := os.Getenv("HERALD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium found: install Debian's chromium (apt-get install chromium; .ci/run does) or set HERALD_CHROMIUM")
	return ""
}

func repoRoot(t *testing.T) string {
	root, err := heraldenvtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// startEnv starts `herald dev`'s environment with its state in a temporary
// directory and its logs in logFile.
func startEnv(t *testing.T, ctx context.Context) *dev.Env {
	t.Helper()
	dir := t.TempDir()
	logFile, err := os.Create(filepath.Join(dir, "herald.log"))
	if err != nil {
		t.Fatal(err)
	}
	log := zap.New(zap.WriteTo(logFile), zap.UseDevMode(true))
	ctrl.SetLogger(log)
	klog.SetLogger(log.WithName("klog"))
	var out bytes.Buffer
	env, err := dev.Start(ctx, dev.Options{
		StateDir: filepath.Join(dir, "state"),
		Out:      &out,
		Log:      log,
	})
	if err != nil {
		t.Fatalf("starting the dev environment: %v\n%s", err, out.String())
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping the dev environment: %v", err)
		}
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			if len(b) > 20000 {
				b = b[len(b)-20000:]
			}
			t.Logf("--- herald dev output ---\n%s\n--- end of the log ---\n%s", out.String(), b)
		}
	})
	t.Logf("dev environment up in %s: %v", env.StartupTime.Round(time.Millisecond), env.Phases)
	return env
}

// applyFile does what `kubectl apply --server-side -f file` does in the
// demo namespace, for every document in file.
func applyFile(t *testing.T, ctx context.Context, env *dev.Env, file string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		u.SetNamespace(env.Namespace)
		if err := env.Client.Patch(ctx, &u, client.Apply, client.FieldOwner("kubectl"), client.ForceOwnership); err != nil {
			t.Fatalf("applying %s: %v", file, err)
		}
	}
}

// eventually polls cond until it returns nil or timeout passes.
func eventually(t *testing.T, ctx context.Context, timeout time.Duration, what string, cond func(context.Context) error) {
	t.Helper()
	var err error
	if wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		err = cond(ctx)
		return err == nil, nil
	}) != nil {
		t.Fatalf("%s: not within %s: %v", what, timeout, err)
	}
}

func TestInboxPage(t *testing.T) {
	chromium := chromiumPath(t)
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	env := startEnv(t, ctx)
	if env.InboxErr != nil {
		if strings.Contains(env.InboxErr.Error(), "no matches for kind") || strings.Contains(env.InboxErr.Error(), "the server could not find the requested resource") {
			t.Skipf("the inbox API (inbox.herald.dev) is missing, so there is no inbox page to drive: %v", env.InboxErr)
		}
		t.Fatalf("the inbox API server did not start: %v", env.InboxErr)
	}

	b, err := launchBrowser(chromium, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	p, err := b.newPage(ctx)
	if err != nil {
		t.Fatalf("%v\n%s", err, b.stderr.String())
	}
	defer func() {
		if t.Failed() {
			dir, _ := os.MkdirTemp("", "herald-e2e-")
			shot := filepath.Join(dir, "inbox.png")
			if err := p.screenshot(context.Background(), shot); err == nil {
				t.Logf("screenshot of the page at failure: %s", shot)
			}
			t.Logf("page problems: %v", p.Problems())
		}
	}()
	step := func(name string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("ok: %s", name)
	}

	step("open the inbox page", p.navigate(ctx, env.WebURL()))
	step("the demo users are offered", p.waitFor(ctx, `document.querySelectorAll('#users button[data-user]').length === 3`, uiTimeout))
	step("pick alice", p.click(ctx, `#users button[data-user="alice"]`))
	step("the stream is live", p.waitFor(ctx, `document.body.dataset.state === 'live'`, uiTimeout))

	// README.md's walkthrough: kubectl apply -f config/samples/dev/notification.yaml
	applyFile(t, ctx, env, filepath.Join(root, "config", "samples", "dev", "notification.yaml"))
	item := `li.item[data-notification="disk-full"]`
	step("the notification arrives in alice's inbox without a reload", p.waitFor(ctx, `!!document.querySelector('`+item+`[data-read="false"]')`, uiTimeout))
	var title string
	step("read its title", p.eval(ctx, `document.querySelector('`+item+` .title').textContent`, &title))
	if title != "Disk almost full on node-1" {
		t.Errorf("title shown = %q", title)
	}

	step("mark it read", p.click(ctx, item+` button[data-op="read"]`))
	step("the page shows it read", p.waitFor(ctx, `!!document.querySelector('`+item+`[data-read="true"]')`, uiTimeout))
	eventually(t, ctx, apiTimeout, "the in-app delivery records readTime", func(ctx context.Context) error {
		var d notifyv1.ChannelDelivery
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: "disk-full-inapp-alice"}, &d); err != nil {
			return err
		}
		if d.Status.ReadTime == nil {
			return errors.New("status.readTime is not set")
		}
		return nil
	})
	t.Log("ok: the delivery's status.readTime is set")

	// The other channels of the same notification reached their sinks.
	eventually(t, ctx, apiTimeout, "the notification is Delivered on every channel", func(ctx context.Context) error {
		var n notifyv1.Notification
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: "disk-full"}, &n); err != nil {
			return err
		}
		if !meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionDelivered) {
			return fmt.Errorf("conditions: %v", n.Status.Conditions)
		}
		return nil
	})
	checkSinks(t, ctx, env)

	// kubectl get inboxitems --as alice
	var items inboxv1.InboxItemList
	alice, err := client.New(env.UserConfig("alice"), client.Options{Scheme: dev.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.List(ctx, &items, client.InNamespace(env.Namespace)); err != nil {
		t.Fatalf("listing alice's inbox through kube-apiserver: %v", err)
	}
	if len(items.Items) != 1 || !items.Items[0].Status.Read {
		t.Errorf("alice's inbox through kube-apiserver = %+v", items.Items)
	}

	// README.md: kubectl apply -f config/samples/dev/approval.yaml, then
	// answer it on the page.
	applyFile(t, ctx, env, filepath.Join(root, "config", "samples", "dev", "approval.yaml"))
	approval := `li.item[data-notification="release-approval"]`
	step("the approval arrives", p.waitFor(ctx, `!!document.querySelector('`+approval+` button[data-answer="approve"]')`, uiTimeout))
	step("approve it", p.click(ctx, approval+` button[data-answer="approve"]`))
	step("the page shows the answer", p.waitFor(ctx, `!!document.querySelector('`+approval+` [data-response="approve"]')`, uiTimeout))
	if file := os.Getenv("HERALD_E2E_SCREENSHOT"); file != "" {
		step("screenshot to "+file, p.screenshot(ctx, file))
	}
	// kubectl wait --for=condition=Approved notification/release-approval
	eventually(t, ctx, apiTimeout, "the notification is Approved", func(ctx context.Context) error {
		var n notifyv1.Notification
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: "release-approval"}, &n); err != nil {
			return err
		}
		if !meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionApproved) {
			return fmt.Errorf("conditions: %v", n.Status.Conditions)
		}
		if len(n.Status.Responses) != 1 || n.Status.Responses[0].Username != "alice" {
			return fmt.Errorf("responses: %+v", n.Status.Responses)
		}
		return nil
	})
	t.Log("ok: release-approval is Approved by alice")

	// README.md: kubectl patch inboxitem ... --as <user> --type=merge.
	// Carol answers her own item through kube-apiserver, the other way;
	// alice's approval was recorded first and must stand.
	carol, err := client.New(env.UserConfig("carol"), client.Options{Scheme: dev.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	carolItem := &inboxv1.InboxItem{ObjectMeta: metav1.ObjectMeta{Namespace: env.Namespace, Name: "release-approval-inapp-carol"}}
	if err := carol.Patch(ctx, carolItem, client.RawPatch(types.MergePatchType, []byte(`{"status":{"response":{"action":"reject"}}}`))); err != nil {
		t.Fatalf("carol's answer through kube-apiserver: %v", err)
	}
	if carolItem.Status.Response == nil || carolItem.Status.Response.Action != "reject" {
		t.Errorf("carol's item after her answer: %+v", carolItem.Status)
	}
	eventually(t, ctx, apiTimeout, "both answers are recorded in the Notification", func(ctx context.Context) error {
		var n notifyv1.Notification
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: "release-approval"}, &n); err != nil {
			return err
		}
		if len(n.Status.Responses) != 2 {
			return fmt.Errorf("responses: %+v", n.Status.Responses)
		}
		if !meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionApproved) || meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionRejected) {
			return fmt.Errorf("the decision changed after a later answer: %v", n.Status.Conditions)
		}
		return nil
	})
	t.Log("ok: carol's answer through kube-apiserver is recorded; alice's approval stands")

	// Another user sees their own inbox only.
	step("switch to carol", p.click(ctx, `#users button[data-user="carol"]`))
	step("carol sees her own inbox: her approval item, not alice's warning",
		p.waitFor(ctx, `document.body.dataset.state === 'live' && !!document.querySelector('`+approval+`') && !document.querySelector('`+item+`')`, uiTimeout))

	if probs := p.Problems(); len(probs) > 0 {
		t.Errorf("the page reported problems: %v", probs)
	}
}

// checkSinks checks that email reached Mailpit and WhatsApp and webhook
// messages reached their sinks for alice and bob.
func checkSinks(t *testing.T, ctx context.Context, env *dev.Env) {
	t.Helper()
	eventually(t, ctx, apiTimeout, "Mailpit received the email for alice and bob", func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, env.MailpitURL()+"/api/v1/messages", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var list struct {
			Messages []struct {
				Subject string `json:"Subject"`
				To      []struct {
					Address string `json:"Address"`
				} `json:"To"`
			} `json:"messages"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
			return err
		}
		got := map[string]bool{}
		for _, m := range list.Messages {
			for _, to := range m.To {
				if strings.Contains(m.Subject, "Disk almost full") {
					got[to.Address] = true
				}
			}
		}
		if !got["alice@example.com"] || !got["bob@example.com"] {
			return fmt.Errorf("messages: %+v", list.Messages)
		}
		return nil
	})
	eventually(t, ctx, apiTimeout, "the WhatsApp and webhook sinks received alice's and bob's messages", func(context.Context) error {
		got := map[string]bool{}
		for _, m := range env.SinkMessages() {
			got[m.Sink+" "+m.To] = true
		}
		for _, want := range []string{"whatsapp +4915112345671", "whatsapp +4915112345672", "webhook alice", "webhook bob"} {
			if !got[want] {
				return fmt.Errorf("no %s in %v", want, env.SinkMessages())
			}
		}
		return nil
	})
	t.Log("ok: email in Mailpit, WhatsApp and webhook messages in the sinks")
}
