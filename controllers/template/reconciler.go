// Package template holds the NotificationTemplate reconciler, which reports
// in the Ready condition whether a template renders.
package template

import (
	"context"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/patch"
	"github.com/herald-dev/herald/internal/render"
)

// Reconciler reports whether a NotificationTemplate can
// be rendered: Ready=True, or Ready=False with the field and line of the
// first error, so that a broken template shows up when it is applied
// rather than when the first Notification using it fails.
type Reconciler struct {
	client.Client
	Recorder events.EventRecorder
}

// +kubebuilder:rbac:groups=notify.herald.dev,resources=notificationtemplates,verbs=get;list;watch
// +kubebuilder:rbac:groups=notify.herald.dev,resources=notificationtemplates/status,verbs=patch

func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var t notifyv1.NotificationTemplate
	if err := r.Get(ctx, req.NamespacedName, &t); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	patcher := patch.NewHelper(&t, r.Client, patch.ControllerFieldOwner)
	before := t.Status.DeepCopy()
	cond := metav1.Condition{
		Type: notifyv1.ConditionReady, Status: metav1.ConditionTrue, Reason: notifyv1.ReasonValid,
		Message: "every field parses and renders with the declared params", ObservedGeneration: t.Generation,
	}
	if err := render.Check(&t.Spec); err != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, notifyv1.ReasonTemplateInvalid, err.Error()
	}
	meta.SetStatusCondition(&t.Status.Conditions, cond)
	t.Status.ObservedGeneration = t.Generation
	wrote, err := patcher.Patch(ctx, &t, patch.WithOptimisticLock())
	if err != nil {
		return patch.RequeueOnConflict(err, "template status")
	}
	if !wrote {
		return ctrl.Result{}, nil
	}
	// One Event per distinct problem, so `kubectl describe` explains it
	// without repeating it on every resync.
	if old := meta.FindStatusCondition(before.Conditions, notifyv1.ConditionReady); cond.Status == metav1.ConditionFalse &&
		(old == nil || old.Status != cond.Status || old.Message != cond.Message) {
		r.Recorder.Eventf(&t, nil, "Warning", notifyv1.ReasonTemplateInvalid, "Validate", "%s", cond.Message)
	}
	return ctrl.Result{}, nil
}

// SetupWithManager watches templates' specs; its own status writes do not
// change the generation and so do not wake it.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&notifyv1.NotificationTemplate{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(r)
}
