// Package recipient holds the Recipient reconciler, which reports in the
// AddressesValid condition whether a Recipient's addresses can be used.
package recipient

import (
	"context"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel/whatsapp"
	"github.com/herald-dev/herald/internal/digest"
	"github.com/herald-dev/herald/internal/patch"
)

// Reconciler reports whether a Recipient's addresses can be used,
// beyond what admission can check (a phone number that is well-formed but
// not a real number, an unknown time zone).
type Reconciler struct {
	client.Client
}

// +kubebuilder:rbac:groups=notify.herald.dev,resources=recipients/status,verbs=patch

func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var rc notifyv1.Recipient
	if err := r.Get(ctx, req.NamespacedName, &rc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	patcher := patch.NewHelper(&rc, r.Client, patch.ControllerFieldOwner)
	problems := AddressProblems(&rc.Spec)
	cond := metav1.Condition{Type: notifyv1.ConditionAddressesValid, Status: metav1.ConditionTrue, Reason: notifyv1.ReasonValid,
		Message: "every address given can be used", ObservedGeneration: rc.Generation}
	if len(problems) > 0 {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, string(notifyv1.ReasonInvalidAddress), strings.Join(problems, "; ")
	}
	meta.SetStatusCondition(&rc.Status.Conditions, cond)
	rc.Status.ObservedGeneration = rc.Generation
	if _, err := patcher.Patch(ctx, &rc, patch.WithOptimisticLock()); err != nil {
		return patch.RequeueOnConflict(err, "recipient status")
	}
	return ctrl.Result{}, nil
}

// AddressProblems lists what is wrong with a recipient's addresses.
func AddressProblems(s *notifyv1.RecipientSpec) []string {
	var out []string
	if s.Email != "" {
		if _, err := mail.ParseAddress(s.Email); err != nil {
			out = append(out, fmt.Sprintf("email %q: %v", s.Email, err))
		}
	}
	if s.Phone != "" {
		if _, err := whatsapp.Normalize(s.Phone, ""); err != nil {
			out = append(out, fmt.Sprintf("phone %q: %v", s.Phone, err))
		}
	}
	if s.Timezone != "" {
		if _, err := time.LoadLocation(s.Timezone); err != nil {
			out = append(out, fmt.Sprintf("timezone %q is not an IANA time zone", s.Timezone))
		}
	}
	// A digest whose schedule cannot be used holds nothing: its
	// notifications are sent one by one, and this says why.
	for i := range s.Preferences.Digests {
		p := &s.Preferences.Digests[i]
		if p.Schedule == "" {
			continue
		}
		if _, err := digest.WindowEnd(p, s.Timezone, time.Now()); err != nil {
			out = append(out, fmt.Sprintf("preferences.digests[%d]: %v; matching notifications are sent one by one", i, err))
		}
	}
	return out
}

func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).For(&notifyv1.Recipient{}).Complete(r)
}
