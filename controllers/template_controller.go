package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/render"
)

// NotificationTemplate condition reasons.
const (
	ReasonTemplateValid = "Valid"
	// ReasonTemplateInvalid (shared with Notifications) says a template
	// does not parse or execute.
)

// NotificationTemplateReconciler reports whether a NotificationTemplate can
// be rendered: Ready=True, or Ready=False with the field and line of the
// first error, so that a broken template shows up when it is applied
// rather than when the first Notification using it fails.
type NotificationTemplateReconciler struct {
	client.Client
	Recorder events.EventRecorder
}

// +kubebuilder:rbac:groups=notify.herald.dev,resources=notificationtemplates,verbs=get;list;watch
// +kubebuilder:rbac:groups=notify.herald.dev,resources=notificationtemplates/status,verbs=get;update;patch

func (r *NotificationTemplateReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var t notifyv1.NotificationTemplate
	if err := r.Get(ctx, req.NamespacedName, &t); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := t.Status.DeepCopy()
	cond := metav1.Condition{
		Type: notifyv1.ConditionReady, Status: metav1.ConditionTrue, Reason: ReasonTemplateValid,
		Message: "every field parses and renders with the declared params", ObservedGeneration: t.Generation,
	}
	if err := render.Check(&t.Spec); err != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, ReasonTemplateInvalid, err.Error()
	}
	meta.SetStatusCondition(&t.Status.Conditions, cond)
	t.Status.ObservedGeneration = t.Generation
	if equality.Semantic.DeepEqual(before, &t.Status) {
		return ctrl.Result{}, nil
	}
	if err := r.Status().Update(ctx, &t); err != nil {
		if apierrors.IsConflict(err) {
			return ctrl.Result{Requeue: true}, nil
		}
		return ctrl.Result{}, fmt.Errorf("updating template status: %w", err)
	}
	// One Event per distinct problem, so `kubectl describe` explains it
	// without repeating it on every resync.
	if old := meta.FindStatusCondition(before.Conditions, notifyv1.ConditionReady); cond.Status == metav1.ConditionFalse &&
		(old == nil || old.Status != cond.Status || old.Message != cond.Message) {
		r.Recorder.Eventf(&t, nil, "Warning", ReasonTemplateInvalid, "Validate", "%s", cond.Message)
	}
	return ctrl.Result{}, nil
}

// SetupWithManager watches templates' specs; its own status writes do not
// change the generation and so do not wake it.
func (r *NotificationTemplateReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&notifyv1.NotificationTemplate{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(r)
}

// notificationTemplateIndex indexes Notifications by the template they
// name, so that a template's arrival finds its waiting Notifications
// without listing the namespace.
const notificationTemplateIndex = "spec.templateRef.name"

func indexNotificationsByTemplate(ctx context.Context, mgr ctrl.Manager) error {
	return mgr.GetFieldIndexer().IndexField(ctx, &notifyv1.Notification{}, notificationTemplateIndex, func(o client.Object) []string {
		n, ok := o.(*notifyv1.Notification)
		if !ok || n.Spec.TemplateRef == nil {
			return nil
		}
		return []string{n.Spec.TemplateRef.Name}
	})
}

// notificationsWaitingFor maps a NotificationTemplate to the Notifications
// that name it and have not been dispatched yet. They wait with a slow
// requeue (templateRetryInterval); a template that is created or fixed
// wakes them at once. Dispatched ones rendered already and are left alone.
func notificationsWaitingFor(c client.Reader) handler.TypedMapFunc[client.Object, reconcile.Request] {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list notifyv1.NotificationList
		if err := c.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{notificationTemplateIndex: o.GetName()}); err != nil {
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
