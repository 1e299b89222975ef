package controllers_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

func deployTemplate(ns string) *notifyv1.NotificationTemplate {
	return &notifyv1.NotificationTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "deploy", Namespace: ns},
		Spec: notifyv1.NotificationTemplateContent{
			Params: []notifyv1.TemplateParam{
				{Name: "app", Required: true},
				{Name: "environment", Default: "production"},
			},
			Title:   "{{ .app }} is live in {{ .environment }}",
			Message: "The rollout of {{ .app }} to {{ .environment }} finished.",
			Email:   &notifyv1.EmailContent{HTML: "<p>{{ .app }}</p>"},
		},
	}
}

// readyCondition waits until the template's Ready condition reflects its
// current generation and returns it.
func templateReady(ns, name string) *metav1.Condition {
	var c *metav1.Condition
	Eventually(func(g Gomega) {
		var t notifyv1.NotificationTemplate
		g.Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name}, &t)).To(Succeed())
		g.Expect(t.Status.ObservedGeneration).To(Equal(t.Generation))
		c = meta.FindStatusCondition(t.Status.Conditions, notifyv1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.ObservedGeneration).To(Equal(t.Generation))
	}).Should(Succeed())
	return c
}

// deployNotification creates an in-app Notification that renders the
// deploy template with params.
func deployNotification(ns, name string, params map[string]string) {
	notification(ns, name, func(s *notifyv1.NotificationSpec) {
		s.Title, s.Message = "", ""
		s.TemplateRef = &notifyv1.TemplateReference{Name: "deploy"}
		s.Params = params
		s.Channels = []notifyv1.Channel{notifyv1.ChannelInApp}
	})
}

// expectHeld waits until the Notification's Dispatched condition is False
// for reason, with a message that contains each of parts, and then expects
// the Event for it and no deliveries.
func expectHeld(ns, name, reason string, parts ...string) {
	Eventually(func(g Gomega) {
		n := getNotification(ns, name)
		c := meta.FindStatusCondition(n.Status.Conditions, notifyv1.ConditionDispatched)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(reason))
		for _, p := range parts {
			g.Expect(c.Message).To(ContainSubstring(p))
		}
	}).Should(Succeed())
	expectEvent(ns, name, reason)
	Expect(deliveries(ns, name)).To(BeEmpty(), "nothing is sent while the Notification is held")
}

var _ = Describe("NotificationTemplates", func() {
	var ns string

	BeforeEach(func() { ns = newNamespaceWithManager() })

	It("report parse errors with field and line, and recover when fixed", func() {
		t := deployTemplate(ns)
		t.Spec.Message = "The rollout of {{ .app }} finished.\nSee {{ .link }"
		Expect(k8sClient.Create(suiteCtx, t)).To(Succeed())
		c := templateReady(ns, "deploy")
		Expect(c.Status).To(Equal(metav1.ConditionFalse))
		Expect(c.Reason).To(Equal(notifyv1.ReasonTemplateInvalid))
		Expect(c.Message).To(ContainSubstring("message:2:"))
		expectEvent(ns, "deploy", notifyv1.ReasonTemplateInvalid)

		// A reference to an undeclared param is caught too.
		Expect(k8sClient.Get(suiteCtx, client.ObjectKeyFromObject(t), t)).To(Succeed())
		t.Spec.Message = "The rollout of {{ .app }} finished.\nSee {{ .link }}"
		Expect(k8sClient.Update(suiteCtx, t)).To(Succeed())
		Eventually(func() string { return templateReady(ns, "deploy").Message }).Should(ContainSubstring(`message:2:7: executing "message" at <.link>`))

		Expect(k8sClient.Get(suiteCtx, client.ObjectKeyFromObject(t), t)).To(Succeed())
		t.Spec.Params = append(t.Spec.Params, notifyv1.TemplateParam{Name: "link", Default: "https://example.com"})
		Expect(k8sClient.Update(suiteCtx, t)).To(Succeed())
		Eventually(func() metav1.ConditionStatus { return templateReady(ns, "deploy").Status }).Should(Equal(metav1.ConditionTrue))
	})

	It("hold a Notification whose template is missing, and dispatch it as soon as the template exists", func() {
		createRecipient(ns, "alice", nil)
		deployNotification(ns, "rollout", map[string]string{"app": "shop"})
		expectHeld(ns, "rollout", notifyv1.ReasonTemplateNotFound)

		// The notification retries on its own only every 30s; the template
		// watch must wake it well before that.
		created := time.Now()
		Expect(k8sClient.Create(suiteCtx, deployTemplate(ns))).To(Succeed())
		var n *notifyv1.Notification
		Eventually(func(g Gomega) {
			n = getNotification(ns, "rollout")
			g.Expect(n.Status.Phase).To(Equal(notifyv1.NotificationDelivered))
		}).WithTimeout(10 * time.Second).Should(Succeed())
		GinkgoWriter.Printf("delivered %s after the template appeared\n", time.Since(created))
		d := getDelivery(ns, "rollout", notifyv1.ChannelInApp, "alice")
		Expect(d.Spec.Content.Title).To(Equal("shop is live in production"))
		// An in-app delivery carries only in-app content: the template's
		// email rendering goes to email deliveries alone.
		Expect(d.Spec.Content.Email).To(BeNil())
	})

	It("refuse to send a Notification with missing or undeclared params", func() {
		createRecipient(ns, "alice", nil)
		Expect(k8sClient.Create(suiteCtx, deployTemplate(ns))).To(Succeed())
		deployNotification(ns, "bad-params", map[string]string{"version": "1.2.3"})
		expectHeld(ns, "bad-params", notifyv1.ReasonTemplateInvalid,
			"missing required params: app", "params not declared by the template: version")
	})
})
