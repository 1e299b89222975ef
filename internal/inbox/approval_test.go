package inbox_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/controllers/delivery"
	"github.com/herald-dev/herald/controllers/notification"
	"github.com/herald-dev/herald/internal/retry"
)

// startControllers runs the Notification reconciler and the in-app
// delivery reconciler, the two that an in-app approval goes through.
func startControllers() (stop func()) {
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	recorder := mgr.GetEventRecorder("herald-test")
	policy := retry.Policy{Strategy: retry.Exponential, MaxAttempts: 3, InitialDelay: 100 * time.Millisecond, MaxDelay: time.Second}
	Expect((&notification.Reconciler{
		Client: mgr.GetClient(), Recorder: recorder,
		DefaultRetry: policy, DefaultTimeout: 5 * time.Second, FanOutParallelism: 4, Workers: 2,
	}).SetupWithManager(mgr)).To(Succeed())
	Expect((&delivery.Reconciler{
		Client: mgr.GetClient(), Channel: notifyv1.ChannelInApp, Handler: delivery.InAppHandler{}, Recorder: recorder,
		DefaultRetry: policy, DefaultTimeout: 5 * time.Second, Workers: 2,
	}).SetupWithManager(mgr)).To(Succeed())
	ctx, cancel := context.WithCancel(suiteCtx)
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	return func() { cancel(); <-done }
}

var _ = Describe("approvals through the inbox", func() {
	It("approves the Notification with the first answer and refuses a second one", func() {
		stop := startControllers()
		defer stop()
		ns := newNamespace()
		Expect(k8sClient.Create(suiteCtx, &notifyv1.Recipient{
			ObjectMeta: metav1.ObjectMeta{Name: "kim", Namespace: ns},
			Spec:       notifyv1.RecipientSpec{DisplayName: "Kim", Username: "kim"},
		})).To(Succeed())
		n := &notifyv1.Notification{
			ObjectMeta: metav1.ObjectMeta{Name: "deploy-prod", Namespace: ns},
			Spec: notifyv1.NotificationSpec{
				Type:     notifyv1.TypeApproval,
				Category: "deployments",
				Title:    "Deploy v2 to production?",
				Message:  "Pipeline 42 waits for an answer.",
				Audience: notifyv1.Audience{Users: []string{"kim"}, Roles: []string{}},
				Channels: []notifyv1.Channel{notifyv1.ChannelInApp},
				Actions: []notifyv1.Action{
					{ID: "approve", Label: "Approve", Outcome: notifyv1.OutcomeApprove},
					{ID: "reject", Label: "Reject", Outcome: notifyv1.OutcomeReject},
				},
			},
		}
		Expect(k8sClient.Create(suiteCtx, n)).To(Succeed())

		kim := userClient("kim")
		name := notification.DeliveryName(n.Name, notifyv1.ChannelInApp, "kim")
		var it inboxv1.InboxItem
		Eventually(func() error { return kim.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name}, &it) }).Should(Succeed())
		Expect(it.Spec.Type).To(Equal("approval"))
		Expect(it.Spec.Actions).To(HaveLen(2))
		Expect(it.Spec.Notification).To(Equal(n.Name))

		By("an action the notification does not offer is invalid")
		err := kim.Patch(suiteCtx, it.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"status":{"response":{"action":"maybe"}}}`)))
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(And(ContainSubstring(`"approve"`), ContainSubstring(`"reject"`)))

		By("answering approve")
		Expect(kim.Patch(suiteCtx, it.DeepCopy(), client.RawPatch(types.MergePatchType,
			[]byte(`{"status":{"read":true,"response":{"action":"approve","comment":"ship it"}}}`)))).To(Succeed())
		Expect(kim.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name}, &it)).To(Succeed())
		Expect(it.Status.Response).NotTo(BeNil())
		Expect(it.Status.Response.Action).To(Equal("approve"))
		Expect(it.Status.Response.Time).NotTo(BeNil())

		// What `kubectl wait --for=condition=Approved notification/deploy-prod` waits for.
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(suiteCtx, client.ObjectKeyFromObject(n), n)).To(Succeed())
			g.Expect(conditionTrue(n.Status.Conditions, notifyv1.ConditionApproved)).To(BeTrue(), "conditions: %v", n.Status.Conditions)
		}).Should(Succeed())
		Expect(n.Status.Responses).To(HaveLen(1))
		Expect(n.Status.Responses[0]).To(And(
			HaveField("Username", "kim"), HaveField("Action", "approve"), HaveField("Comment", "ship it")))

		By("a second, different answer is refused")
		err = kim.Patch(suiteCtx, it.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"status":{"response":{"action":"reject"}}}`)))
		Expect(apierrors.IsConflict(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring(`already answered "approve" by kim`))
		// Repeating the same answer (a retried request) changes nothing.
		Expect(kim.Patch(suiteCtx, it.DeepCopy(), client.RawPatch(types.MergePatchType,
			[]byte(`{"status":{"response":{"action":"approve","comment":"ship it"}}}`)))).To(Succeed())
		Expect(k8sClient.Get(suiteCtx, client.ObjectKeyFromObject(n), n)).To(Succeed())
		Expect(conditionTrue(n.Status.Conditions, notifyv1.ConditionRejected)).To(BeFalse())
	})
})
