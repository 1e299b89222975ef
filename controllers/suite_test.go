package controllers_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/controllers"
	notificationctl "github.com/herald-dev/herald/controllers/notification"
	heraldenvtest "github.com/herald-dev/herald/internal/dev/testutil/envtest"
	"github.com/herald-dev/herald/internal/retry"
)

// One control plane serves the whole package; each test works in a fresh
// namespace and starts (and may stop and restart) its own manager, as a
// controller process would.

var (
	testEnv   *envtest.Environment
	cfg       *rest.Config
	k8sClient client.Client
	suiteCtx  context.Context
	cancel    context.CancelFunc
)

func TestControllers(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a control plane")
	}
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	RunSpecs(t, "Controllers suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	suiteCtx, cancel = context.WithCancel(context.Background())
	var err error
	testEnv, err = heraldenvtest.New()
	Expect(err).NotTo(HaveOccurred())
	cfg, err = heraldenvtest.Start(testEnv)
	Expect(err).NotTo(HaveOccurred())
	k8sClient, err = client.New(cfg, client.Options{Scheme: testEnv.Scheme})
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	cancel()
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

// testOptions keeps retries short so that tests observe several attempts
// in well under a second.
func testOptions() controllers.Options {
	opts := controllers.DefaultOptions()
	opts.DefaultRetry = retry.Policy{Strategy: retry.Exponential, MaxAttempts: 4, InitialDelay: 100 * time.Millisecond, MaxDelay: 2 * time.Second}
	opts.DefaultTimeout = 5 * time.Second
	// Tests read a notification's counts as they change.
	opts.StatusInterval = 0
	// The tests' sinks listen on loopback, refused by default; nothing
	// else is allowed.
	opts.EgressAllow = []string{"127.0.0.0/8", "::1"}
	return opts
}

// startManager runs Herald's controllers until the returned stop is called.
func startManager(opts controllers.Options) (stop func()) {
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 testEnv.Scheme,
		Cache:                  controllers.CacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// Tests start several managers in one process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	_, err = controllers.Setup(mgr, opts)
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(suiteCtx)
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	return func() {
		cancel()
		<-done
	}
}

var nsCounter atomic.Int32

// newNamespace creates a namespace for one test.
func newNamespace() string {
	name := fmt.Sprintf("t%d-%d", GinkgoParallelProcess(), nsCounter.Add(1))
	Expect(k8sClient.Create(suiteCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	return name
}

// newNamespaceWithManager creates a namespace for one spec and runs
// Herald's controllers with testOptions() until the spec ends.
func newNamespaceWithManager() string {
	ns := newNamespace()
	stop := startManager(testOptions())
	DeferCleanup(func() { stop() })
	return ns
}

func createRecipient(ns, name string, mutate func(*notifyv1.RecipientSpec)) *notifyv1.Recipient {
	r := &notifyv1.Recipient{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: notifyv1.RecipientSpec{
			DisplayName: name,
			Username:    name,
			Email:       name + "@example.com",
		},
	}
	if mutate != nil {
		mutate(&r.Spec)
	}
	Expect(k8sClient.Create(suiteCtx, r)).To(Succeed())
	return r
}

// waitProviderReady waits until the controller has built the provider.
func waitProviderReady(ns, name string) {
	Eventually(func(g Gomega) {
		var p notifyv1.NotificationProvider
		g.Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name}, &p)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(p.Status.Conditions, notifyv1.ConditionReady)).To(BeTrue(), "provider conditions: %+v", p.Status.Conditions)
	}).Should(Succeed())
}

// providerReady returns the provider's Ready condition as it is now,
// failing g if there is none yet.
func providerReady(g Gomega, ns, name string) *metav1.Condition {
	var p notifyv1.NotificationProvider
	g.Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name}, &p)).To(Succeed())
	c := meta.FindStatusCondition(p.Status.Conditions, notifyv1.ConditionReady)
	g.Expect(c).NotTo(BeNil(), "provider conditions: %+v", p.Status.Conditions)
	return c
}

func getNotification(ns, name string) *notifyv1.Notification {
	var n notifyv1.Notification
	Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name}, &n)).To(Succeed())
	return &n
}

// waitPhase waits for a notification to reach phase and returns it.
func waitPhase(ns, name string, phase notifyv1.NotificationPhase) *notifyv1.Notification {
	var n notifyv1.Notification
	Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name}, &n)).To(Succeed())
		g.Expect(n.Status.Phase).To(Equal(phase), "status: %+v", n.Status)
	}).Should(Succeed())
	return &n
}

func deliveries(ns, notification string) []notifyv1.ChannelDelivery {
	var list notifyv1.ChannelDeliveryList
	Expect(k8sClient.List(suiteCtx, &list, client.InNamespace(ns),
		client.MatchingLabels{notifyv1.LabelNotification: notifyv1.LabelValue(notification)})).To(Succeed())
	return list.Items
}

func getDelivery(ns, notificationName string, ch notifyv1.Channel, recipient string) *notifyv1.ChannelDelivery {
	var d notifyv1.ChannelDelivery
	Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: notificationctl.DeliveryName(notificationName, ch, recipient)}, &d)).To(Succeed())
	return &d
}
