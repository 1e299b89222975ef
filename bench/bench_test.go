//go:build bench

// Package bench measures Herald end to end against a real control plane and
// reports every figure next to the bound the same control plane sets in the
// same run. Run it with `make bench`; it is not part of `make test`.
package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/dev/testutil/controllerproc"
	heraldenvtest "github.com/herald-dev/herald/internal/dev/testutil/envtest"
)

// Sizes, overridable from the environment for quick runs.
var (
	notifications = envInt("HERALD_BENCH_N", 2000)
	fanOut        = envInt("HERALD_BENCH_FANOUT", 5000)
	boundCreates  = envInt("HERALD_BENCH_BOUND_N", 2000)
)

// selected reports whether HERALD_BENCH_RUNS (a comma-separated list of
// inapp, webhook, fanout, inbox; default all) includes a run.
func selected(run string) bool {
	list := os.Getenv("HERALD_BENCH_RUNS")
	return list == "" || slices.Contains(strings.Split(strings.ToLower(list), ","), run)
}

func envInt(name string, def int) int {
	var v int
	if _, err := fmt.Sscan(os.Getenv(name), &v); err == nil && v > 0 {
		return v
	}
	return def
}

type harness struct {
	t      *testing.T
	env    *envtest.Environment
	cfg    *rest.Config
	c      client.Client
	root   string
	report *report
	ctrl   *controllerproc.Process
	prof   *profiler
}

func TestBench(t *testing.T) {
	// The bench's informers log through controller-runtime; nothing of
	// theirs belongs in the report.
	ctrllog.SetLogger(logr.Discard())
	h := &harness{t: t, report: newReport()}
	env, err := heraldenvtest.New()
	if err != nil {
		t.Fatal(err)
	}
	h.env = env
	env.CRDDirectoryPaths = append(env.CRDDirectoryPaths, "testdata")
	// The inbox run reaches the inbox server through the aggregator.
	if _, err := heraldenvtest.ConfigureFrontProxy(env, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	cfg, err := heraldenvtest.Start(env)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	// The bench client must not be the bottleneck: no client-side limit.
	cfg.QPS, cfg.Burst = -1, 0
	h.cfg = cfg
	h.c, err = client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	h.root, _ = heraldenvtest.RepoRoot()
	if h.prof, err = newProfiler(cfg); err != nil {
		t.Fatal(err)
	}

	h.measureBound()
	h.report.costs = h.measureWriteCosts()
	h.startController()
	defer h.ctrl.Kill()

	if selected("inapp") {
		h.measureSingle("inApp", notifyv1.ChannelInApp, nil)
	}
	if selected("webhook") {
		sink := newSink()
		defer sink.Close()
		h.measureSingle("webhook", notifyv1.ChannelWebhook, sink)
	}
	if selected("fanout") {
		h.measureFanOut()
	}
	if selected("inbox") {
		h.measureInbox()
	}

	h.report.write(t, h.root)
}

// benchObjects is the small custom resource of the bound
// (testdata/benchobjects.yaml). No controller watches it, so the bound can
// be measured while Herald's controller runs, right before each run.
var benchObjects = schema.GroupVersionKind{Group: "bench.herald.dev", Version: "v1", Kind: "BenchObject"}

func benchObject(ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(benchObjects)
	u.SetNamespace(ns)
	u.SetName(name)
	u.Object["spec"] = map[string]any{"username": "u", "email": "u@example.com"}
	return u
}

// measureBound times raw creates and status updates of the small custom
// resource with 1 and 32 client goroutines, before the controller starts.
func (h *harness) measureBound() {
	ns := h.namespace("bound")
	for _, workers := range []int{1, 32} {
		n := boundCreates
		if workers == 1 {
			n = boundCreates / 2
		}
		objs := make([]*unstructured.Unstructured, n)
		for i := range objs {
			objs[i] = benchObject(ns, fmt.Sprintf("w%d-%05d", workers, i))
		}
		d := parallel(workers, n, func(i int) error { return h.c.Create(context.Background(), objs[i]) })
		h.report.bound(fmt.Sprintf("creates/s, %d goroutine(s)", workers), float64(n)/d.Seconds())
		d = parallel(workers, n, func(i int) error {
			objs[i].Object["status"] = map[string]any{"phase": "Measured"}
			return h.c.Status().Update(context.Background(), objs[i])
		})
		h.report.bound(fmt.Sprintf("status updates/s, %d goroutine(s)", workers), float64(n)/d.Seconds())
	}
}

// runBound measures raw creates/s at 32 goroutines right before a run: the
// machine's speed drifts over the minutes a bench takes, and a run is
// compared with the control plane as fast as it was just then.
func (h *harness) runBound(run string) float64 {
	ns := h.namespace("bound-" + run)
	objs := make([]*unstructured.Unstructured, boundCreates)
	for i := range objs {
		objs[i] = benchObject(ns, fmt.Sprintf("o%05d", i))
	}
	d := parallel(32, boundCreates, func(i int) error { return h.c.Create(context.Background(), objs[i]) })
	return float64(boundCreates) / d.Seconds()
}

// parallel runs f(0..n-1) on workers goroutines and returns the wall time.
func parallel(workers, n int, f func(i int) error) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		panic(fmt.Sprintf("%d of %d operations failed", failed.Load(), n))
	}
	return time.Since(start)
}

func (h *harness) namespace(name string) string {
	if err := h.c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		h.t.Fatal(err)
	}
	return name
}

// measureSingle creates N single-recipient notifications on one channel and
// waits until every one is Delivered.
func (h *harness) measureSingle(label string, ch notifyv1.Channel, sink *sink) {
	ns := h.namespace("single-" + strings.ToLower(string(ch)))
	h.recipient(ns, "r0", nil)
	h.waitRecipientsChecked(ns, 1)
	if sink != nil {
		h.webhookProvider(ns, sink.URL)
	}
	created := make([]time.Time, notifications)
	names := make([]string, notifications)
	for i := range names {
		names[i] = fmt.Sprintf("n%05d", i)
	}
	w := h.watchNotifications(ns, ch == notifyv1.ChannelInApp)
	defer w.stop()
	before := h.apiWrites()
	cpu0 := h.ctrl.CPU()
	h.ctrl.ResetPeakRSS()

	bound := h.runBound(strings.ToLower(label))
	stopProfile := h.prof.start(strings.ToLower(label))
	start := time.Now()
	parallel(32, notifications, func(i int) error {
		created[i] = time.Now()
		return h.c.Create(context.Background(), h.notification(ns, names[i], ch, notifyv1.Audience{Users: []string{"r0"}}))
	})
	w.waitDelivered(h.t, notifications, 20*time.Minute)
	elapsed := time.Since(start)
	stopProfile()

	counts := h.apiWrites().minus(before)
	cpu := h.ctrl.CPU() - cpu0
	lat := h.deliveryLatencies(ns, notifications, w, func(d *notifyv1.ChannelDelivery) time.Time {
		var i int
		fmt.Sscanf(d.Spec.Notification, "n%05d", &i)
		return created[i]
	})
	h.report.run(runResult{
		Name:       fmt.Sprintf("%d single-recipient %s notifications", notifications, label),
		Bound:      bound,
		Deliveries: notifications,
		Elapsed:    elapsed,
		Latency:    lat,
		Writes:     counts.writes,
		Reads:      counts.reads,
		// The bench's own creates of the notifications are not the
		// controller's writes.
		ClientCreates: notifications,
		CPU:           cpu,
		PeakRSS:       h.ctrl.PeakRSS(),
		Sink:          sink.count(),
	})
}

// measureFanOut sends one notification to fanOut recipients.
func (h *harness) measureFanOut() {
	ns := h.namespace("fanout")
	parallel(32, fanOut, func(i int) error {
		return h.c.Create(context.Background(), &notifyv1.Recipient{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("r%05d", i), Namespace: ns},
			Spec:       notifyv1.RecipientSpec{Username: fmt.Sprintf("user%05d", i), Roles: []string{"everyone"}},
		})
	})
	h.waitRecipientsChecked(ns, fanOut)
	w := h.watchNotifications(ns, true)
	defer w.stop()
	before := h.apiWrites()
	cpu0 := h.ctrl.CPU()
	h.ctrl.ResetPeakRSS()
	bound := h.runBound("fanout")
	stopProfile := h.prof.start("fanout")
	start := time.Now()
	if err := h.c.Create(context.Background(), h.notification(ns, "all-hands", notifyv1.ChannelInApp, notifyv1.Audience{Roles: []string{"everyone"}})); err != nil {
		h.t.Fatal(err)
	}
	w.waitDelivered(h.t, 1, 20*time.Minute)
	elapsed := time.Since(start)
	stopProfile()
	counts := h.apiWrites().minus(before)
	cpu := h.ctrl.CPU() - cpu0
	h.report.run(runResult{
		Name:          fmt.Sprintf("one inApp notification to %d recipients", fanOut),
		Bound:         bound,
		Deliveries:    fanOut,
		Elapsed:       elapsed,
		Latency:       h.deliveryLatencies(ns, fanOut, w, func(*notifyv1.ChannelDelivery) time.Time { return start }),
		Writes:        counts.writes,
		Reads:         counts.reads,
		ClientCreates: 1,
		CPU:           cpu,
		PeakRSS:       h.ctrl.PeakRSS(),
	})
}

// waitRecipientsChecked waits until the controller has checked the
// addresses of n Recipients (one status write each), so that this work is
// not counted in the run that follows.
func (h *harness) waitRecipientsChecked(ns string, n int) {
	h.eventually(10*time.Minute, func() bool {
		var list notifyv1.RecipientList
		if err := h.c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return false
		}
		checked := 0
		for _, r := range list.Items {
			if r.Status.ObservedGeneration == r.Generation {
				checked++
			}
		}
		return checked >= n
	}, "Recipients checked by the controller")
}

func (h *harness) notification(ns, name string, ch notifyv1.Channel, a notifyv1.Audience) *notifyv1.Notification {
	return &notifyv1.Notification{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: notifyv1.NotificationSpec{
			Type:     notifyv1.TypeInformational,
			Title:    "Benchmark",
			Message:  "One of many.",
			Audience: a,
			Channels: []notifyv1.Channel{ch},
		},
	}
}

func (h *harness) recipient(ns, name string, roles []string) {
	if err := h.c.Create(context.Background(), &notifyv1.Recipient{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       notifyv1.RecipientSpec{Username: name, Email: name + "@example.com", WebhookURL: "", Roles: roles},
	}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) webhookProvider(ns, url string) {
	p := &notifyv1.NotificationProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "sink", Namespace: ns},
		Spec: notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelWebhook, Default: true,
			Webhook: &notifyv1.WebhookProvider{URL: url},
		},
	}
	if err := h.c.Create(context.Background(), p); err != nil {
		h.t.Fatal(err)
	}
	h.eventually(time.Minute, func() bool {
		var got notifyv1.NotificationProvider
		return h.c.Get(context.Background(), client.ObjectKeyFromObject(p), &got) == nil &&
			meta.IsStatusConditionTrue(got.Status.Conditions, notifyv1.ConditionReady)
	}, "provider Ready")
}

func (h *harness) eventually(limit time.Duration, cond func() bool, what string) {
	if wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, limit, true, func(context.Context) (bool, error) {
		return cond(), nil
	}) != nil {
		h.t.Fatalf("timed out waiting for %s", what)
	}
}

// notificationWatch follows the Notifications of a namespace through an
// informer. Waiting costs the API server one watch instead of repeated
// lists, and the bench decodes one object per status change instead of
// every object per poll, so the measuring does not eat into what it
// measures. Deliveries are read once, after the run, but for those
// delivered on create: their delivery is their creation, which
// metadata.creationTimestamp records in whole seconds only, so the watch
// notes when each is first seen.
type notificationWatch struct {
	cache  cache.Cache
	cancel context.CancelFunc
	ns     string

	mu        sync.Mutex
	firstSeen map[string]time.Time // deliveries by name
}

// watchNotifications watches the namespace's Notifications and, with
// deliveries (in-app runs only, so that other runs carry no watch they do
// not need), notes when each delivery is first seen. That watch is of
// metadata only: kube-apiserver sends each event without spec and status,
// so the bench's own measuring costs it as little as it can.
func (h *harness) watchNotifications(ns string, deliveries bool) *notificationWatch {
	c, err := cache.New(h.cfg, cache.Options{Scheme: h.env.Scheme, DefaultNamespaces: map[string]cache.Config{ns: {}}})
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := c.GetInformer(context.Background(), &notifyv1.Notification{}); err != nil {
		h.t.Fatal(err)
	}
	w := &notificationWatch{cache: c, ns: ns, firstSeen: map[string]time.Time{}}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	defer func() {
		go func() { _ = c.Start(ctx) }()
		c.WaitForCacheSync(ctx)
	}()
	if !deliveries {
		return w
	}
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(notifyv1.GroupVersion.WithKind("ChannelDelivery"))
	inf, err := c.GetInformer(context.Background(), meta)
	if err != nil {
		h.t.Fatal(err)
	}
	note := func(obj any) {
		if d, ok := obj.(*metav1.PartialObjectMetadata); ok {
			w.mu.Lock()
			if _, seen := w.firstSeen[d.Name]; !seen {
				w.firstSeen[d.Name] = time.Now()
			}
			w.mu.Unlock()
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: note}); err != nil {
		h.t.Fatal(err)
	}
	return w
}

// deliveredAt is when d was delivered: its completion time, or, for one
// delivered on create, when the watch first saw it.
func (w *notificationWatch) deliveredAt(d *notifyv1.ChannelDelivery) (time.Time, bool) {
	if d.Status.CompletionTime != nil {
		return d.Status.CompletionTime.Time, true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.firstSeen[d.Name]
	return t, ok && d.Spec.DeliveredOnCreate && d.Phase() == notifyv1.DeliverySucceeded
}

func (w *notificationWatch) stop() { w.cancel() }

// waitDelivered waits until n Notifications are Delivered. A Notification
// that ends in any other terminal phase fails the run: the bench measures
// successful work only.
func (w *notificationWatch) waitDelivered(t *testing.T, n int, limit time.Duration) {
	done := 0
	if wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, limit, true, func(ctx context.Context) (bool, error) {
		var list notifyv1.NotificationList
		_ = w.cache.List(ctx, &list, client.InNamespace(w.ns))
		done = 0
		for _, it := range list.Items {
			switch it.Status.Phase {
			case notifyv1.NotificationDelivered:
				done++
			case notifyv1.NotificationFailed, notifyv1.NotificationPartiallyDelivered, notifyv1.NotificationExpired:
				t.Fatalf("notification %s ended %s: %s", it.Name, it.Status.Phase, conditionMessages(it.Status.Conditions))
			}
		}
		return done >= n, nil
	}) != nil {
		t.Fatalf("only %d of %d notifications delivered in %s", done, n, limit)
	}
}

func conditionMessages(cs []metav1.Condition) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Type+"="+string(c.Status)+": "+c.Message)
	}
	return strings.Join(out, "; ")
}

// deliveryLatencies lists the namespace's ChannelDeliveries (in pages, after
// the run) and returns create-to-Succeeded latency per delivery, sorted.
// Every delivery must have succeeded.
func (h *harness) deliveryLatencies(ns string, want int, w *notificationWatch, createdAt func(*notifyv1.ChannelDelivery) time.Time) []time.Duration {
	var out []time.Duration
	var dump *os.File
	if dir := os.Getenv("HERALD_BENCH_PROFILE"); dir != "" {
		var err error
		if dump, err = os.Create(filepath.Join(dir, ns+"-deliveries.csv")); err != nil {
			h.t.Fatal(err)
		}
		defer dump.Close()
	}
	opts := []client.ListOption{client.InNamespace(ns), client.Limit(500)}
	for cont := ""; ; {
		var list notifyv1.ChannelDeliveryList
		if err := h.c.List(context.Background(), &list, append(opts, client.Continue(cont))...); err != nil {
			h.t.Fatal(err)
		}
		for i := range list.Items {
			d := &list.Items[i]
			done, ok := w.deliveredAt(d)
			if d.Phase() != notifyv1.DeliverySucceeded || !ok {
				h.t.Fatalf("delivery %s is %s, not Succeeded", d.Name, d.Phase())
			}
			out = append(out, done.Sub(createdAt(d)))
			if dump != nil {
				var started time.Time
				if len(d.Status.History) > 0 {
					started = d.Status.History[0].StartTime.Time
				}
				fmt.Fprintf(dump, "%s,%d,%d,%d\n", d.Name, createdAt(d).UnixMicro(), started.UnixMicro(), done.UnixMicro())
			}
		}
		if cont = list.Continue; cont == "" {
			break
		}
	}
	if len(out) != want {
		h.t.Fatalf("%d deliveries, want %d", len(out), want)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// sink is a local webhook receiver that counts distinct deliveries.
type sink struct {
	*httptest.Server
	mu   sync.Mutex
	keys map[string]int
}

func newSink() *sink {
	s := &sink{keys: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.keys[r.Header.Get("Idempotency-Key")]++
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	return s
}

// count returns distinct keys and total requests.
func (s *sink) count() *[2]int {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	total := 0
	for _, n := range s.keys {
		total += n
	}
	return &[2]int{len(s.keys), total}
}

func (h *harness) startController() {
	path, _, err := heraldenvtest.AdminKubeconfig(h.env, "herald-controller", h.t.TempDir())
	if err != nil {
		h.t.Fatal(err)
	}
	h.ctrl, err = controllerproc.Start(h.root, path, append(strings.Fields(os.Getenv("HERALD_BENCH_FLAGS")), h.prof.controllerFlags()...)...)
	if err != nil {
		h.t.Fatal(err)
	}
	h.report.controllerArgs = h.ctrl.Args()
}
