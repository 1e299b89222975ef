package delivery

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/receipt"
	"github.com/herald-dev/herald/internal/sendercache"
)

// ReceiptTrips lets a provider fault that arrives in a delivery receipt
// act as one met at send time: when `herald receiver` records that a
// provider reported a message failed for a reason of the provider's own
// (its account locked, its payment method, its sender), the provider's
// circuit opens here, in the controller that holds it, so that later
// deliveries move on to the provider's fallbacks and its Ready condition
// says why. The failed delivery itself is not sent again.
type ReceiptTrips struct {
	Client   client.Reader
	Registry *sendercache.Cache
	// TripFor is how long the circuit stays open, counted from the
	// receipt's time; zero means defaultTripDuration.
	TripFor time.Duration
	OnTrip  func(namespace, name string)
	Clock   clock.PassiveClock
}

func (t *ReceiptTrips) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var d notifyv1.ChannelDelivery
	if err := t.Client.Get(ctx, req.NamespacedName, &d); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	rc := d.Status.Receipt
	if rc == nil || rc.State != notifyv1.ReceiptFailed || d.Status.Provider == "" {
		return ctrl.Result{}, nil
	}
	ce := receipt.ClassifyCode(rc.Code)
	if ce == nil || !ce.ProviderFault() {
		return ctrl.Result{}, nil
	}
	tripFor := t.TripFor
	if tripFor <= 0 {
		tripFor = defaultTripDuration
	}
	now := t.Clock.Now()
	// Counted from the receipt, so that old receipts seen again (after a
	// restart, on a resync) never open a circuit anew.
	until := rc.Time.Add(tripFor)
	if !now.Before(until) {
		return ctrl.Result{}, nil
	}
	e, ok := t.Registry.Get(types.NamespacedName{Namespace: d.Namespace, Name: d.Status.Provider})
	if !ok {
		return ctrl.Result{}, nil
	}
	if tripped, _ := e.Tripped(now); tripped {
		return ctrl.Result{}, nil
	}
	e.Trip(until, fmt.Sprintf("the provider reported a message failed after accepting it: %v", ce))
	if t.OnTrip != nil {
		t.OnTrip(e.Namespace, e.Name)
	}
	return ctrl.Result{}, nil
}

// receiptFailed passes deliveries whose receipt just turned failed, and
// every such delivery when the cache starts.
var receiptFailed = predicate.Funcs{
	CreateFunc: func(e event.CreateEvent) bool { return failedReceipt(e.Object) },
	UpdateFunc: func(e event.UpdateEvent) bool {
		return failedReceipt(e.ObjectNew) && !failedReceipt(e.ObjectOld)
	},
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

func failedReceipt(o client.Object) bool {
	d, ok := o.(*notifyv1.ChannelDelivery)
	return ok && d.Status.Receipt != nil && d.Status.Receipt.State == notifyv1.ReceiptFailed
}

// SetupWithManager watches WhatsApp deliveries, the only ones with receipts.
func (t *ReceiptTrips) SetupWithManager(mgr ctrl.Manager) error {
	if t.Clock == nil {
		t.Clock = clock.RealClock{}
	}
	whatsApp := predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetLabels()[notifyv1.LabelChannel] == string(notifyv1.ChannelWhatsApp)
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("delivery-receipts").
		For(&notifyv1.ChannelDelivery{}, builder.WithPredicates(whatsApp, receiptFailed)).
		Complete(t)
}
