package notification

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

func TestDeliveryName(t *testing.T) {
	if got := DeliveryName("disk-full", notifyv1.ChannelInApp, "alice"); got != "disk-full-inapp-alice" {
		t.Fatalf("DeliveryName = %q", got)
	}
	long := strings.Repeat("n", 200)
	a := DeliveryName(long, notifyv1.ChannelWhatsApp, strings.Repeat("r", 100))
	b := DeliveryName(long, notifyv1.ChannelWhatsApp, strings.Repeat("r", 99)+"s")
	for _, name := range []string{a, b} {
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			t.Fatalf("%q is not a valid object name: %v", name, errs)
		}
	}
	if a == b {
		t.Fatal("names that differ only past the limit must stay distinct")
	}
	if a != DeliveryName(long, notifyv1.ChannelWhatsApp, strings.Repeat("r", 100)) {
		t.Fatal("DeliveryName must be deterministic")
	}
}
