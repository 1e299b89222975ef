package inbox_test

import (
	"fmt"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

func streamPath(ns string) string {
	return "/apis/inbox.herald.dev/v1alpha1/namespaces/" + ns + "/stream?watch=1"
}

var _ = Describe("the SSE stream", func() {
	It("delivers new items live, resumes from Last-Event-ID without loss or duplicates, and shares read state", func() {
		ns := newNamespace()
		createItem(ns, "x0", "grace", nil)
		Eventually(func(g Gomega) {
			var l inboxv1.InboxItemList
			g.Expect(userClient("grace").List(suiteCtx, &l, client.InNamespace(ns))).To(Succeed())
			g.Expect(l.Items).To(HaveLen(1))
		}).Should(Succeed())

		By("a fresh connection starts with a reset holding the inbox")
		s1, _ := openStream("grace", streamPath(ns), "")
		defer s1.close()
		reset := s1.next()
		Expect(reset.Type).To(Equal("reset"))
		Expect(reset.ID).NotTo(BeEmpty())
		snap := reset.list()
		Expect(snap.ResourceVersion).To(Equal(reset.ID))
		Expect(snap.Items).To(HaveLen(1))
		Expect(snap.Items[0].Name).To(Equal("x0"))

		By("a heartbeat comes while idle")
		Expect(s1.nextComment().Comment).To(HavePrefix("heartbeat"))

		By("an item made visible reaches the open stream")
		d := newDelivery(ns, "x1", "grace")
		start := time.Now()
		Expect(k8sClient.Create(suiteCtx, d)).To(Succeed())
		d.Status.Phase = notifyv1.DeliverySucceeded
		written := time.Now()
		Expect(k8sClient.Status().Update(suiteCtx, d)).To(Succeed())
		e1 := s1.next()
		Expect(e1.Type).To(Equal("item"))
		Expect(e1.item().Name).To(Equal("x1"))
		// create-to-event spans two API writes (create, then the status
		// write that makes the item visible); write-to-event is from the
		// start of that status write to the event arriving at the client,
		// through kube-apiserver's aggregator.
		fmt.Fprintf(GinkgoWriter, "SSE latency: create-to-event %v, status-write-to-event %v\n",
			e1.At.Sub(start), e1.At.Sub(written))
		AddReportEntry("sse-latency", e1.At.Sub(start).String())
		s1.close()

		By("events missed while disconnected are replayed exactly")
		createItem(ns, "x2", "grace", nil)
		createItem(ns, "other", "heidi", nil) // someone else's
		createItem(ns, "x3", "grace", nil)
		grace := userClient("grace")
		Expect(grace.Patch(suiteCtx, &inboxv1.InboxItem{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "x1"}}, readPatch)).To(Succeed())

		s2, _ := openStream("grace", streamPath(ns), e1.ID)
		defer s2.close()
		// ?since= is the same cursor for clients that cannot set headers.
		s3, _ := openStream("grace", streamPath(ns)+"&since="+e1.ID, "")
		defer s3.close()
		for _, s := range []*sseStream{s2, s3} {
			var got []string
			var last uint64
			for range 3 {
				ev := s.next()
				id, err := strconv.ParseUint(ev.ID, 10, 64)
				Expect(err).NotTo(HaveOccurred())
				Expect(id).To(BeNumerically(">", last), "ids increase")
				last = id
				got = append(got, ev.Type+":"+ev.item().Name)
			}
			Expect(got).To(Equal([]string{"item:x2", "item:x3", "update:x1"}))
		}

		By("a read on one connection shows as an update on the others")
		Expect(grace.Patch(suiteCtx, &inboxv1.InboxItem{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "x2"}}, readPatch)).To(Succeed())
		for _, s := range []*sseStream{s2, s3} {
			ev := s.next()
			Expect(ev.Type).To(Equal("update"))
			it := ev.item()
			Expect(it.Name).To(Equal("x2"))
			Expect(it.Status.Read).To(BeTrue())
		}
		// Nothing was repeated: the next event after a new item is that item.
		createItem(ns, "x4", "grace", nil)
		for _, s := range []*sseStream{s2, s3} {
			Expect(s.next()).To(And(HaveField("Type", "item"), HaveField("Data", ContainSubstring(`"name":"x4"`))))
		}

		By("a cursor older than the retained history gets a reset with the full inbox")
		s4, _ := openStream("grace", streamPath(ns), "1")
		defer s4.close()
		r := s4.next()
		Expect(r.Type).To(Equal("reset"))
		var names []string
		for _, it := range r.list().Items {
			names = append(names, it.Name)
		}
		Expect(names).To(Equal([]string{"x0", "x1", "x2", "x3", "x4"}))
	})

	It("shows an item delivered on create from its create alone, with no status write", func() {
		ns := newNamespace()
		s, _ := openStream("heidi", streamPath(ns), "")
		defer s.close()
		Expect(s.next().Type).To(Equal("reset"))

		d := newDelivery(ns, "h1", "heidi")
		d.Spec.DeliveredOnCreate = true
		Expect(k8sClient.Create(suiteCtx, d)).To(Succeed())
		ev := s.next()
		Expect(ev.Type).To(Equal("item"))
		Expect(ev.item().Name).To(Equal("h1"))

		var l inboxv1.InboxItemList
		Expect(userClient("heidi").List(suiteCtx, &l, client.InNamespace(ns))).To(Succeed())
		Expect(l.Items).To(HaveLen(1))
		var stored notifyv1.ChannelDelivery
		Expect(k8sClient.Get(suiteCtx, client.ObjectKeyFromObject(d), &stored)).To(Succeed())
		Expect(stored.Status.Phase).To(BeEmpty(), "nothing wrote a phase")

		By("one not delivered on create stays out until its phase is written")
		pending := newDelivery(ns, "h2", "heidi")
		Expect(k8sClient.Create(suiteCtx, pending)).To(Succeed())
		// An item created after it arrives after it: the server has seen
		// the pending one by then.
		later := newDelivery(ns, "h3", "heidi")
		later.Spec.DeliveredOnCreate = true
		Expect(k8sClient.Create(suiteCtx, later)).To(Succeed())
		Expect(s.next().item().Name).To(Equal("h3"))
		Expect(userClient("heidi").List(suiteCtx, &l, client.InNamespace(ns))).To(Succeed())
		var names []string
		for _, it := range l.Items {
			names = append(names, it.Name)
		}
		Expect(names).To(ConsistOf("h1", "h3"))
	})

	It("streams every namespace of the caller, and only the caller's", func() {
		ns1, ns2 := newNamespace(), newNamespace()
		ivan, _ := openStream("ivan", "/apis/inbox.herald.dev/v1alpha1/stream?watch=1", "")
		defer ivan.close()
		judy, _ := openStream("judy", "/apis/inbox.herald.dev/v1alpha1/stream?watch=true", "")
		defer judy.close()
		Expect(ivan.next().Type).To(Equal("reset"))
		Expect(judy.next().Type).To(Equal("reset"))

		createItem(ns1, "i1", "ivan", nil)
		createItem(ns2, "j1", "judy", nil)
		createItem(ns2, "i2", "ivan", func(d *notifyv1.ChannelDelivery) { d.Spec.Content.Category = "security" })

		a, b := ivan.next(), ivan.next()
		Expect([]string{a.item().Namespace + "/" + a.item().Name, b.item().Namespace + "/" + b.item().Name}).
			To(Equal([]string{ns1 + "/i1", ns2 + "/i2"}))
		Expect(judy.next().item().Name).To(Equal("j1"))
	})

	It("outlives kube-apiserver's request timeout when opened with ?watch=1", func() {
		ns := newNamespace()
		long, _ := openStream("liam", streamPath(ns), "")
		defer long.close()
		short, _ := openStream("liam", "/apis/inbox.herald.dev/v1alpha1/namespaces/"+ns+"/stream", "")
		defer short.close()
		opened := time.Now()
		Expect(long.next().Type).To(Equal("reset"))
		Expect(short.next().Type).To(Equal("reset"))

		// Without watch=1 kube-apiserver treats the stream as a list and
		// ends it at its request timeout; the client would resume.
		Eventually(func() bool {
			for {
				select {
				case _, ok := <-short.events:
					if !ok {
						return true
					}
				default:
					return false
				}
			}
		}).WithTimeout(3 * requestTimeout).Should(BeTrue())
		ended := time.Since(opened)
		Expect(ended).To(BeNumerically(">=", requestTimeout-time.Second))
		fmt.Fprintf(GinkgoWriter, "stream without watch=1 ended after %v\n", ended)

		// The watch=1 stream is still live: heartbeats and events flow.
		Expect(long.nextComment().Comment).To(HavePrefix("heartbeat"))
		createItem(ns, "l1", "liam", nil)
		Expect(long.next()).To(And(HaveField("Type", "item"), HaveField("Data", ContainSubstring(`"name":"l1"`))))
		Expect(time.Since(opened)).To(BeNumerically(">", requestTimeout))
	})
})
