package controllers_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	heraldenvtest "github.com/herald-dev/herald/internal/dev/testutil/envtest"
	"github.com/herald-dev/herald/internal/kubectlherald"
	"github.com/herald-dev/herald/pkg/notify"
)

// kubectlHerald runs the plugin's command code in this process, as the
// envtest admin, and returns what it printed.
func kubectlHerald(ctx context.Context, args ...string) (string, error) {
	GinkgoHelper()
	kubeconfig, _, err := heraldenvtest.AdminKubeconfig(testEnv, fmt.Sprintf("kubectl-herald-%d", nsCounter.Add(1)), GinkgoT().TempDir())
	Expect(err).NotTo(HaveOccurred())
	var out, errOut bytes.Buffer
	cmd := kubectlherald.NewCommand(genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: &out, ErrOut: &errOut})
	cmd.SetArgs(append([]string{"--kubeconfig", kubeconfig}, args...))
	err = cmd.ExecuteContext(ctx)
	return out.String() + errOut.String(), err
}

// createRecipients creates n Recipients with role, in parallel.
func createRecipients(ns, role string, n int) {
	GinkgoHelper()
	g, ctx := errgroup.WithContext(suiteCtx)
	g.SetLimit(16)
	for i := range n {
		g.Go(func() error {
			name := fmt.Sprintf("r%05d", i)
			return k8sClient.Create(ctx, &notifyv1.Recipient{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
				Spec:       notifyv1.RecipientSpec{Username: name, Email: name + "@example.com", Roles: []string{role}},
			})
		})
	}
	Expect(g.Wait()).To(Succeed())
}

var _ = Describe("operator tools", func() {
	It("re-drives 50 failed webhook deliveries with kubectl herald retry, keeping their histories", func() {
		ns := newNamespaceWithManager()
		sink := newWebhookSink()
		DeferCleanup(sink.Close)
		var broken atomic.Bool
		broken.Store(true)
		sink.setRespond(func(string, int, http.ResponseWriter) int {
			if broken.Load() {
				return http.StatusBadGateway
			}
			return http.StatusOK
		})
		createWebhookProvider(ns, sink.URL)
		createRecipients(ns, "oncall", 50)
		notification(ns, "outage", func(s *notifyv1.NotificationSpec) {
			s.Audience = notifyv1.Audience{Roles: []string{"oncall"}}
			s.Retry = &notifyv1.RetryPolicy{MaxAttempts: ptr.To[int32](2)}
		})

		By("the receiver failing, every delivery ends Failed")
		n := waitPhase(ns, "outage", notifyv1.NotificationFailed)
		Expect(n.Status.Deliveries.Failed).To(BeEquivalentTo(50))
		for _, d := range deliveries(ns, "outage") {
			Expect(d.Status.Reason).To(Equal(notifyv1.ReasonAttemptsExhausted))
			Expect(d.Status.History).To(HaveLen(2))
		}
		out, err := kubectlHerald(suiteCtx, "-n", ns, "status", "outage")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("Notification %s/outage: Failed", ns))
		Expect(out).To(ContainSubstring("└─ webhook (50)"))
		Expect(out).To(ContainSubstring("Failed (AttemptsExhausted)  attempts 2"))

		By("the receiver fixed, kubectl herald retry re-drives them and waits for the outcome")
		broken.Store(false)
		out, err = kubectlHerald(suiteCtx, "-n", ns, "retry", "outage", "--wait", "--timeout", "60s")
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(out).To(ContainSubstring("outage Delivered: 50 succeeded, 0 failed"))

		n = getNotification(ns, "outage")
		Expect(n.Status.Phase).To(Equal(notifyv1.NotificationDelivered))
		Expect(n.Status.Retry).NotTo(BeNil())
		Expect(n.Status.Retry.Deliveries).To(BeEquivalentTo(50))
		ds := deliveries(ns, "outage")
		Expect(ds).To(HaveLen(50))
		for _, d := range ds {
			Expect(d.Status.Phase).To(Equal(notifyv1.DeliverySucceeded), d.Name)
			Expect(d.Status.Attempts).To(BeEquivalentTo(3))
			Expect(d.Status.AttemptsBeforeRetry).To(BeEquivalentTo(2))
			Expect(d.Status.History).To(HaveLen(3), "the old attempts stay in the history")
			Expect(d.Status.History[0].Outcome).To(Equal("Failed"))
			Expect(d.Status.History[1].Outcome).To(Equal("Failed"))
			Expect(d.Status.History[2].Outcome).To(Equal("Succeeded"))
			Expect(d.Status.History[2].Number).To(BeEquivalentTo(3))
		}

		By("the same annotation value re-drives nothing again")
		before := len(sink.all())
		Expect(k8sClient.Get(suiteCtx, client.ObjectKeyFromObject(n), n)).To(Succeed())
		n.Annotations["unrelated"] = "x"
		Expect(k8sClient.Update(suiteCtx, n)).To(Succeed())
		Consistently(func() int { return len(sink.all()) }, time.Second).Should(Equal(before))
		Expect(getNotification(ns, "outage").Status.Phase).To(Equal(notifyv1.NotificationDelivered))
	})

	It("cancels a 5,000-recipient notification mid-fan-out: nothing is sent after the cancel is recorded", func() {
		ns := newNamespace()
		const recipients = 5000
		// Created before the controller starts, so that its cache holds
		// every Recipient when the notification arrives.
		createRecipients(ns, "everyone", recipients)
		opts := testOptions()
		// A slow fan-out, so that the cancel lands in the middle of it.
		opts.FanOutParallelism = 1
		stop := startManager(opts)
		DeferCleanup(func() { stop() })
		sink := newWebhookSink()
		DeferCleanup(sink.Close)
		createWebhookProvider(ns, sink.URL)
		notification(ns, "wrong", func(s *notifyv1.NotificationSpec) {
			s.Audience = notifyv1.Audience{Roles: []string{"everyone"}}
		})

		By("the first deliveries being sent, an operator cancels")
		Eventually(func() int { return len(sink.all()) }).Should(BeNumerically(">=", 5))
		out, err := kubectlHerald(suiteCtx, "-n", ns, "cancel", "wrong", "--wait", "--timeout", "120s")
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(out).To(ContainSubstring("wrong Cancelled"))

		n := getNotification(ns, "wrong")
		Expect(n.Status.Phase).To(Equal(notifyv1.NotificationCancelled))
		Expect(n.Status.Cancel).NotTo(BeNil())
		cancelledAt := n.Status.Cancel.Time.Time
		Expect(n.Status.Cancel.NotCreated).To(BeNumerically(">", 0), "the cancel came mid-fan-out: %+v", n.Status)
		d := n.Status.Deliveries
		Expect(d.Total).To(BeEquivalentTo(recipients))
		Expect(d.Succeeded+d.Cancelled).To(Equal(d.Total), "counts: %+v", d)

		By("no attempt started after the cancel was recorded, and each send is recorded")
		ds := deliveries(ns, "wrong")
		Expect(int32(len(ds)) + n.Status.Cancel.NotCreated).To(BeEquivalentTo(recipients))
		sent := 0
		for _, dl := range ds {
			Expect(dl.CreationTimestamp.Time).NotTo(BeTemporally(">", cancelledAt.Add(time.Second)), "created after the cancel: %s", dl.Name)
			switch dl.Status.Phase {
			case notifyv1.DeliverySucceeded:
				sent++
				for _, a := range dl.Status.History {
					Expect(a.StartTime.Time).To(BeTemporally("<", cancelledAt), "attempt of %s started after the cancel", dl.Name)
				}
			case notifyv1.DeliveryCancelled:
				Expect(dl.Status.Attempts).To(BeZero(), dl.Name)
				Expect(dl.Status.Reason).To(Equal(notifyv1.ReasonCancelled))
			default:
				Fail(fmt.Sprintf("delivery %s ended %s", dl.Name, dl.Status.Phase))
			}
		}
		Expect(sent).To(BeEquivalentTo(d.Succeeded))
		received := map[string]bool{}
		for _, r := range sink.all() {
			received[r.Delivery] = true
		}
		Expect(received).To(HaveLen(sent), "every request the receiver got is a recorded success")
		Consistently(func() int { return len(sink.all()) }, time.Second).Should(Equal(len(sink.all())))
		_, err = kubectlHerald(suiteCtx, "-n", ns, "retry", "wrong")
		Expect(err).To(MatchError(ContainSubstring("was cancelled")))
		AddReportEntry("cancel", fmt.Sprintf("%d of %d deliveries created, %d sent before the cancel, %d cancelled",
			len(ds), recipients, sent, d.Cancelled))
	})

	It("sends a Notification from flags and waits for its outcome; status prints it as yaml", func() {
		ns := newNamespaceWithManager()
		createRecipient(ns, "alice", nil)
		out, err := kubectlHerald(suiteCtx, "-n", ns, "send", "--key", "deploy/v1.2", "--to", "alice", "--channel", "inApp",
			"--title", "Deploy done", "--message", "v1.2 is live", "-o", "json", "--wait", "--timeout", "30s")
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(out).To(ContainSubstring(`"kind": "Notification"`))
		Expect(out).To(ContainSubstring("Delivered: 1 succeeded"))
		name := notify.Name("deploy/v1.2")
		out, err = kubectlHerald(suiteCtx, "-n", ns, "status", name, "-o", "yaml")
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(out).To(ContainSubstring("kind: List"))
		Expect(out).To(ContainSubstring("kind: ChannelDelivery"))
		_, err = kubectlHerald(suiteCtx, "-n", ns, "status", "no-such-notification")
		Expect(err).To(MatchError(ContainSubstring(`reading notification ` + ns + `/no-such-notification`)))
	})

	It("re-drives an expired delivery with a new deadline", func() {
		ns := newNamespaceWithManager()
		sink := newWebhookSink()
		DeferCleanup(sink.Close)
		var broken atomic.Bool
		broken.Store(true)
		sink.setRespond(func(string, int, http.ResponseWriter) int {
			if broken.Load() {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		})
		createWebhookProvider(ns, sink.URL)
		createRecipient(ns, "alice", nil)
		expires := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
		notification(ns, "short-lived", func(s *notifyv1.NotificationSpec) {
			s.ExpiresAt = &metav1.Time{Time: expires}
			s.Retry = &notifyv1.RetryPolicy{MaxAttempts: ptr.To[int32](50)}
		})
		waitPhase(ns, "short-lived", notifyv1.NotificationExpired)

		broken.Store(false)
		Expect(notify.Retry(suiteCtx, k8sClient, ns, "short-lived", "after-the-fix", notify.RetryFilter{Reason: notifyv1.ReasonExpired})).To(Succeed())
		n := waitPhase(ns, "short-lived", notifyv1.NotificationDelivered)
		Expect(n.Status.Retry.Value).To(Equal("after-the-fix"))
		d := getDelivery(ns, "short-lived", notifyv1.ChannelWebhook, "alice")
		Expect(d.Status.ExpiresAt).NotTo(BeNil())
		Expect(d.Status.ExpiresAt.Time).To(BeTemporally(">", expires), "a new deadline after the old one")
		Expect(d.Status.History[len(d.Status.History)-1].Outcome).To(Equal("Succeeded"))
	})

	It("alerts its operators through Herald when a provider trips, once per window", func() {
		ops, tenant := newNamespace(), newNamespace()
		opts := testOptions()
		opts.Alerts.Namespace = ops
		opts.Alerts.Channels = []string{string(notifyv1.ChannelInApp)}
		opts.Alerts.CheckInterval = 100 * time.Millisecond
		opts.Alerts.Window = time.Hour
		stop := startManager(opts)
		DeferCleanup(func() { stop() })
		createRecipient(ops, "op", func(s *notifyv1.RecipientSpec) { s.Roles = []string{"herald-operators"} })
		sink := newWebhookSink()
		DeferCleanup(sink.Close)
		// The provider's own URL refuses its credentials: a provider fault.
		sink.setRespond(func(string, int, http.ResponseWriter) int { return http.StatusUnauthorized })
		createWebhookProvider(tenant, sink.URL)
		createRecipient(tenant, "alice", nil)
		notification(tenant, "trips", nil)

		about := func() []notifyv1.Notification {
			var list notifyv1.NotificationList
			Expect(k8sClient.List(suiteCtx, &list, client.InNamespace(ops), client.MatchingLabels{notifyv1.LabelHeraldAlert: "true"})).To(Succeed())
			var out []notifyv1.Notification
			for _, n := range list.Items {
				if strings.Contains(n.Spec.Title, tenant+"/hook") {
					out = append(out, n)
				}
			}
			return out
		}
		Eventually(func() int { return len(about()) }).Should(Equal(1))
		alert := about()[0]
		Expect(alert.Spec.Title).To(ContainSubstring("tripped"))
		waitPhase(ops, alert.Name, notifyv1.NotificationDelivered)
		for _, d := range deliveries(ops, alert.Name) {
			Expect(d.Labels[notifyv1.LabelHeraldAlert]).To(Equal("true"), "the alert's deliveries carry the label")
		}
		Consistently(func() int { return len(about()) }, time.Second).Should(Equal(1), "one alert per provider per window")
	})
})
