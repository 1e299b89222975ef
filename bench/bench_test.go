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
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/testutil/controllerproc"
	heraldenvtest "github.com/herald-dev/herald/internal/testutil/envtest"
)

// Sizes, overridable from the environment for quick runs.
var (
	notifications = envInt("HERALD_BENCH_N", 2000)
	fanOut        = envInt("HERALD_BENCH_FANOUT", 5000)
	boundCreates  = envInt("HERALD_BENCH_BOUND_N", 2000)
)

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
}

func TestBench(t *testing.T) {
	h := &harness{t: t, report: newReport()}
	env, err := heraldenvtest.New()
	if err != nil {
		t.Fatal(err)
	}
	h.env = env
	cfg, err := env.Start()
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

	h.measureBound()
	h.startController()
	defer h.ctrl.Kill()

	h.measureSingle("inApp", notifyv1.ChannelInApp, nil)
	sink := newSink()
	defer sink.Close()
	h.measureSingle("webhook", notifyv1.ChannelWebhook, sink)
	h.measureFanOut()

	h.report.write(t, h.root)
}

// measureBound times raw creates and status updates of a small custom
// resource (Recipient) with 1 and 32 client goroutines, before any
// controller runs.
func (h *harness) measureBound() {
	ns := h.namespace("bound")
	for _, workers := range []int{1, 32} {
		n := boundCreates
		if workers == 1 {
			n = boundCreates / 2
		}
		prefix := fmt.Sprintf("w%d-", workers)
		objs := make([]*notifyv1.Recipient, n)
		for i := range objs {
			objs[i] = &notifyv1.Recipient{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s%05d", prefix, i), Namespace: ns},
				Spec:       notifyv1.RecipientSpec{Username: "u", Email: "u@example.com"},
			}
		}
		d := parallel(workers, n, func(i int) error { return h.c.Create(context.Background(), objs[i]) })
		h.report.bound(fmt.Sprintf("creates/s, %d goroutine(s)", workers), float64(n)/d.Seconds())
		d = parallel(workers, n, func(i int) error {
			o := objs[i]
			meta.SetStatusCondition(&o.Status.Conditions, metav1.Condition{Type: "Bench", Status: metav1.ConditionTrue, Reason: "Bench"})
			return h.c.Status().Update(context.Background(), o)
		})
		h.report.bound(fmt.Sprintf("status updates/s, %d goroutine(s)", workers), float64(n)/d.Seconds())
	}
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
	if sink != nil {
		h.webhookProvider(ns, sink.URL)
	}
	created := make([]time.Time, notifications)
	names := make([]string, notifications)
	for i := range names {
		names[i] = fmt.Sprintf("n%05d", i)
	}
	w := h.watchDeliveries(ns)
	defer w.stop()
	before := h.apiWrites()
	cpu0 := h.ctrl.CPU()
	h.ctrl.ResetPeakRSS()

	start := time.Now()
	parallel(32, notifications, func(i int) error {
		created[i] = time.Now()
		return h.c.Create(context.Background(), h.notification(ns, names[i], ch, notifyv1.Audience{Users: []string{"r0"}}))
	})
	w.waitSucceeded(h.t, notifications, 20*time.Minute)
	h.waitNotificationsDelivered(ns, notifications)
	elapsed := time.Since(start)

	writes := h.apiWrites().minus(before)
	lat := w.latencies(func(d *notifyv1.ChannelDelivery) time.Time {
		var i int
		fmt.Sscanf(d.Spec.Notification, "n%05d", &i)
		return created[i]
	})
	h.report.run(runResult{
		Name:       fmt.Sprintf("%d single-recipient %s notifications", notifications, label),
		Deliveries: notifications,
		Elapsed:    elapsed,
		Latency:    lat,
		Writes:     writes,
		// The bench's own creates of the notifications are not the
		// controller's writes.
		ClientCreates: notifications,
		CPU:           h.ctrl.CPU() - cpu0,
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
	w := h.watchDeliveries(ns)
	defer w.stop()
	before := h.apiWrites()
	cpu0 := h.ctrl.CPU()
	h.ctrl.ResetPeakRSS()
	start := time.Now()
	if err := h.c.Create(context.Background(), h.notification(ns, "all-hands", notifyv1.ChannelInApp, notifyv1.Audience{Roles: []string{"everyone"}})); err != nil {
		h.t.Fatal(err)
	}
	w.waitSucceeded(h.t, fanOut, 20*time.Minute)
	h.waitNotificationsDelivered(ns, 1)
	elapsed := time.Since(start)
	h.report.run(runResult{
		Name:          fmt.Sprintf("one inApp notification to %d recipients", fanOut),
		Deliveries:    fanOut,
		Elapsed:       elapsed,
		Latency:       w.latencies(func(*notifyv1.ChannelDelivery) time.Time { return start }),
		Writes:        h.apiWrites().minus(before),
		ClientCreates: 1,
		CPU:           h.ctrl.CPU() - cpu0,
		PeakRSS:       h.ctrl.PeakRSS(),
	})
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

func (h *harness) waitNotificationsDelivered(ns string, n int) {
	h.eventually(20*time.Minute, func() bool {
		var list notifyv1.NotificationList
		if err := h.c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return false
		}
		done := 0
		for _, it := range list.Items {
			if it.Status.Phase == notifyv1.NotificationDelivered {
				done++
			}
		}
		return done == n
	}, "notifications Delivered")
}

func (h *harness) eventually(limit time.Duration, cond func() bool, what string) {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// deliveryWatch follows ChannelDeliveries of a namespace through an
// informer, so waiting costs the API server one watch, not repeated lists.
type deliveryWatch struct {
	cache  cache.Cache
	cancel context.CancelFunc
	ns     string
}

func (h *harness) watchDeliveries(ns string) *deliveryWatch {
	c, err := cache.New(h.cfg, cache.Options{Scheme: h.env.Scheme, DefaultNamespaces: map[string]cache.Config{ns: {}}})
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := c.GetInformer(context.Background(), &notifyv1.ChannelDelivery{}); err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = c.Start(ctx) }()
	c.WaitForCacheSync(ctx)
	return &deliveryWatch{cache: c, cancel: cancel, ns: ns}
}

func (w *deliveryWatch) stop() { w.cancel() }

func (w *deliveryWatch) list() []notifyv1.ChannelDelivery {
	var list notifyv1.ChannelDeliveryList
	_ = w.cache.List(context.Background(), &list, client.InNamespace(w.ns))
	return list.Items
}

func (w *deliveryWatch) waitSucceeded(t *testing.T, n int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for {
		done := 0
		for _, d := range w.list() {
			if d.Status.Phase == notifyv1.DeliverySucceeded {
				done++
			}
		}
		if done >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d deliveries succeeded in %s", done, n, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// latencies returns create-to-Succeeded latency per delivery, sorted.
func (w *deliveryWatch) latencies(createdAt func(*notifyv1.ChannelDelivery) time.Time) []time.Duration {
	var out []time.Duration
	for _, d := range w.list() {
		if d.Status.CompletionTime == nil {
			continue
		}
		out = append(out, d.Status.CompletionTime.Sub(createdAt(&d)))
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
	user, err := h.env.AddUser(envtest.User{Name: "herald-controller", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		h.t.Fatal(err)
	}
	path := filepath.Join(h.t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		h.t.Fatal(err)
	}
	h.ctrl, err = controllerproc.Start(h.root, path, strings.Fields(os.Getenv("HERALD_BENCH_FLAGS"))...)
	if err != nil {
		h.t.Fatal(err)
	}
	h.report.controllerArgs = h.ctrl.Args()
}
