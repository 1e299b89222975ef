package dev_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/dev"
)

// start runs the environment with its state in dir and its logs in the
// test output on failure.
func start(t *testing.T, ctx context.Context, dir string) *dev.Env {
	t.Helper()
	var logs bytes.Buffer
	log := zap.New(zap.WriteTo(&syncWriter{b: &logs}), zap.UseDevMode(true))
	ctrl.SetLogger(log)
	klog.SetLogger(log.WithName("klog"))
	var out bytes.Buffer
	env, err := dev.Start(ctx, dev.Options{StateDir: dir, Out: &syncWriter{b: &out}, Log: log})
	if err != nil {
		t.Fatalf("Start: %v\n%s\n%s", err, out.String(), tail(logs.String()))
	}
	t.Cleanup(func() {
		_ = env.Stop()
		if t.Failed() {
			t.Logf("output:\n%s\nlog:\n%s", out.String(), tail(logs.String()))
		}
	})
	return env
}

type syncWriter struct {
	mu chan struct{}
	b  *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	if w.mu == nil {
		w.mu = make(chan struct{}, 1)
	}
	w.mu <- struct{}{}
	defer func() { <-w.mu }()
	return w.b.Write(p)
}

func tail(s string) string {
	if len(s) > 20000 {
		return s[len(s)-20000:]
	}
	return s
}

func needBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
}

// childPIDs reads the pids the environment recorded for its children.
func childPIDs(t *testing.T, stateDir string) map[string]int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(stateDir, "run", "*.pid"))
	pids := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		pids[strings.TrimSuffix(filepath.Base(f), ".pid")] = pid
	}
	for _, want := range []string{"etcd", "kube-apiserver", "mailpit"} {
		if pids[want] == 0 {
			t.Fatalf("no pid recorded for %s: %v", want, pids)
		}
	}
	return pids
}

// alive reports whether pid is a running (not zombie) process whose
// command line mentions dir.
func alive(pid int, dir string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), dir) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() error) {
	t.Helper()
	var err error
	if wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		err = cond()
		return err == nil, nil
	}) != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func getJSON(url string, into any) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if into != nil && resp.StatusCode == http.StatusOK {
		return resp.StatusCode, json.NewDecoder(resp.Body).Decode(into)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// TestStartStopResume is `herald dev` twice on one state directory: the
// first start sets everything up, Stop leaves no process behind, and the
// second start resumes with the same etcd data and ports.
func TestStartStopResume(t *testing.T) {
	needBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "state")

	env := start(t, ctx, dir)
	t.Logf("first start: %s %v", env.StartupTime.Round(time.Millisecond), env.Phases)
	if env.Resumed {
		t.Error("a fresh state directory reports resumed")
	}

	// The kubeconfig works on its own, with the demo namespace as default.
	kc, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if ns := kc.Contexts[kc.CurrentContext].Namespace; ns != "demo" {
		t.Errorf("kubeconfig namespace = %q", ns)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kube, err := client.New(cfg, client.Options{Scheme: dev.Scheme()})
	if err != nil {
		t.Fatal(err)
	}

	// The demo: three recipients and a Ready provider per channel.
	var recipients notifyv1.RecipientList
	if err := kube.List(ctx, &recipients, client.InNamespace("demo")); err != nil {
		t.Fatal(err)
	}
	if len(recipients.Items) != 3 {
		t.Fatalf("recipients: %d", len(recipients.Items))
	}
	waitFor(t, ctx, "the demo providers are Ready", func() error {
		var providers notifyv1.NotificationProviderList
		if err := kube.List(ctx, &providers, client.InNamespace("demo")); err != nil {
			return err
		}
		if len(providers.Items) != 6 {
			return fmt.Errorf("%d providers", len(providers.Items))
		}
		for _, p := range providers.Items {
			if !meta.IsStatusConditionTrue(p.Status.Conditions, "Ready") {
				return fmt.Errorf("%s: %v", p.Name, p.Status.Conditions)
			}
		}
		return nil
	})

	// kubectl get inboxitems --as alice
	if env.InboxErr != nil {
		t.Fatalf("inbox API: %v", env.InboxErr)
	}
	alice, err := client.New(env.UserConfig("alice"), client.Options{Scheme: dev.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.List(ctx, &inboxv1.InboxItemList{}, client.InNamespace("demo")); err != nil {
		t.Fatalf("alice's inbox: %v", err)
	}

	// The page, its configuration and its proxy, which acts only as demo
	// users.
	if code, err := getJSON(env.WebURL()+"/", nil); err != nil || code != http.StatusOK {
		t.Fatalf("GET /: %d %v", code, err)
	}
	var pc struct {
		Namespace string `json:"namespace"`
		Users     []struct {
			Username string `json:"username"`
		} `json:"users"`
		Inbox bool `json:"inbox"`
	}
	if _, err := getJSON(env.WebURL()+"/api/config", &pc); err != nil || pc.Namespace != "demo" || len(pc.Users) != 3 || !pc.Inbox {
		t.Fatalf("/api/config: %+v %v", pc, err)
	}
	var items inboxv1.InboxItemList
	if code, err := getJSON(env.WebURL()+"/api/users/bob/inboxitems", &items); err != nil || code != http.StatusOK || items.Kind != "InboxItemList" {
		t.Fatalf("bob's inbox through the page's proxy: %d %v %+v", code, err, items.TypeMeta)
	}
	for _, who := range []string{"system:admin", "mallory"} {
		if code, _ := getJSON(env.WebURL()+"/api/users/"+who+"/inboxitems", nil); code != http.StatusForbidden {
			t.Errorf("the proxy answered %d for non-demo user %s, want 403", code, who)
		}
	}

	// A name that is not loopback (DNS rebinding) is refused.
	req, _ := http.NewRequest(http.MethodGet, env.WebURL()+"/api/config", nil)
	req.Host = "attacker.example:80"
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("a request for Host attacker.example: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// The webhook sink takes any POST and shows it on the page.
	resp, err := http.Post(env.WebhookURL(), "application/json", strings.NewReader(`{"notification":"hello","title":"Hi","recipient":{"username":"bob"}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var sinks []dev.SinkMessage
	if _, err := getJSON(env.WebURL()+"/api/sinks", &sinks); err != nil || len(sinks) != 1 || sinks[0].To != "bob" || sinks[0].Notification != "hello" {
		t.Fatalf("sinks: %+v %v", sinks, err)
	}

	// A notification on the chat channels arrives at the chat sinks,
	// which print it and show it on the page.
	if err := kube.Create(ctx, &notifyv1.Notification{
		ObjectMeta: metav1.ObjectMeta{Name: "chat", Namespace: "demo"},
		Spec: notifyv1.NotificationSpec{
			Title: "Hello", Message: "from herald dev", Audience: notifyv1.Audience{Users: []string{"bob"}},
			Channels: []notifyv1.Channel{notifyv1.ChannelSlack, notifyv1.ChannelTeams, notifyv1.ChannelTelegram},
		},
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the chat sinks received the notification", func() error {
		var sinks []dev.SinkMessage
		if _, err := getJSON(env.WebURL()+"/api/sinks", &sinks); err != nil {
			return err
		}
		got := map[string]string{}
		for _, m := range sinks {
			got[m.Sink] = m.To
		}
		if got["slack"] != "U0BOB00001" || got["teams"] != dev.DemoTeamsRoom || got["telegram"] != "100000002" {
			return fmt.Errorf("sinks: %v", got)
		}
		return nil
	})

	// Something to find after the restart.
	if err := kube.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept", Namespace: "demo"}, Data: map[string]string{"a": "b"}}); err != nil {
		t.Fatal(err)
	}
	ports := env.Ports
	pids := childPIDs(t, dir)
	if err := env.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for name, pid := range pids {
		if alive(pid, dir) {
			t.Errorf("%s (pid %d) still runs after Stop", name, pid)
		}
	}

	env2 := start(t, ctx, dir)
	t.Logf("second start: %s %v", env2.StartupTime.Round(time.Millisecond), env2.Phases)
	if !env2.Resumed {
		t.Error("the second start does not report resumed")
	}
	if env2.Ports != ports {
		t.Errorf("ports changed across restarts: %+v then %+v", ports, env2.Ports)
	}
	var cm corev1.ConfigMap
	if err := env2.Client.Get(ctx, client.ObjectKey{Namespace: "demo", Name: "kept"}, &cm); err != nil || cm.Data["a"] != "b" {
		t.Fatalf("the ConfigMap made before the restart: %v %v", err, cm.Data)
	}
	if env2.InboxErr != nil {
		t.Fatalf("inbox API after the restart: %v", env2.InboxErr)
	}
	if err := env2.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}
