package inbox_test

import (
	"encoding/json"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

func (e sseEvent) counts() *inboxv1.InboxCounts {
	var c inboxv1.InboxCounts
	Expect(json.Unmarshal([]byte(e.Data), &c)).To(Succeed(), "event data: %s", e.Data)
	return &c
}

// nextOf returns the next event of type typ, skipping others.
func (s *sseStream) nextOf(typ string) sseEvent {
	GinkgoHelper()
	for {
		if ev := s.next(); ev.Type == typ {
			return ev
		}
	}
}

var _ = Describe("counts, bulk actions and snooze", func() {
	It("counts the caller's items, streams the counts, and marks all read in one request", func() {
		ns := newNamespace()
		for _, name := range []string{"c1", "c2", "c3"} {
			createItem(ns, name, "dora", nil)
		}
		createItem(ns, "e1", "erin", nil)
		dora, erin := userClient("dora"), userClient("erin")

		var counts inboxv1.InboxCounts
		Eventually(func(g Gomega) {
			g.Expect(dora.Get(suiteCtx, client.ObjectKey{Name: ns}, &counts)).To(Succeed())
			g.Expect(counts.Counts).To(Equal(inboxv1.InboxCountSummary{Total: 3, Unread: 3, Unseen: 3}))
		}).Should(Succeed())
		Expect(dora.Get(suiteCtx, client.ObjectKey{Name: inboxv1.InboxCountsAll}, &counts)).To(Succeed())
		Expect(counts.ByNamespace).To(HaveKeyWithValue(ns, inboxv1.InboxCountSummary{Total: 3, Unread: 3, Unseen: 3}))
		Expect(counts.ByCategory).To(HaveKeyWithValue("deployments", HaveField("Unread", int32(3))))

		stream, code := openStream("dora", "/apis/inbox.herald.dev/v1alpha1/namespaces/"+ns+"/stream?watch=1&counts=true", "")
		Expect(code).To(Equal(200))
		defer stream.close()
		Expect(stream.next().Type).To(Equal("reset"))
		Expect(stream.next().counts().Counts.Unread).To(Equal(int32(3)))

		By("marking all read with one bulk action")
		act := &inboxv1.BulkAction{Spec: inboxv1.BulkActionSpec{Operation: inboxv1.BulkMarkRead, Namespace: ns}}
		Expect(dora.Create(suiteCtx, act)).To(Succeed())
		Expect(act.Status).To(Equal(inboxv1.BulkActionStatus{Matched: 3, Changed: 3}))
		// The answer comes once the writes are back: counts are current.
		Expect(dora.Get(suiteCtx, client.ObjectKey{Name: ns}, &counts)).To(Succeed())
		Expect(counts.Counts.Unread).To(BeZero())
		Eventually(func() int32 { return stream.nextOf("counts").counts().Counts.Unread }).Should(BeZero())

		By("erin's item was not touched, and dora's counts are not erin's")
		var other inboxv1.InboxCounts
		Expect(erin.Get(suiteCtx, client.ObjectKey{Name: ns}, &other)).To(Succeed())
		Expect(other.Counts).To(Equal(inboxv1.InboxCountSummary{Total: 1, Unread: 1, Unseen: 1}))

		By("archiving all read")
		arch := &inboxv1.BulkAction{Spec: inboxv1.BulkActionSpec{Operation: inboxv1.BulkArchiveRead, Namespace: ns, FieldSelector: "metadata.name!=c3"}}
		Expect(dora.Create(suiteCtx, arch)).To(Succeed())
		Expect(arch.Status.Changed).To(Equal(int32(2)))
		Expect(dora.Get(suiteCtx, client.ObjectKey{Name: ns}, &counts)).To(Succeed())
		Expect(counts.Counts).To(Equal(inboxv1.InboxCountSummary{Total: 1, Archived: 2}))
	})

	It("snoozes an item out of the list and refuses snoozes into the past or beyond expiresAt", func() {
		ns := newNamespace()
		createItem(ns, "s1", "fay", func(d *notifyv1.ChannelDelivery) {
			d.Spec.ExpiresAt = &metav1.Time{Time: time.Now().Add(time.Hour)}
		})
		fay := userClient("fay")
		item := &inboxv1.InboxItem{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s1"}}
		snooze := func(at time.Time) error {
			body, _ := json.Marshal(map[string]any{"status": map[string]any{"snoozedUntil": at.UTC().Format(time.RFC3339)}})
			return fay.Patch(suiteCtx, item.DeepCopy(), client.RawPatch(types.MergePatchType, body))
		}
		Eventually(func() error { return fay.Get(suiteCtx, client.ObjectKeyFromObject(item), &inboxv1.InboxItem{}) }).Should(Succeed())
		err := snooze(time.Now().Add(-time.Minute))
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring("cannot snooze into the past"))
		err = snooze(time.Now().Add(2 * time.Hour))
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring("beyond the item's expiresAt"))

		Expect(snooze(time.Now().Add(30 * time.Minute))).To(Succeed())
		var list inboxv1.InboxItemList
		Expect(fay.List(suiteCtx, &list, client.InNamespace(ns))).To(Succeed())
		Expect(list.Items).To(BeEmpty())
		var counts inboxv1.InboxCounts
		Expect(fay.Get(suiteCtx, client.ObjectKey{Name: ns}, &counts)).To(Succeed())
		Expect(counts.Counts).To(Equal(inboxv1.InboxCountSummary{Snoozed: 1}))
		var d notifyv1.ChannelDelivery
		Expect(k8sClient.Get(suiteCtx, client.ObjectKeyFromObject(item), &d)).To(Succeed())
		Expect(d.Status.SnoozedUntil).NotTo(BeNil())
	})
})
