package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/pkg/notify"
)

var _ = Describe("pkg/notify", func() {
	It("creates one Notification however often it is sent with the same key", func() {
		ns := newNamespace()
		stop := startManager(testOptions())
		DeferCleanup(func() { stop() })
		createRecipient(ns, "alice", func(s *notifyv1.RecipientSpec) { s.Roles = []string{"dba"} })

		send := func() *notifyv1.Notification {
			n, err := notify.New(ns, "backup-failed/db-0/2026-11-28").
				ToRoles("dba").
				On(notifyv1.ChannelInApp).
				Type(notifyv1.TypeWarning).
				Category("backups").
				Title("Backup of db-0 failed").
				Message("The nightly backup of db-0 failed: the volume is full.").
				Send(suiteCtx, k8sClient)
			Expect(err).NotTo(HaveOccurred())
			return n
		}
		first := send()
		second := send()
		Expect(second.UID).To(Equal(first.UID))

		var list notifyv1.NotificationList
		Expect(k8sClient.List(suiteCtx, &list, client.InNamespace(ns))).To(Succeed())
		Expect(list.Items).To(HaveLen(1))
		Expect(list.Items[0].Name).To(Equal(notify.Name("backup-failed/db-0/2026-11-28")))
		n := waitPhase(ns, first.Name, notifyv1.NotificationDelivered)
		Expect(n.Status.Deliveries.Succeeded).To(BeEquivalentTo(1))
	})
})
