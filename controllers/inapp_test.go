package controllers_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// statusWriters lists the field managers that wrote d's status subresource.
func statusWriters(d *notifyv1.ChannelDelivery) []string {
	var out []string
	for _, mf := range d.ManagedFields {
		if mf.Subresource == "status" {
			out = append(out, mf.Manager)
		}
	}
	return out
}

var _ = Describe("in-app deliveries", func() {
	It("are delivered by their creation: no status write, yet counted and Delivered", func() {
		ns := newNamespaceWithManager()
		createRecipient(ns, "alice", nil)
		createRecipient(ns, "bob", nil)
		notification(ns, "disk-full", func(s *notifyv1.NotificationSpec) {
			s.Audience = notifyv1.Audience{Users: []string{"alice", "bob"}}
			s.Channels = []notifyv1.Channel{notifyv1.ChannelInApp}
		})
		n := waitPhase(ns, "disk-full", notifyv1.NotificationDelivered)
		Expect(n.Status.Deliveries.Succeeded).To(BeEquivalentTo(2))
		Expect(n.Status.Channels).To(ConsistOf(HaveField("Channel", notifyv1.ChannelInApp)))
		Expect(n.Status.Channels[0].Succeeded).To(BeEquivalentTo(2))
		for _, who := range []string{"alice", "bob"} {
			d := getDelivery(ns, "disk-full", notifyv1.ChannelInApp, who)
			Expect(d.Spec.DeliveredOnCreate).To(BeTrue(), who)
			Expect(d.Status.Phase).To(BeEmpty(), "%s: nothing writes the outcome", who)
			Expect(statusWriters(d)).To(BeEmpty(), who)
			Expect(d.Phase()).To(Equal(notifyv1.DeliverySucceeded), who)
		}
	})

	It("keep their attempt when they are not due yet, and end Skipped when there is no inbox to go to", func() {
		ns := newNamespaceWithManager()
		createRecipient(ns, "alice", nil)
		createRecipient(ns, "room", func(s *notifyv1.RecipientSpec) { s.Username = "" })
		// Due a moment from now (in whole seconds, as the API stores it):
		// the attempt records it when it comes due.
		soon := metav1.NewTime(time.Now().Add(2 * time.Second)).Rfc3339Copy()
		notification(ns, "later", func(s *notifyv1.NotificationSpec) {
			s.Audience = notifyv1.Audience{Users: []string{"alice"}}
			s.Channels = []notifyv1.Channel{notifyv1.ChannelInApp}
			s.DeliverAfter = &soon
		})
		notification(ns, "to-a-room", func(s *notifyv1.NotificationSpec) {
			s.Audience = notifyv1.Audience{Users: []string{"room"}}
			s.Channels = []notifyv1.Channel{notifyv1.ChannelInApp}
		})
		waitPhase(ns, "later", notifyv1.NotificationDelivered)
		d := getDelivery(ns, "later", notifyv1.ChannelInApp, "alice")
		Expect(d.Spec.DeliveredOnCreate).To(BeFalse())
		Expect(d.Status.Phase).To(Equal(notifyv1.DeliverySucceeded))
		Expect(d.Status.CompletionTime.Time).NotTo(BeTemporally("<", soon.Time))

		waitPhase(ns, "to-a-room", notifyv1.NotificationFailed)
		d = getDelivery(ns, "to-a-room", notifyv1.ChannelInApp, "room")
		Expect(d.Spec.DeliveredOnCreate).To(BeFalse())
		Expect(d.Status.Phase).To(Equal(notifyv1.DeliverySkipped))
		Expect(d.Status.Reason).To(Equal(notifyv1.ReasonNoAddress))
	})
})
