//go:build faults

// Package faults runs Herald through failures — a killed controller, a
// stopped API server, failing receivers, bad input — and checks that every
// delivery ends Succeeded exactly once at its receiver or finished with a
// reason, and that none is lost. Run it with `make test-faults`.
package faults

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/dev/testutil/controllerproc"
	heraldenvtest "github.com/herald-dev/herald/internal/dev/testutil/envtest"
)

var (
	testEnv    *envtest.Environment
	cfg        *rest.Config
	k8s        client.Client
	ctx        = context.Background()
	root       string
	kubeconfig string
)

func TestFaults(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(3 * time.Minute)
	SetDefaultEventuallyPollingInterval(250 * time.Millisecond)
	RunSpecs(t, "Fault suite")
}

var _ = BeforeSuite(func() {
	var err error
	testEnv, err = heraldenvtest.New()
	Expect(err).NotTo(HaveOccurred())
	// A fixed certificate directory lets the API server be stopped and
	// started again with the same serving certificate and client CA.
	certDir, err := os.MkdirTemp("", "herald-faults-apiserver-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, certDir)
	testEnv.ControlPlane.GetAPIServer().CertDir = certDir
	// Past this, a stop becomes SIGKILL: an outage, not a drain.
	testEnv.ControlPlane.GetAPIServer().StopTimeout = 5 * time.Second
	cfg, err = heraldenvtest.Start(testEnv)
	Expect(err).NotTo(HaveOccurred())
	cfg.QPS, cfg.Burst = -1, 0
	k8s, err = client.New(cfg, client.Options{Scheme: testEnv.Scheme})
	Expect(err).NotTo(HaveOccurred())
	root, err = heraldenvtest.RepoRoot()
	Expect(err).NotTo(HaveOccurred())

	kubeconfig, _, err = heraldenvtest.AdminKubeconfig(testEnv, "herald-controller", certDir)
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

// startController runs a controller process for the rest of the spec.
func startController(args ...string) *controllerproc.Process {
	p, err := controllerproc.Start(root, kubeconfig, args...)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(p.Kill)
	return p
}

var nsSeq int
var nsMu sync.Mutex

func namespace(prefix string) string {
	nsMu.Lock()
	nsSeq++
	name := fmt.Sprintf("%s-%d", prefix, nsSeq)
	nsMu.Unlock()
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	return name
}

// createAll creates objects with a few goroutines, failing on any error.
func createAll[T client.Object](objs []T) {
	var wg sync.WaitGroup
	errs := make(chan error, len(objs))
	work := make(chan T)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				if err := k8s.Create(ctx, o); err != nil {
					errs <- fmt.Errorf("%s: %w", o.GetName(), err)
				}
			}
		}()
	}
	for _, o := range objs {
		work <- o
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		Expect(err).NotTo(HaveOccurred())
	}
}

func recipients(ns string, n int, mutate func(i int, s *notifyv1.RecipientSpec)) []string {
	var names []string
	var objs []*notifyv1.Recipient
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("r%03d", i)
		names = append(names, name)
		r := &notifyv1.Recipient{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec:       notifyv1.RecipientSpec{Username: name, Email: name + "@" + ns + ".example.com"},
		}
		if mutate != nil {
			mutate(i, &r.Spec)
		}
		objs = append(objs, r)
	}
	createAll(objs)
	return names
}

// notifications creates count notifications, each to `per` consecutive
// recipients, on the given channel with a retry policy patient enough to
// ride out the faults.
func notifications(ns string, users []string, count, per int, ch notifyv1.Channel, mutate func(*notifyv1.NotificationSpec)) {
	var objs []*notifyv1.Notification
	for i := 0; i < count; i++ {
		var audience []string
		for j := 0; j < per; j++ {
			audience = append(audience, users[(i*per+j)%len(users)])
		}
		n := &notifyv1.Notification{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("n%03d", i), Namespace: ns},
			Spec: notifyv1.NotificationSpec{
				Title:    "Fault test",
				Message:  fmt.Sprintf("message %d", i),
				Audience: notifyv1.Audience{Users: audience},
				Channels: []notifyv1.Channel{ch},
				Timeout:  &metav1.Duration{Duration: 3 * time.Second},
				Retry:    patientRetry(),
			},
		}
		if mutate != nil {
			mutate(&n.Spec)
		}
		objs = append(objs, n)
	}
	createAll(objs)
}

func patientRetry() *notifyv1.RetryPolicy {
	attempts := int32(40)
	return &notifyv1.RetryPolicy{
		Strategy:     notifyv1.BackoffExponential,
		MaxAttempts:  &attempts,
		InitialDelay: &metav1.Duration{Duration: 500 * time.Millisecond},
		MaxDelay:     &metav1.Duration{Duration: 2 * time.Second},
	}
}

func deliveries(ns string) []notifyv1.ChannelDelivery {
	var list notifyv1.ChannelDeliveryList
	Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
	return list.Items
}

// waitAllFinished waits until every notification in ns has finished and
// returns them.
func waitAllFinished(ns string, count int) []notifyv1.Notification {
	var list notifyv1.NotificationList
	Eventually(func(g Gomega) {
		g.Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
		g.Expect(list.Items).To(HaveLen(count))
		unfinished := 0
		for _, n := range list.Items {
			if !n.Status.Phase.Finished() {
				unfinished++
			}
		}
		g.Expect(unfinished).To(BeZero(), "notifications still in flight")
	}).Should(Succeed())
	return list.Items
}

// expectAllSucceeded checks every delivery of ns succeeded.
func expectAllSucceeded(ns string, want int) []notifyv1.ChannelDelivery {
	ds := deliveries(ns)
	Expect(ds).To(HaveLen(want))
	for _, d := range ds {
		Expect(d.Phase()).To(Equal(notifyv1.DeliverySucceeded), "%s: %s %s", d.Name, d.Status.Reason, d.Status.Message)
	}
	return ds
}
