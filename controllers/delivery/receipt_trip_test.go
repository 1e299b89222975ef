package delivery_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	testingclock "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/controllers/delivery"
	"github.com/herald-dev/herald/internal/sendercache"
)

func TestReceiptTrips(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		code     string
		age      time.Duration
		wantTrip bool
	}{
		{"account locked reported later opens the circuit", "meta 131031", time.Minute, true},
		{"twilio sender problem", "twilio 63007", time.Minute, true},
		{"a recipient's fault does not", "meta 131047", time.Minute, false},
		{"63016 is the recipient's", "twilio 63016", time.Minute, false},
		{"an old receipt seen again does not", "meta 131031", 10 * time.Minute, false},
		{"an unreadable code does not", "meta ?", time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scheme := runtime.NewScheme()
			_ = notifyv1.AddToScheme(scheme)
			d := &notifyv1.ChannelDelivery{
				ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "ns"},
				Spec:       notifyv1.ChannelDeliverySpec{Notification: "n", Channel: notifyv1.ChannelWhatsApp},
				Status: notifyv1.ChannelDeliveryStatus{Phase: notifyv1.DeliveryFailed, Provider: "cloud",
					Receipt: &notifyv1.DeliveryReceipt{State: notifyv1.ReceiptFailed, Code: tc.code, Time: metav1.NewTime(now.Add(-tc.age))}},
			}
			c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(d).Build()
			cache := sendercache.NewCache()
			entry := &sendercache.Entry{Name: "cloud", Namespace: "ns", Channel: notifyv1.ChannelWhatsApp, Ready: true}
			cache.Set(entry)
			var told []string
			r := &delivery.ReceiptTrips{Client: c, Registry: cache, TripFor: 5 * time.Minute, Clock: testingclock.NewFakeClock(now),
				OnTrip: func(ns, name string) { told = append(told, ns+"/"+name) }}
			if _, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(d)}); err != nil {
				t.Fatal(err)
			}
			tripped, why := entry.Tripped(now)
			if tripped != tc.wantTrip || (len(told) == 1) != tc.wantTrip {
				t.Fatalf("tripped %v (%s), told %v; want %v", tripped, why, told, tc.wantTrip)
			}
			if tripped && !entry.TrippedUntil().Equal(now.Add(-tc.age).Add(5*time.Minute)) {
				t.Errorf("tripped until %s, want five minutes after the receipt", entry.TrippedUntil())
			}
		})
	}
}

// A delivery sent again (reset for another attempt after its message
// failed) drops the receipt of the earlier message when the new one is
// accepted, so that the new message's receipts apply.
func TestNewSendDropsAnEarlierReceipt(t *testing.T) {
	f := newWaitFixture(t, func(d *notifyv1.ChannelDelivery) {
		d.Status.ProviderMessageID = "old"
		d.Status.Receipt = &notifyv1.DeliveryReceipt{State: notifyv1.ReceiptFailed, Code: "meta 131047"}
	})
	f.reconcile()
	d := f.get()
	if d.Status.Phase != notifyv1.DeliverySucceeded || d.Status.Receipt != nil {
		t.Fatalf("after a new send: phase %s, receipt %+v; want Succeeded and no receipt", d.Status.Phase, d.Status.Receipt)
	}
}
