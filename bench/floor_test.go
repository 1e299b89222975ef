//go:build bench

package bench

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/patch"
)

// writeCosts is the control plane's time for one write of each kind Herald
// makes, keyed like writes ("notifications POST"), measured alone at 32
// goroutines. Herald's objects are larger than the Recipient of the bound
// and carry more validation, so each write costs more; the floor of a run is
// the time its writes would take with nothing else running: no controller,
// no watches.
type writeCosts map[string]time.Duration

// measureWriteCosts creates and status-updates Notifications and
// ChannelDeliveries shaped like the ones of an in-app run (status written
// as the controller writes it), with no
// controller running, and deletes them afterwards.
func (h *harness) measureWriteCosts() writeCosts {
	costs := h.writeCostsIn(h.namespace("floor"), boundCreates)
	for _, k := range []string{"notifications", "channeldeliveries"} {
		h.report.bound(fmt.Sprintf("%s creates/s, 32 goroutines", k), float64(time.Second)/float64(costs[k+" POST"]))
		h.report.bound(fmt.Sprintf("%s status patches/s, 32 goroutines", k), float64(time.Second)/float64(costs[k+"/status PATCH"]))
	}
	return costs
}

// writeCostsIn measures the write costs with n objects of each kind in
// namespace ns.
func (h *harness) writeCostsIn(ns string, n int) writeCosts {
	costs := writeCosts{}
	kinds := []struct {
		resource string
		object   func(i int) client.Object
		finish   func(o client.Object)
	}{
		{
			resource: "notifications",
			object: func(i int) client.Object {
				return h.notification(ns, fmt.Sprintf("n%05d", i), notifyv1.ChannelInApp, notifyv1.Audience{Users: []string{"r0"}})
			},
			finish: func(o client.Object) {
				n := o.(*notifyv1.Notification)
				n.Status.Phase = notifyv1.NotificationDelivered
				n.Status.Recipients = 1
				n.Status.Deliveries = notifyv1.DeliveryCounts{Total: 1, Succeeded: 1}
				n.Status.Channels = []notifyv1.ChannelStatus{{Channel: notifyv1.ChannelInApp, DeliveryCounts: n.Status.Deliveries}}
				now := metav1.Now()
				n.Status.DispatchTime, n.Status.CompletionTime = &now, &now
				meta.SetStatusCondition(&n.Status.Conditions, metav1.Condition{Type: notifyv1.ConditionDispatched, Status: metav1.ConditionTrue, Reason: "Dispatched", Message: "1 deliveries for 1 recipients on 1 channels"})
				meta.SetStatusCondition(&n.Status.Conditions, metav1.Condition{Type: notifyv1.ConditionDelivered, Status: metav1.ConditionTrue, Reason: "AllDelivered", Message: "1 delivered, 0 skipped by preference"})
			},
		},
		{
			resource: "channeldeliveries",
			object: func(i int) client.Object {
				name := fmt.Sprintf("n%05d", i)
				return &notifyv1.ChannelDelivery{
					ObjectMeta: metav1.ObjectMeta{Name: name + "-inapp-r0", Namespace: ns, Labels: map[string]string{
						notifyv1.LabelNotification: name, notifyv1.LabelChannel: "inApp", notifyv1.LabelRecipient: "r0"}},
					Spec: notifyv1.ChannelDeliverySpec{
						Notification: name, Channel: notifyv1.ChannelInApp,
						Recipient: notifyv1.RecipientSnapshot{Name: "r0", Username: "r0"},
						Content:   notifyv1.RenderedContent{Type: notifyv1.TypeInformational, Title: "Benchmark", Message: "One of many."},
					},
				}
			},
			finish: func(o client.Object) {
				d := o.(*notifyv1.ChannelDelivery)
				now := metav1.NowMicro()
				d.Status.Phase, d.Status.Reason, d.Status.Attempts = notifyv1.DeliverySucceeded, "Delivered", 1
				d.Status.CompletionTime = &now
				d.Status.History = []notifyv1.Attempt{{Number: 1, StartTime: now, Duration: &metav1.Duration{Duration: 5 * time.Microsecond}, Outcome: "Succeeded"}}
			},
		},
	}
	for _, k := range kinds {
		objs := make([]client.Object, n)
		for i := range objs {
			objs[i] = k.object(i)
		}
		d := parallel(32, n, func(i int) error { return h.c.Create(context.Background(), objs[i]) })
		costs[k.resource+" POST"] = d / time.Duration(n)
		// Status is written as the controller writes it: a merge patch of
		// the changed fields through internal/patch.
		d = parallel(32, n, func(i int) error {
			p := patch.NewHelper(objs[i], h.c, patch.ControllerFieldOwner)
			k.finish(objs[i])
			_, err := p.Patch(context.Background(), objs[i], patch.WithOptimisticLock())
			return err
		})
		costs[k.resource+"/status PATCH"] = d / time.Duration(n)
	}
	for _, obj := range []client.Object{&notifyv1.ChannelDelivery{}, &notifyv1.Notification{}} {
		if err := h.c.DeleteAllOf(context.Background(), obj, client.InNamespace(ns)); err != nil {
			h.t.Fatal(err)
		}
	}
	return costs
}

// floor is the time the run's writes take on this control plane alone.
func (c writeCosts) floor(w writes) (time.Duration, bool) {
	var total time.Duration
	for key, count := range w {
		cost, ok := c[key]
		if !ok {
			return 0, false
		}
		total += time.Duration(count) * cost
	}
	return total, true
}
