package controllers_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// hostileTemplate would render forever: Go's templates range over
// integers. Rendering rejects it before it runs (internal/render).
const hostileTemplate = "{{range 1000000000}}{{range 1000000000}}{{end}}{{end}}"

var _ = Describe("a hostile NotificationTemplate", func() {
	var ns string

	BeforeEach(func() { ns = newNamespaceWithManager() })

	It("is rejected at check time and holds up no other Notification", func() {
		createRecipient(ns, "alice", nil)
		start := time.Now()
		Expect(k8sClient.Create(suiteCtx, &notifyv1.NotificationTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "hostile", Namespace: ns},
			Spec:       notifyv1.NotificationTemplateContent{Title: "spin", Message: hostileTemplate},
		})).To(Succeed())
		notification(ns, "uses-hostile", func(s *notifyv1.NotificationSpec) {
			s.Title, s.Message = "", ""
			s.TemplateRef = &notifyv1.TemplateReference{Name: "hostile"}
			s.Channels = []notifyv1.Channel{notifyv1.ChannelInApp}
		})
		const ordinary = 100
		for i := range ordinary {
			notification(ns, fmt.Sprintf("ordinary-%03d", i), func(s *notifyv1.NotificationSpec) {
				s.Channels = []notifyv1.Channel{notifyv1.ChannelInApp}
			})
		}

		Eventually(func(g Gomega) {
			var list notifyv1.NotificationList
			g.Expect(k8sClient.List(suiteCtx, &list, client.InNamespace(ns))).To(Succeed())
			delivered := 0
			for _, n := range list.Items {
				if n.Status.Phase == notifyv1.NotificationDelivered {
					delivered++
				}
			}
			g.Expect(delivered).To(Equal(ordinary))
		}).Should(Succeed())
		GinkgoWriter.Printf("%d ordinary notifications delivered %s after the hostile template was applied\n", ordinary, time.Since(start))

		c := templateReady(ns, "hostile")
		Expect(c.Status).To(Equal(metav1.ConditionFalse))
		Expect(c.Reason).To(Equal(notifyv1.ReasonTemplateInvalid))
		Expect(c.Message).To(ContainSubstring("message: message:1:8: {{range 1000000000}} is not allowed"))
		expectEvent(ns, "hostile", notifyv1.ReasonTemplateInvalid)

		Eventually(func(g Gomega) {
			n := getNotification(ns, "uses-hostile")
			c := meta.FindStatusCondition(n.Status.Conditions, notifyv1.ConditionDispatched)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(notifyv1.ReasonTemplateInvalid))
			g.Expect(c.Message).To(ContainSubstring("{{range 1000000000}} is not allowed"))
		}).Should(Succeed())
		expectEvent(ns, "uses-hostile", notifyv1.ReasonTemplateInvalid)
		Expect(deliveries(ns, "uses-hostile")).To(BeEmpty())
	})
})
