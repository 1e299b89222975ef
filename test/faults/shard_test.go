//go:build faults

package faults

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// Two shards on one control plane, as docs/scaling.md sets them up: shard
// "a" handles what is labelled sharding.herald.dev/key=a, the default shard
// everything without the label. Killing shard a stops only its work; it
// resumes when a replacement starts, and the default shard neither notices
// nor touches shard a's notifications.
var _ = Describe("shards", Ordered, func() {
	It("keeps one shard's work going while the other is killed, and resumes the killed one", func() {
		ns := namespace("shards")
		s := newSink(40 * time.Millisecond)
		shardA := []string{"--leader-elect", "--leader-election-namespace=" + ns, "--leader-election-id=herald-shard-a",
			"--watch-label-selector=" + notifyv1.LabelShardKey + "=a", "--shared-status=false"}
		defaultShard := []string{"--leader-elect", "--leader-election-namespace=" + ns, "--leader-election-id=herald-shard-default",
			"--watch-label-selector=!" + notifyv1.LabelShardKey}
		holder := func(lease string) func() string {
			return func() string {
				var l coordinationv1.Lease
				if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: lease}, &l); err != nil || l.Spec.HolderIdentity == nil {
					return ""
				}
				return *l.Spec.HolderIdentity
			}
		}
		a := startController(shardA...)
		startController(defaultShard...)
		Eventually(holder("herald-shard-a"), time.Minute).ShouldNot(BeEmpty())
		Eventually(holder("herald-shard-default"), time.Minute).ShouldNot(BeEmpty())
		defaultHolder := holder("herald-shard-default")()

		webhookProvider(ns, s.URL)
		users := recipients(ns, 100, nil)
		// 300 deliveries in shard a, 300 in the default shard.
		shardedNotifications(ns, "a", users, 60, 5)
		shardedNotifications(ns, "", users, 60, 5)

		Eventually(func() int64 { return s.requests.Load() }).Should(BeNumerically(">=", 150))
		a.Kill()
		killedAt, _ := s.tally()

		// The default shard finishes all of its work while shard a is down,
		// and shard a's notifications stay where they were: nobody else
		// picks them up.
		Eventually(func(g Gomega) {
			g.Expect(unfinished(ns, "")).To(BeZero())
		}).Should(Succeed())
		Expect(unfinished(ns, "a")).NotTo(BeZero(), "shard a finished before it was killed; the test proves nothing")
		Expect(holder("herald-shard-default")()).To(Equal(defaultHolder), "the default shard lost its lease")
		finishedWhileDown := 60 - unfinished(ns, "a")

		// A replacement takes shard a's lease once the killed one's expires
		// and finishes its work.
		startController(shardA...)
		waitAllFinished(ns, 120)
		ds := expectAllSucceeded(ns, 600)
		s.expectEach(ds)
		dupA, dupDefault := 0, 0
		s.mu.Lock()
		for _, d := range ds {
			n := s.ok[string(d.UID)] - 1
			switch d.Labels[notifyv1.LabelShardKey] {
			case "a":
				dupA += n
			case "":
				dupDefault += n
			default:
				Fail(fmt.Sprintf("%s carries shard label %q", d.Name, d.Labels[notifyv1.LabelShardKey]))
			}
		}
		s.mu.Unlock()
		Expect(countShard(ds, "a")).To(Equal(300), "every delivery of shard a's notifications carries its label")
		// Only sends in flight at the kill may repeat: at most one per
		// webhook worker of the killed shard.
		Expect(dupA).To(BeNumerically("<=", 5))
		Expect(dupDefault).To(BeZero(), "the default shard was not killed and repeats nothing")
		AddReportEntry("shards", fmt.Sprintf("shard a killed after %d of 600 deliveries; %d of its 60 notifications had finished; the default shard finished its 60 meanwhile; duplicates: shard a %d, default shard %d",
			killedAt, finishedWhileDown, dupA, dupDefault))
	})
})

// shardedNotifications creates count webhook notifications of per
// recipients each, labelled for shard (none when empty), named by shard.
func shardedNotifications(ns, shard string, users []string, count, per int) {
	var objs []*notifyv1.Notification
	for i := 0; i < count; i++ {
		var audience []string
		for j := 0; j < per; j++ {
			audience = append(audience, users[(i*per+j)%len(users)])
		}
		n := &notifyv1.Notification{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("shard%s-%03d", shard, i), Namespace: ns},
			Spec: notifyv1.NotificationSpec{
				Title: "Shard test", Message: fmt.Sprintf("message %d", i),
				Audience: notifyv1.Audience{Users: audience},
				Channels: []notifyv1.Channel{notifyv1.ChannelWebhook},
				Timeout:  &metav1.Duration{Duration: 3 * time.Second},
				Retry:    patientRetry(),
			},
		}
		if shard != "" {
			n.Labels = map[string]string{notifyv1.LabelShardKey: shard}
		}
		objs = append(objs, n)
	}
	createAll(objs)
}

// unfinished counts the notifications of ns in shard ("" for unlabelled)
// that have not finished.
func unfinished(ns, shard string) int {
	var list notifyv1.NotificationList
	Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
	left := 0
	for _, n := range list.Items {
		if n.Labels[notifyv1.LabelShardKey] == shard && !n.Status.Phase.Finished() {
			left++
		}
	}
	return left
}

func countShard(ds []notifyv1.ChannelDelivery, shard string) int {
	c := 0
	for _, d := range ds {
		if d.Labels[notifyv1.LabelShardKey] == shard {
			c++
		}
	}
	return c
}
