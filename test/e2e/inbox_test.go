//go:build e2e

// Package e2e drives the inbox page of `herald dev` in a real browser:
// Chromium, over the DevTools protocol with chromedp (no Node.js, no
// chromedriver). Run it with `make test-e2e` (it needs Debian's chromium;
// .ci/run installs it). It starts the development environment in this
// process exactly as `herald dev` does, and applies the same manifests
// README.md's walkthrough shows.
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
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

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
	"github.com/herald-dev/herald/controllers/notification"
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

// startBrowser starts Chromium headless and opens the tab the test drives.
// It returns the tab's context, the page's uncaught exceptions and
// console errors so far, and a func that closes the browser.
func startBrowser(t *testing.T, ctx context.Context, chromium string) (tab context.Context, problems func() []string, closeBrowser func()) {
	t.Helper()
	var output lockedBuffer
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		// We run as root, where Chromium's sandbox cannot start.
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		// The machine has no internet: no QUIC, no background requests,
		// no component or sync updates, no extensions or default apps.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1280, 900),
		// No UserDataDir: the allocator gives Chromium a fresh temporary
		// profile and removes it, and Chromium's leftover children, when
		// the browser exits.
		chromedp.CombinedOutput(&output),
	)
	var mu sync.Mutex
	var probs []string
	note := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		probs = append(probs, s)
	}
	tab, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithListener(func(ev any) {
		// Called in the tab's event loop, from its first event on: it
		// must return at once.
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := "exception: " + d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			note(msg)
		case *runtime.EventConsoleAPICalled:
			if ev.Type != runtime.ConsoleAPICalledTypeError {
				return
			}
			var args []string
			for _, a := range ev.Args {
				if len(a.Value) > 0 {
					args = append(args, string(a.Value))
				} else {
					args = append(args, a.Description)
				}
			}
			note(fmt.Sprintf("console.error: %v", args))
		}
	}))
	closeBrowser = func() {
		// Ask Chromium to exit; cancelTab kills it if it has not within
		// ten seconds. cancelAlloc waits for it and removes its profile.
		closeCtx, cancel := context.WithTimeout(tab, 10*time.Second)
		defer cancel()
		_ = chromedp.Cancel(closeCtx)
		cancelTab()
		cancelAlloc()
	}
	// The first action starts Chromium and attaches to the tab. The
	// browser lives as long as the context given here, so no shorter
	// timeout: each step below has its own.
	if err := chromedp.Do(tab); err != nil {
		closeBrowser()
		t.Fatalf("starting %s: %v\n%s", chromium, err, output.String())
	}
	problems = func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), probs...)
	}
	return tab, problems, closeBrowser
}

// lockedBuffer collects Chromium's output, which the allocator writes
// from its own goroutine, for the report when Chromium does not start.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.b.Len() < 1<<20 {
		w.b.Write(p)
	}
	return len(p), nil
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// waitFor waits until the JavaScript predicate is truthy in the page,
// checking it whenever the DOM changes, for at most uiTimeout.
func waitFor(predicate string) chromedp.Action[chromedp.Void] {
	return explain("waiting for "+predicate,
		chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(uiTimeout)))
}

// click clicks the centre of the first element matching the CSS selector
// with real mouse events, as a person would. It waits until the element
// is visible, enabled and not covered by another element (the page
// disables an item's buttons while it saves a change; a click on a covered
// element would land on whatever covers it), and finds where to click in
// the same check: a query for the node followed by a separate click on it
// would fail if the page replaced the node in between, where a person's
// click lands on whatever is at that point.
func click(selector string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		// The layout can change without a DOM mutation, so this checks on
		// every animation frame; it scrolls the element into view first
		// where it is outside the window.
		at, err := chromedp.PollFunction[struct{ X, Y float64 }](`(sel) => {
  const el = document.querySelector(sel);
  if (!el || el.disabled) return false;
  const r = el.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) return false;
  if (r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth) {
    el.scrollIntoView({ block: 'center', inline: 'center' });
    return false;
  }
  const x = r.left + r.width / 2, y = r.top + r.height / 2;
  const hit = document.elementFromPoint(x, y);
  return !!hit && el.contains(hit) && { X: x, Y: y };
}`, chromedp.WithPollingArgs(selector), chromedp.WithPollingTimeout(uiTimeout))(ctx, t)
		if err != nil {
			return chromedp.Void{}, fmt.Errorf("%s stays disabled, hidden or covered by another element: %w", selector, err)
		}
		return chromedp.MouseClickXY(at.X, at.Y)(ctx, t)
	}
}

// explain prefixes the error of action a with what.
func explain(what string, a chromedp.Action[chromedp.Void]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		v, err := a(ctx, t)
		if err != nil {
			return v, fmt.Errorf("%s: %w", what, err)
		}
		return v, nil
	}
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

	tab, problems, closeBrowser := startBrowser(t, ctx, chromium)
	defer closeBrowser()
	defer func() {
		if t.Failed() {
			dir, _ := os.MkdirTemp("", "herald-e2e-")
			shot := filepath.Join(dir, "inbox.png")
			if err := screenshot(tab, shot); err == nil {
				t.Logf("screenshot of the page at failure: %s", shot)
			}
			t.Logf("page problems: %v", problems())
		}
	}()
	// step runs browser actions, each step within uiTimeout.
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(tab, uiTimeout)
		defer cancel()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("ok: %s", name)
	}

	step("open the inbox page", chromedp.Navigate(env.WebURL()))
	step("the demo users are offered", waitFor(`document.querySelectorAll('#users button[data-user]').length === 3`))
	step("pick alice", click(`#users button[data-user="alice"]`))
	step("the stream is live", waitFor(`document.body.dataset.state === 'live'`))

	// README.md's walkthrough: kubectl apply -f config/samples/dev/notification.yaml
	applyFile(t, ctx, env, filepath.Join(root, "config", "samples", "dev", "notification.yaml"))
	item := `li.item[data-notification="disk-full"]`
	step("the notification arrives in alice's inbox without a reload", chromedp.WaitVisible(chromedp.CSS(item+`[data-read="false"]`)))
	titleCtx, cancelTitle := context.WithTimeout(tab, uiTimeout)
	title, err := chromedp.Run(titleCtx, chromedp.TextContent(chromedp.CSS(item+` .title`)))
	cancelTitle()
	if err != nil {
		t.Fatalf("read its title: %v", err)
	}
	t.Log("ok: read its title")
	if title != "Disk almost full on node-1" {
		t.Errorf("title shown = %q", title)
	}

	step("mark it read", click(item+` button[data-op="read"]`))
	step("the page shows it read", chromedp.WaitVisible(chromedp.CSS(item+`[data-read="true"]`)))
	eventually(t, ctx, apiTimeout, "the in-app delivery records readTime", func(ctx context.Context) error {
		var d notifyv1.ChannelDelivery
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: notification.DeliveryName("disk-full", notifyv1.ChannelInApp, "alice")}, &d); err != nil {
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
	step("the approval arrives", chromedp.WaitVisible(chromedp.CSS(approval+` button[data-answer="approve"]`)))
	// The open panel marks the new item seen a moment after it arrives;
	// that changes nothing shown, so the row (and the button a person is
	// about to press) must stay the same element.
	step("remember the approval's row", waitFor(fmt.Sprintf(`(window.heraldApprovalRow = document.querySelector(%q)) !== null`, approval)))
	step("it is marked seen", waitFor(fmt.Sprintf(`document.querySelector(%q)?.dataset.seen === 'true'`, approval)))
	sameCtx, cancelSame := context.WithTimeout(tab, uiTimeout)
	same, err := chromedp.Run(sameCtx, chromedp.Evaluate[bool](fmt.Sprintf(`window.heraldApprovalRow.isConnected && window.heraldApprovalRow === document.querySelector(%q)`, approval)))
	cancelSame()
	if err != nil {
		t.Fatalf("compare the rows: %v", err)
	}
	if !same {
		t.Error("marking the approval seen replaced its row; a click landing meanwhile would be lost")
	}
	step("approve it", click(approval+` button[data-answer="approve"]`))
	step("the page shows the answer", chromedp.WaitVisible(chromedp.CSS(approval+` [data-response="approve"]`)))
	if file := os.Getenv("HERALD_E2E_SCREENSHOT"); file != "" {
		if err := screenshot(tab, file); err != nil {
			t.Fatalf("screenshot to %s: %v", file, err)
		}
		t.Logf("ok: screenshot to %s", file)
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
	carolItem := &inboxv1.InboxItem{ObjectMeta: metav1.ObjectMeta{Namespace: env.Namespace, Name: notification.DeliveryName("release-approval", notifyv1.ChannelInApp, "carol")}}
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

	// The bell of the <herald-inbox> component: three new items, mark all
	// read, and an item that returns from a snooze.
	count := `document.querySelector('herald-inbox .hi-count').dataset.count`
	for i := range 3 {
		sendTo(t, ctx, env, fmt.Sprintf("badge-%d", i), "builds", notifyv1.ChannelInApp)
	}
	step("the badge shows 3", waitFor(count+` === '3'`))
	step("the bell says so to screen readers", waitFor(`document.querySelector('herald-inbox .hi-bell').getAttribute('aria-label') === 'Inbox, 3 unread'`))
	step("mark all read", click(`herald-inbox button[data-op="mark-all-read"]`))
	step("the badge shows 0", waitFor(count+` === '0'`))
	step("snooze one for an hour", click(`li.item[data-notification="badge-1"] button[data-op="snooze"][data-preset="1h"]`))
	step("it leaves the list", waitFor(`!document.querySelector('li.item[data-notification="badge-1"]')`))
	// Another of alice's clients marks badge-0 unread and snoozes it for a
	// few seconds (the component's presets are an hour or more).
	badge0 := &inboxv1.InboxItem{ObjectMeta: metav1.ObjectMeta{Namespace: env.Namespace, Name: notification.DeliveryName("badge-0", notifyv1.ChannelInApp, "alice")}}
	until := time.Now().Add(4 * time.Second).UTC().Format(time.RFC3339)
	if err := alice.Patch(ctx, badge0, client.RawPatch(types.MergePatchType, []byte(`{"status":{"read":false,"snoozedUntil":"`+until+`"}}`))); err != nil {
		t.Fatalf("snoozing badge-0 through kube-apiserver: %v", err)
	}
	step("while snoozed it is gone and the badge stays 0", waitFor(`!document.querySelector('li.item[data-notification="badge-0"]') && `+count+` === '0'`))
	step("it returns unread and the badge shows 1", waitFor(`!!document.querySelector('li.item[data-notification="badge-0"][data-read="false"]') && `+count+` === '1'`))

	// Alice turns off WhatsApp for deployments from her own inbox.
	step("open the preferences", click(`herald-inbox button[data-op="preferences"]`))
	step("name the category", chromedp.Steps(chromedp.WaitVisible(chromedp.CSS(`herald-inbox input[name="new-category"]`)),
		chromedp.SendKeys(chromedp.CSS(`herald-inbox input[name="new-category"]`), "deployments")))
	step("save it", click(`herald-inbox button[data-op="save-preferences"]`))
	whatsapp := `herald-inbox fieldset[data-field="category:deployments"] input[value="whatsapp"]`
	step("untick WhatsApp for deployments", click(whatsapp))
	step("save again", click(`herald-inbox button[data-op="save-preferences"]`))
	step("saved", waitFor(`document.querySelector('herald-inbox .hi-prefs-result').textContent === 'Saved.' && !document.querySelector('`+whatsapp+`').checked`))
	eventually(t, ctx, apiTimeout, "alice's Recipient carries the preference", func(ctx context.Context) error {
		var r notifyv1.Recipient
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: "alice"}, &r); err != nil {
			return err
		}
		for _, c := range r.Spec.Preferences.Categories {
			if c.Category == "deployments" && len(c.Channels) > 0 && !slices.Contains(c.Channels, notifyv1.ChannelWhatsApp) {
				return nil
			}
		}
		return fmt.Errorf("preferences: %+v", r.Spec.Preferences)
	})
	sendTo(t, ctx, env, "deploy-next", "deployments", notifyv1.ChannelInApp, notifyv1.ChannelWhatsApp)
	eventually(t, ctx, apiTimeout, "the next deployments notification skips alice's WhatsApp with the preference reason", func(ctx context.Context) error {
		var d notifyv1.ChannelDelivery
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: notification.DeliveryName("deploy-next", notifyv1.ChannelWhatsApp, "alice")}, &d); err != nil {
			return err
		}
		if d.Status.Phase != notifyv1.DeliverySkipped || d.Spec.Skip == nil || d.Spec.Skip.Reason != notifyv1.ReasonCategoryMuted {
			return fmt.Errorf("phase %s, skip %+v", d.Status.Phase, d.Spec.Skip)
		}
		return nil
	})
	t.Log("ok: alice's WhatsApp delivery of deploy-next is Skipped: CategoryMuted")
	step("the in-app one still arrives", chromedp.WaitVisible(chromedp.CSS(`li.item[data-notification="deploy-next"]`)))

	// A critical notification with two escalation steps, acknowledged on
	// the page between them: exactly one step runs.
	// README.md: kubectl apply -f config/samples/dev/escalation.yaml
	applyFile(t, ctx, env, filepath.Join(root, "config", "samples", "dev", "escalation.yaml"))
	escalate := &notifyv1.Notification{ObjectMeta: metav1.ObjectMeta{Namespace: env.Namespace, Name: "payments-down"}}
	incident := `li.item[data-notification="payments-down"]`
	step("the critical notification arrives", chromedp.WaitVisible(chromedp.CSS(incident+`[data-acknowledged="false"]`)))
	var dispatched time.Time
	eventually(t, ctx, apiTimeout, "escalation step 1 runs when nobody acknowledged within 5s", func(ctx context.Context) error {
		var n notifyv1.Notification
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(escalate), &n); err != nil {
			return err
		}
		if len(n.Status.Escalation) != 1 || n.Status.DispatchTime == nil {
			return fmt.Errorf("status.escalation: %+v", n.Status.Escalation)
		}
		dispatched = n.Status.DispatchTime.Time
		return nil
	})
	step("acknowledge it on the page", click(incident+` button[data-op="acknowledge"]`))
	step("the page shows it acknowledged", chromedp.WaitVisible(chromedp.CSS(incident+`[data-acknowledged="true"]`)))
	// kubectl wait --for=condition=Acknowledged notification/payments-down
	eventually(t, ctx, apiTimeout, "the notification is Acknowledged by alice", func(ctx context.Context) error {
		var n notifyv1.Notification
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(escalate), &n); err != nil {
			return err
		}
		c := meta.FindStatusCondition(n.Status.Conditions, notifyv1.ConditionAcknowledged)
		if c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "alice") {
			return fmt.Errorf("conditions: %v", n.Status.Conditions)
		}
		return nil
	})
	// Step 2 would have run 30s after dispatch: whether it runs can only
	// be seen once that time has passed.
	if wait := time.Until(dispatched.Add(32 * time.Second)); wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	var after notifyv1.Notification
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(escalate), &after); err != nil {
		t.Fatal(err)
	}
	var steps notifyv1.ChannelDeliveryList
	if err := env.Client.List(ctx, &steps, client.InNamespace(env.Namespace), client.HasLabels{notifyv1.LabelEscalationStep}); err != nil {
		t.Fatal(err)
	}
	if len(after.Status.Escalation) != 1 || len(steps.Items) != 1 || steps.Items[0].Spec.Recipient.Name != "bob" {
		t.Errorf("want exactly step 1 (bob) to have run: status.escalation %+v, step deliveries %d", after.Status.Escalation, len(steps.Items))
	}
	t.Log("ok: acknowledged between the steps, exactly one escalation step ran")

	// Another user sees their own inbox only.
	step("switch to carol", click(`#users button[data-user="carol"]`))
	step("carol sees her own inbox: her approval item, not alice's warning",
		waitFor(`document.body.dataset.state === 'live' && !!document.querySelector('`+approval+`') && !document.querySelector('`+item+`')`))

	if probs := problems(); len(probs) > 0 {
		t.Errorf("the page reported problems: %v", probs)
	}
}

// sendTo creates an informational Notification for alice in category on
// channels.
func sendTo(t *testing.T, ctx context.Context, env *dev.Env, name, category string, channels ...notifyv1.Channel) {
	t.Helper()
	n := &notifyv1.Notification{
		ObjectMeta: metav1.ObjectMeta{Namespace: env.Namespace, Name: name},
		Spec: notifyv1.NotificationSpec{
			Type: notifyv1.TypeInformational, Category: category, Title: "Title of " + name, Message: "Message of " + name,
			Audience: notifyv1.Audience{Users: []string{"alice"}}, Channels: channels,
		},
	}
	if err := env.Client.Create(ctx, n); err != nil {
		t.Fatalf("creating notification %s: %v", name, err)
	}
}

// screenshot writes a PNG of the tab's viewport to file.
func screenshot(tab context.Context, file string) error {
	ctx, cancel := context.WithTimeout(tab, uiTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		return err
	}
	return os.WriteFile(file, png, 0o644)
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
