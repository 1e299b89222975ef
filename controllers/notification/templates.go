package notification

import (
	"context"

	"k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// templateIndex indexes Notifications by the template they
// name, so that a template's arrival finds its waiting Notifications
// without listing the namespace.
const templateIndex = "spec.templateRef.name"

func indexByTemplate(ctx context.Context, mgr ctrl.Manager) error {
	return mgr.GetFieldIndexer().IndexField(ctx, &notifyv1.Notification{}, templateIndex, func(o client.Object) []string {
		n, ok := o.(*notifyv1.Notification)
		if !ok || n.Spec.TemplateRef == nil {
			return nil
		}
		return []string{n.Spec.TemplateRef.Name}
	})
}

// waitingFor maps a NotificationTemplate to the Notifications
// that name it and have not been dispatched yet. They wait with a slow
// requeue (templateRetryInterval); a template that is created or fixed
// wakes them at once. Dispatched ones rendered already and are left alone.
func waitingFor(c client.Reader) handler.TypedMapFunc[client.Object, reconcile.Request] {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list notifyv1.NotificationList
		if err := c.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{templateIndex: o.GetName()}); err != nil {
			log.FromContext(ctx).Error(err, "listing notifications waiting for a template", "template", o.GetName())
			return nil
		}
		var out []reconcile.Request
		for i := range list.Items {
			n := &list.Items[i]
			if n.Status.Phase.Finished() || meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionDispatched) {
				continue
			}
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(n)})
		}
		return out
	}
}
