package inbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

var readPatch = client.RawPatch(types.MergePatchType, []byte(`{"status":{"read":true}}`))

var _ = Describe("inboxitems", func() {
	It("shows each user only their own visible items, in list, get, watch and patch", func() {
		ns := newNamespace()
		createItem(ns, "a1", "alice", nil)
		createItem(ns, "b1", "bob", nil)
		// Not visible: not yet delivered, another channel, expired.
		pending := newDelivery(ns, "a-pending", "alice")
		Expect(k8sClient.Create(suiteCtx, pending)).To(Succeed())
		createItem(ns, "a-email", "alice", func(d *notifyv1.ChannelDelivery) {
			d.Spec.Channel = notifyv1.ChannelEmail
			d.Labels[notifyv1.LabelChannel] = string(notifyv1.ChannelEmail)
		})
		createItem(ns, "a-expired", "alice", func(d *notifyv1.ChannelDelivery) {
			d.Spec.ExpiresAt = &metav1.Time{Time: time.Now().Add(-time.Minute)}
		})

		alice, bob := userClient("alice"), userClient("bob")
		var list inboxv1.InboxItemList
		Eventually(func(g Gomega) {
			g.Expect(alice.List(suiteCtx, &list, client.InNamespace(ns))).To(Succeed())
			g.Expect(itemNames(&list)).To(Equal([]string{ns + "/a1"}))
		}).Should(Succeed())
		it := list.Items[0]
		Expect(it.Spec.Title).To(Equal("Title of a1"))
		Expect(it.Spec.Category).To(Equal("deployments"))
		Expect(it.Spec.Type).To(Equal("informational"))
		Expect(it.Spec.Notification).To(Equal("n-a1"))
		Expect(it.Spec.CreatedTime).NotTo(BeNil())
		Expect(it.Status.Read).To(BeFalse())

		Expect(bob.List(suiteCtx, &list, client.InNamespace(ns))).To(Succeed())
		Expect(itemNames(&list)).To(Equal([]string{ns + "/b1"}))
		// All namespaces: still only bob's.
		Expect(bob.List(suiteCtx, &list)).To(Succeed())
		Expect(itemNames(&list)).To(Equal([]string{ns + "/b1"}))

		By("bob gets NotFound, never Forbidden, for alice's item")
		var got inboxv1.InboxItem
		err := bob.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: "a1"}, &got)
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "got %v", err)
		Expect(bob.Patch(suiteCtx, &inboxv1.InboxItem{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "a1"}}, readPatch)).
			To(Satisfy(apierrors.IsNotFound))
		Expect(alice.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: "a-pending"}, &got)).To(Satisfy(apierrors.IsNotFound))
		Expect(alice.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: "a1"}, &got)).To(Succeed())

		By("watching from the list's resourceVersion")
		Expect(alice.List(suiteCtx, &list, client.InNamespace(ns))).To(Succeed())
		aw, err := alice.Watch(suiteCtx, &inboxv1.InboxItemList{}, client.InNamespace(ns), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
		Expect(err).NotTo(HaveOccurred())
		defer aw.Stop()
		bw, err := bob.Watch(suiteCtx, &inboxv1.InboxItemList{}, client.InNamespace(ns), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
		Expect(err).NotTo(HaveOccurred())
		defer bw.Stop()

		createItem(ns, "a2", "alice", nil)
		// Pending becomes visible.
		pending.Status.Phase = notifyv1.DeliverySucceeded
		Expect(k8sClient.Status().Update(suiteCtx, pending)).To(Succeed())
		createItem(ns, "b2", "bob", nil)

		Expect(nextWatch(aw)).To(And(HaveField("Type", watch.Added), HaveField("Object", HaveField("Name", "a2"))))
		Expect(nextWatch(aw)).To(And(HaveField("Type", watch.Added), HaveField("Object", HaveField("Name", "a-pending"))))
		// bob's first event is his own, created after alice's: hers never
		// reached him.
		Expect(nextWatch(bw)).To(And(HaveField("Type", watch.Added), HaveField("Object", HaveField("Name", "b2"))))

		By("marking read shows as MODIFIED and in the delivery's status")
		Expect(alice.Patch(suiteCtx, &inboxv1.InboxItem{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "a2"}}, readPatch)).To(Succeed())
		ev := nextWatch(aw)
		Expect(ev.Type).To(Equal(watch.Modified))
		Expect(ev.Object.(*inboxv1.InboxItem).Status.Read).To(BeTrue())
		var d notifyv1.ChannelDelivery
		Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: "a2"}, &d)).To(Succeed())
		Expect(d.Status.ReadTime).NotTo(BeNil())
		// Read-your-writes: the patch returned after the change came back.
		Expect(alice.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: "a2"}, &got)).To(Succeed())
		Expect(got.Status.Read).To(BeTrue())
		Expect(got.Status.ReadTime).NotTo(BeNil())

		By("archiving through the status subresource")
		Expect(alice.Status().Patch(suiteCtx, &inboxv1.InboxItem{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "a2"}},
			client.RawPatch(types.MergePatchType, []byte(`{"status":{"archived":true}}`)))).To(Succeed())
		Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: "a2"}, &d)).To(Succeed())
		Expect(d.Status.ArchivedTime).NotTo(BeNil())
		Expect(d.Status.ReadTime).NotTo(BeNil())
	})

	It("filters by label and field selectors", func() {
		ns := newNamespace()
		createItem(ns, "s1", "carol", nil)
		createItem(ns, "s2", "carol", func(d *notifyv1.ChannelDelivery) { d.Spec.Content.Category = "security" })
		createItem(ns, "s3", "carol", func(d *notifyv1.ChannelDelivery) { d.Spec.Content.Category = "security" })
		carol := userClient("carol")
		Eventually(func(g Gomega) {
			var l inboxv1.InboxItemList
			g.Expect(carol.List(suiteCtx, &l, client.InNamespace(ns))).To(Succeed())
			g.Expect(l.Items).To(HaveLen(3))
		}).Should(Succeed())
		Expect(carol.Patch(suiteCtx, &inboxv1.InboxItem{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s3"}}, readPatch)).To(Succeed())

		list := func(opts ...client.ListOption) []string {
			var l inboxv1.InboxItemList
			Expect(carol.List(suiteCtx, &l, append(opts, client.InNamespace(ns))...)).To(Succeed())
			return itemNames(&l)
		}
		Expect(list(client.MatchingFields{"spec.category": "security"})).To(Equal([]string{ns + "/s2", ns + "/s3"}))
		Expect(list(client.MatchingFields{"status.read": "false"})).To(Equal([]string{ns + "/s1", ns + "/s2"}))
		Expect(list(client.MatchingFieldsSelector{Selector: fields.ParseSelectorOrDie("spec.category=security,status.read=true")})).To(Equal([]string{ns + "/s3"}))
		Expect(list(client.MatchingLabels{notifyv1.LabelNotification: "n-s2"})).To(Equal([]string{ns + "/s2"}))

		var l inboxv1.InboxItemList
		err := carol.List(suiteCtx, &l, client.InNamespace(ns), client.MatchingFields{"spec.title": "x"})
		Expect(apierrors.IsBadRequest(err)).To(BeTrue(), "got %v", err)

		By("a watch with status.read=false sees an item leave when it is read")
		w, err := carol.Watch(suiteCtx, &inboxv1.InboxItemList{}, client.InNamespace(ns), client.MatchingFields{"status.read": "false"})
		Expect(err).NotTo(HaveOccurred())
		defer w.Stop()
		// No resourceVersion: the current matching items first.
		Expect(nextWatch(w)).To(HaveField("Type", watch.Added))
		Expect(nextWatch(w)).To(HaveField("Type", watch.Added))
		Expect(carol.Patch(suiteCtx, &inboxv1.InboxItem{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s1"}}, readPatch)).To(Succeed())
		Expect(nextWatch(w)).To(And(HaveField("Type", watch.Deleted), HaveField("Object", HaveField("Name", "s1"))))
	})

	It("refuses changes other than read, archived and response, and stale resourceVersions", func() {
		ns := newNamespace()
		createItem(ns, "r1", "dave", nil)
		dave := userClient("dave")
		var it inboxv1.InboxItem
		Eventually(func() error { return dave.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: "r1"}, &it) }).Should(Succeed())

		edited := it.DeepCopy()
		edited.Spec.Title = "changed"
		err := dave.Update(suiteCtx, edited)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring("read-only"))

		err = dave.Patch(suiteCtx, it.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"status":{"response":{"action":"approve"}}}`)))
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring("offers no actions"))

		// A PUT with the resourceVersion read before someone else's write
		// conflicts, as on any Kubernetes object.
		fresh := it.DeepCopy()
		fresh.Status.Read = true
		Expect(dave.Update(suiteCtx, fresh)).To(Succeed())
		stale := it.DeepCopy()
		stale.Status.Archived = true
		Expect(dave.Update(suiteCtx, stale)).To(Satisfy(apierrors.IsConflict))
		// Marking unread clears readTime.
		Expect(dave.Patch(suiteCtx, it.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"status":{"read":false}}`)))).To(Succeed())
		var d notifyv1.ChannelDelivery
		Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: "r1"}, &d)).To(Succeed())
		Expect(d.Status.ReadTime).To(BeNil())
	})

	It("removes items at their expiresAt", func() {
		ns := newNamespace()
		expiresAt := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
		createItem(ns, "e1", "erin", func(d *notifyv1.ChannelDelivery) { d.Spec.ExpiresAt = &metav1.Time{Time: expiresAt} })
		erin := userClient("erin")
		var l inboxv1.InboxItemList
		Eventually(func(g Gomega) {
			g.Expect(erin.List(suiteCtx, &l, client.InNamespace(ns))).To(Succeed())
			g.Expect(l.Items).To(HaveLen(1))
		}).Should(Succeed())
		Expect(l.Items[0].Spec.ExpiresAt.Time).To(BeTemporally("==", expiresAt))
		w, err := erin.Watch(suiteCtx, &inboxv1.InboxItemList{}, client.InNamespace(ns), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: l.ResourceVersion}})
		Expect(err).NotTo(HaveOccurred())
		defer w.Stop()
		s, _ := openStream("erin", "/apis/inbox.herald.dev/v1alpha1/namespaces/"+ns+"/stream?watch=1", l.ResourceVersion)
		defer s.close()

		ev := nextWatch(w)
		Expect(ev.Type).To(Equal(watch.Deleted))
		Expect(time.Now()).To(BeTemporally(">=", expiresAt))
		Expect(s.next()).To(And(HaveField("Type", "remove"), HaveField("Data", ContainSubstring(`"name":"e1"`))))
		Expect(erin.List(suiteCtx, &l, client.InNamespace(ns))).To(Succeed())
		Expect(l.Items).To(BeEmpty())
	})

	It("serves a client-go informer: list, watch-list and live events", func() {
		ns := newNamespace()
		createItem(ns, "f1", "olga", nil)
		Eventually(func(g Gomega) {
			var l inboxv1.InboxItemList
			g.Expect(userClient("olga").List(suiteCtx, &l, client.InNamespace(ns))).To(Succeed())
			g.Expect(l.Items).To(HaveLen(1))
		}).Should(Succeed())

		c := userConfig("olga")
		c.APIPath = "/apis"
		c.GroupVersion = &inboxv1.GroupVersion
		c.NegotiatedSerializer = serializer.WithoutConversionCodecFactory{CodecFactory: serializer.NewCodecFactory(scheme)}
		rc, err := rest.RESTClientFor(c)
		Expect(err).NotTo(HaveOccurred())
		inf := cache.NewSharedIndexInformer(cache.NewListWatchFromClient(rc, "inboxitems", ns, fields.Everything()),
			&inboxv1.InboxItem{}, 0, cache.Indexers{})
		events := make(chan string, 100)
		_, err = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) { events <- "add:" + obj.(*inboxv1.InboxItem).Name },
			UpdateFunc: func(_, obj any) {
				events <- fmt.Sprintf("update:%s:read=%t", obj.(*inboxv1.InboxItem).Name, obj.(*inboxv1.InboxItem).Status.Read)
			},
			DeleteFunc: func(obj any) { events <- "delete" },
		})
		Expect(err).NotTo(HaveOccurred())
		ctx, cancel := context.WithCancel(suiteCtx)
		defer cancel()
		go inf.RunWithContext(ctx)
		Expect(cache.WaitForCacheSync(ctx.Done(), inf.HasSynced)).To(BeTrue())
		Eventually(events).Should(Receive(Equal("add:f1")))

		createItem(ns, "f2", "olga", nil)
		Eventually(events).Should(Receive(Equal("add:f2")))
		Expect(userClient("olga").Patch(suiteCtx, &inboxv1.InboxItem{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "f1"}}, readPatch)).To(Succeed())
		Eventually(events).Should(Receive(Equal("update:f1:read=true")))
		Expect(inf.GetStore().ListKeys()).To(ConsistOf(ns+"/f1", ns+"/f2"))
	})

	It("prints a table for kubectl and publishes discovery and OpenAPI", func() {
		ns := newNamespace()
		createItem(ns, "t1", "frank", func(d *notifyv1.ChannelDelivery) { d.Spec.Content.Type = notifyv1.TypeWarning })
		hc := userHTTP("frank")
		get := func(path, accept string) (int, string) {
			req, err := http.NewRequest(http.MethodGet, apiURL(path), nil)
			Expect(err).NotTo(HaveOccurred())
			if accept != "" {
				req.Header.Set("Accept", accept)
			}
			resp, err := hc.Do(req)
			Expect(err).NotTo(HaveOccurred())
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			Expect(err).NotTo(HaveOccurred())
			return resp.StatusCode, string(body)
		}
		var table metav1.Table
		Eventually(func(g Gomega) {
			code, body := get("/apis/inbox.herald.dev/v1alpha1/namespaces/"+ns+"/inboxitems", "application/json;as=Table;v=v1;g=meta.k8s.io")
			g.Expect(code).To(Equal(http.StatusOK), body)
			g.Expect(json.Unmarshal([]byte(body), &table)).To(Succeed())
			g.Expect(table.Rows).To(HaveLen(1))
		}).Should(Succeed())
		var cols []string
		for _, c := range table.ColumnDefinitions {
			if c.Priority == 0 {
				cols = append(cols, c.Name)
			}
		}
		Expect(cols).To(Equal([]string{"Name", "Title", "Category", "Type", "Read", "Age"}))
		Expect(table.Rows[0].Cells[:5]).To(Equal([]any{"t1", "Title of t1", "deployments", "warning", false}))

		code, body := get("/apis/inbox.herald.dev/v1alpha1", "")
		Expect(code).To(Equal(http.StatusOK), body)
		var resources metav1.APIResourceList
		Expect(json.Unmarshal([]byte(body), &resources)).To(Succeed())
		var names []string
		for _, r := range resources.APIResources {
			names = append(names, r.Name)
			if r.Name == "inboxitems" {
				Expect(r.Namespaced).To(BeTrue())
				Expect(r.Kind).To(Equal("InboxItem"))
				Expect(r.Verbs).To(ConsistOf("get", "list", "watch", "update", "patch"))
			}
			if r.Name == "inboxcounts" {
				Expect(r.Namespaced).To(BeFalse())
				Expect(r.Verbs).To(ConsistOf("get"))
			}
			if r.Name == "preferences" {
				Expect(r.Namespaced).To(BeTrue())
				Expect(r.Verbs).To(ConsistOf("get", "update", "patch"))
			}
			if r.Name == "bulkactions" {
				Expect(r.Namespaced).To(BeFalse())
				Expect(r.Verbs).To(ConsistOf("create"))
			}
		}
		Expect(names).To(ConsistOf("inboxitems", "inboxitems/status", "inboxcounts", "bulkactions", "preferences"))

		// What `kubectl explain inboxitems` reads.
		code, body = get("/openapi/v3/apis/inbox.herald.dev/v1alpha1", "application/json")
		Expect(code).To(Equal(http.StatusOK), body)
		Expect(body).To(ContainSubstring("dev.herald.inbox.v1alpha1.InboxItem"))
		Expect(body).To(ContainSubstring("readTime is when read became true"))
		Expect(strings.Count(body, `"x-kubernetes-group-version-kind"`)).To(BeNumerically(">", 0))
	})
})

func nextWatch(w watch.Interface) watch.Event {
	GinkgoHelper()
	select {
	case ev, ok := <-w.ResultChan():
		Expect(ok).To(BeTrue(), "the watch ended")
		Expect(ev.Type).NotTo(Equal(watch.Error), "watch error: %v", ev.Object)
		return ev
	case <-time.After(15 * time.Second):
		Fail("no watch event within 15s")
	}
	return watch.Event{}
}
