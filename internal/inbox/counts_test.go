package inbox_test

import (
	"encoding/json"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
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

		By("its owner can still get it, and unsnooze it; nobody else can")
		var got inboxv1.InboxItem
		Expect(fay.Get(suiteCtx, client.ObjectKeyFromObject(item), &got)).To(Succeed())
		Expect(got.Status.SnoozedUntil).NotTo(BeNil())
		unsnooze := client.RawPatch(types.MergePatchType, []byte(`{"status":{"snoozedUntil":null}}`))
		Expect(userClient("gus").Get(suiteCtx, client.ObjectKeyFromObject(item), &got)).To(Satisfy(apierrors.IsNotFound))
		Expect(userClient("gus").Patch(suiteCtx, item.DeepCopy(), unsnooze)).To(Satisfy(apierrors.IsNotFound))
		Expect(fay.Patch(suiteCtx, item.DeepCopy(), unsnooze)).To(Succeed())
		Expect(fay.List(suiteCtx, &list, client.InNamespace(ns))).To(Succeed())
		Expect(itemNames(&list)).To(Equal([]string{ns + "/s1"}))
		Expect(fay.Get(suiteCtx, client.ObjectKey{Name: ns}, &counts)).To(Succeed())
		Expect(counts.Counts).To(Equal(inboxv1.InboxCountSummary{Total: 1, Unread: 1, Unseen: 1}))
	})

	It("brings a snoozed item back as a watch ADDED and a stream item when due", func() {
		ns := newNamespace()
		createItem(ns, "w1", "gil", nil)
		gil := userClient("gil")
		var list inboxv1.InboxItemList
		Eventually(func() []string {
			Expect(gil.List(suiteCtx, &list, client.InNamespace(ns))).To(Succeed())
			return itemNames(&list)
		}).Should(Equal([]string{ns + "/w1"}))
		w, err := gil.Watch(suiteCtx, &inboxv1.InboxItemList{}, client.InNamespace(ns), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
		Expect(err).NotTo(HaveOccurred())
		defer w.Stop()
		stream, code := openStream("gil", "/apis/inbox.herald.dev/v1alpha1/namespaces/"+ns+"/stream?watch=1", list.ResourceVersion)
		Expect(code).To(Equal(200))
		defer stream.close()

		// Whole seconds: two to three seconds from now.
		until := time.Now().Add(3 * time.Second).UTC().Format(time.RFC3339)
		Expect(gil.Patch(suiteCtx, &inboxv1.InboxItem{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "w1"}},
			client.RawPatch(types.MergePatchType, []byte(`{"status":{"snoozedUntil":"`+until+`"}}`)))).To(Succeed())
		Expect(nextWatch(w).Type).To(Equal(watch.Deleted))
		Expect(stream.next().Type).To(Equal("remove"))
		back := nextWatch(w)
		Expect(back.Type).To(Equal(watch.Added))
		Expect(back.Object.(*inboxv1.InboxItem).Status.SnoozedUntil.UTC().Format(time.RFC3339)).To(Equal(until))
		Expect(time.Now().Before(back.Object.(*inboxv1.InboxItem).Status.SnoozedUntil.Time)).To(BeFalse(), "back before its time")
		ev := stream.next()
		Expect(ev.Type).To(Equal("item"))
		Expect(ev.item().Name).To(Equal("w1"))
	})
})
