//go:build bench

package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/dev"
	"github.com/herald-dev/herald/internal/dev/testutil/controllerproc"
	heraldenvtest "github.com/herald-dev/herald/internal/dev/testutil/envtest"
)

var (
	subscribers = envInt("HERALD_BENCH_SUBSCRIBERS", 1000)
	// inboxRate paces the notifications of the inbox run, so that latency
	// shows the path of one item rather than a queue of a thousand.
	inboxRate = envInt("HERALD_BENCH_INBOX_RATE", 50)
)

const benchUsersGroup = "herald-bench-users"

// inboxResult is the outcome of the inbox run.
type inboxResult struct {
	Subscribers int
	Rate        int
	Connect     time.Duration
	// Latency is notification create → the item's SSE event at its
	// subscriber; Watch is notification create → the delivery Succeeded as
	// a plain watch on kube-apiserver sees it: the inbox cannot show an
	// item earlier, so Watch is the bound for Latency.
	Latency, Watch []time.Duration
	// The inbox server's resident memory when started (holding the
	// deliveries of the earlier runs), with every subscriber connected, and
	// its peak while the items arrived.
	BaselineRSS, ConnectedRSS, PeakRSS int64
	Deliveries                         int
	// Hops splits Latency into the steps of one item's way (traceHops).
	Hops []hop
}

// measureInbox runs the inbox API server as its own process behind
// kube-apiserver's aggregator, connects subscribers SSE streams (each as
// its own user, through kube-apiserver, as a browser would), sends each one
// in-app notification and times its arrival.
func (h *harness) measureInbox() {
	ns := h.namespace("inbox")
	var all notifyv1.ChannelDeliveryList
	if err := h.c.List(context.Background(), &all, client.Limit(1)); err != nil {
		h.t.Fatal(err)
	}
	held := int(ptrOr(all.RemainingItemCount, 0)) + len(all.Items)
	proc, baseline := h.startInboxServer()
	defer proc.Kill()

	users := make([]string, subscribers)
	parallel(32, subscribers, func(i int) error {
		users[i] = fmt.Sprintf("user%04d", i)
		return h.c.Create(context.Background(), &notifyv1.Recipient{
			ObjectMeta: metav1.ObjectMeta{Name: users[i], Namespace: ns},
			Spec:       notifyv1.RecipientSpec{Username: users[i]},
		})
	})
	h.waitRecipientsChecked(ns, subscribers)

	tr, err := rest.TransportFor(h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	hc := &http.Client{Transport: tr}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streams := make([]*benchStream, subscribers)
	start := time.Now()
	parallel(32, subscribers, func(i int) error {
		s, err := openBenchStream(ctx, hc, h.cfg.Host, ns, users[i])
		streams[i] = s
		return err
	})
	connect := time.Since(start)
	connected := proc.RSS()
	proc.ResetPeakRSS()

	// The bound: when a plain watch on kube-apiserver sees each delivery
	// Succeeded.
	var mu sync.Mutex
	seen := map[string]time.Time{}
	added := map[string]time.Time{} // the delivery first seen by the watch
	dc, err := cache.New(h.cfg, cache.Options{Scheme: h.env.Scheme, DefaultNamespaces: map[string]cache.Config{ns: {}}})
	if err != nil {
		h.t.Fatal(err)
	}
	inf, err := dc.GetInformer(ctx, &notifyv1.ChannelDelivery{})
	if err != nil {
		h.t.Fatal(err)
	}
	note := func(obj any) {
		d, ok := obj.(*notifyv1.ChannelDelivery)
		if !ok {
			return
		}
		mu.Lock()
		if _, done := added[d.Spec.Recipient.Username]; !done {
			added[d.Spec.Recipient.Username] = time.Now()
		}
		mu.Unlock()
		if d.Phase() != notifyv1.DeliverySucceeded {
			return
		}
		mu.Lock()
		if _, done := seen[d.Spec.Recipient.Username]; !done {
			seen[d.Spec.Recipient.Username] = time.Now()
		}
		mu.Unlock()
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: note, UpdateFunc: func(_, o any) { note(o) }}); err != nil {
		h.t.Fatal(err)
	}
	go func() { _ = dc.Start(ctx) }()
	dc.WaitForCacheSync(ctx)

	created := make([]time.Time, subscribers)
	createReturned := make([]time.Time, subscribers)
	limiter := rate.NewLimiter(rate.Limit(inboxRate), 1)
	parallel(16, subscribers, func(i int) error {
		if err := limiter.Wait(ctx); err != nil {
			return err
		}
		created[i] = time.Now()
		err := h.c.Create(ctx, h.notification(ns, "to-"+users[i], notifyv1.ChannelInApp, notifyv1.Audience{Users: []string{users[i]}}))
		createReturned[i] = time.Now()
		return err
	})
	res := inboxResult{Subscribers: subscribers, Rate: inboxRate, Connect: connect, BaselineRSS: baseline, ConnectedRSS: connected, Deliveries: held}
	deadline := time.Now().Add(10 * time.Minute)
	evented := make([]time.Time, subscribers)
	for i, s := range streams {
		select {
		case at := <-s.item:
			evented[i] = at
			res.Latency = append(res.Latency, at.Sub(created[i]))
		case <-time.After(time.Until(deadline)):
			h.t.Fatalf("%s got no item within 10 minutes of the first notification", users[i])
		}
	}
	h.eventually(time.Minute, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == subscribers }, "every delivery seen by the plain watch")
	traces := make([]itemTrace, subscribers)
	for i, u := range users {
		res.Watch = append(res.Watch, seen[u].Sub(created[i]))
		traces[i] = itemTrace{User: u, Create: created[i], CreateReturned: createReturned[i], DeliverySeen: added[u], SucceededSeen: seen[u], Event: evented[i]}
	}
	res.Hops = h.traceHops(ns, traces)
	res.PeakRSS = proc.PeakRSS()
	// Each subscriber must have seen exactly its own item: another user's
	// item on a stream would be a leak, a second one a duplicate.
	for i, s := range streams {
		if n, other := s.items.Load(), s.foreign.Load(); n != 1 || other != 0 {
			h.t.Fatalf("%s's stream carried %d items, %d of them not addressed to it", users[i], n, other)
		}
	}
	sort.Slice(res.Latency, func(i, j int) bool { return res.Latency[i] < res.Latency[j] })
	sort.Slice(res.Watch, func(i, j int) bool { return res.Watch[i] < res.Watch[j] })
	h.report.inbox = &res
	fmt.Println(inboxLine(res))
}

func ptrOr(p *int64, def int64) int64 {
	if p == nil {
		return def
	}
	return *p
}

// startInboxServer runs `herald apiserver` and registers it with
// kube-apiserver's aggregator, the way config/apiserver does in a cluster
// (an ExternalName Service stands in for the Deployment's Service), and
// grants the shipped herald-inbox-user role to the bench's users. It
// returns the process and its resident memory once it serves.
func (h *harness) startInboxServer() (*controllerproc.Process, int64) {
	kcFile, _, err := heraldenvtest.AdminKubeconfig(h.env, "herald-inbox", h.t.TempDir())
	if err != nil {
		h.t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	proc, err := controllerproc.StartCommand(h.root, kcFile, "apiserver",
		fmt.Sprintf("--secure-port=%d", port), "--bind-address=127.0.0.1",
		"--kubeconfig="+kcFile, "--authentication-kubeconfig="+kcFile, "--authorization-kubeconfig="+kcFile,
		"--kube-api-qps=1000", "--kube-api-burst=2000")
	if err != nil {
		h.t.Fatal(err)
	}
	ctx := context.Background()
	if err := h.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: dev.InboxNamespace}}); err != nil {
		h.t.Fatal(err)
	}
	for _, o := range dev.InboxRegistration(port, nil) {
		if err := h.c.Create(ctx, o); err != nil {
			h.t.Fatal(err)
		}
	}
	data, err := os.ReadFile(filepath.Join(h.root, "config", "apiserver", "user_clusterrole.yaml"))
	if err != nil {
		h.t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(data, &role); err != nil {
		h.t.Fatal(err)
	}
	if err := h.c.Create(ctx, &role); err != nil {
		h.t.Fatal(err)
	}
	if err := h.c.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "herald-inbox-bench-users"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "Group", Name: benchUsersGroup}},
	}); err != nil {
		h.t.Fatal(err)
	}
	// Served through the aggregator, with the role in effect.
	probe := rest.CopyConfig(h.cfg)
	probe.Impersonate = rest.ImpersonationConfig{UserName: "probe", Groups: []string{benchUsersGroup}}
	pc, err := client.New(probe, client.Options{Scheme: inboxScheme(h)})
	if err != nil {
		h.t.Fatal(err)
	}
	h.eventually(2*time.Minute, func() bool {
		if proc.Exited() {
			h.t.Fatal("the inbox server exited")
		}
		return pc.List(ctx, &inboxv1.InboxItemList{}, client.InNamespace("default")) == nil
	}, "the inbox API served through kube-apiserver")
	return proc, proc.RSS()
}

func inboxScheme(h *harness) *runtime.Scheme {
	s := h.env.Scheme
	_ = inboxv1.AddToScheme(s)
	return s
}

// benchStream is one subscriber's SSE stream.
type benchStream struct {
	item    chan time.Time // arrival of the first item event
	items   atomic.Int64
	foreign atomic.Int64
}

// openBenchStream opens user's stream through kube-apiserver (the admin
// impersonates the user, as an authenticating proxy would) and returns once
// the initial reset event has arrived.
func openBenchStream(ctx context.Context, hc *http.Client, host, ns, user string) (*benchStream, error) {
	url := strings.TrimSuffix(host, "/") + "/apis/inbox.herald.dev/v1alpha1/namespaces/" + ns + "/stream?watch=1"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Impersonate-User", user)
	req.Header.Set("Impersonate-Group", benchUsersGroup)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("stream of %s: %s", user, resp.Status)
	}
	s := &benchStream{item: make(chan time.Time, 1)}
	ready := make(chan error, 1)
	go func() {
		defer resp.Body.Close()
		r := bufio.NewReader(resp.Body)
		var typ, data string
		reset := false
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				if !reset {
					ready <- fmt.Errorf("stream of %s ended before its first event: %w", user, err)
				}
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case strings.HasPrefix(line, "event: "):
				typ = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				data = line[len("data: "):]
			case line == "" && typ != "":
				now := time.Now()
				switch typ {
				case "reset":
					if !reset {
						reset = true
						ready <- nil
					}
				case "item":
					var it inboxv1.InboxItem
					if json.Unmarshal([]byte(data), &it) != nil || it.Spec.Notification != "to-"+user {
						s.foreign.Add(1)
					}
					if s.items.Add(1) == 1 {
						s.item <- now
					}
				}
				typ, data = "", ""
			}
		}
	}()
	select {
	case err := <-ready:
		return s, err
	case <-time.After(time.Minute):
		return nil, fmt.Errorf("stream of %s: no reset event within a minute", user)
	}
}

func inboxLine(r inboxResult) string {
	ratio := func(p float64) string {
		w := pct(r.Watch, p)
		if w <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f", float64(pct(r.Latency, p))/float64(w))
	}
	mib := func(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
	return fmt.Sprintf("| %d subscribers, one item each, %d notifications/s | %s | %s / %s | %s / %s | **%s / %s** | %s / %s / %s | %.0f KiB |",
		r.Subscribers, r.Rate, r.Connect.Round(time.Millisecond),
		pct(r.Latency, 0.5).Round(time.Millisecond), pct(r.Latency, 0.99).Round(time.Millisecond),
		pct(r.Watch, 0.5).Round(time.Millisecond), pct(r.Watch, 0.99).Round(time.Millisecond),
		ratio(0.5), ratio(0.99),
		mib(r.BaselineRSS), mib(r.ConnectedRSS), mib(r.PeakRSS),
		float64(r.ConnectedRSS-r.BaselineRSS)/float64(r.Subscribers)/1024)
}
