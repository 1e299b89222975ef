package notification

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

func TestDeliveryName(t *testing.T) {
	got := DeliveryName("disk-full", notifyv1.ChannelInApp, "alice")
	if !strings.HasPrefix(got, "disk-full-inapp-alice-") || len(got) != len("disk-full-inapp-alice-")+deliveryHashLen {
		t.Fatalf("DeliveryName = %q, want the readable prefix disk-full-inapp-alice- and a hash", got)
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

// Any audience entry, a Kubernetes user name up to its length limit
// included, gives a valid object name, and so does its label.
func TestDeliveryNameOfAnyUser(t *testing.T) {
	users := []string{"Kim", "kim@example.com", "kim_x", "KIM", "-", "...", "", "ü", "a b\tc", "oidc:https://issuer.example.com#kim",
		"system:serviceaccount:ns:sa", strings.Repeat("K", 253), strings.Repeat("@", 253), strings.Repeat("k.", 126)}
	seen := map[string]string{}
	for _, u := range users {
		for _, ch := range notifyv1.Channels {
			name := DeliveryName("n", ch, u)
			if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
				t.Errorf("user %q on %s: %q is not a valid object name: %v", u, ch, name, errs)
			}
			if other, dup := seen[name]; dup {
				t.Errorf("user %q on %s and %s share the name %q", u, ch, other, name)
			}
			seen[name] = u + "/" + string(ch)
			if long := DeliveryName(strings.Repeat("n", 253), ch, u); len(validation.IsDNS1123Subdomain(long)) > 0 {
				t.Errorf("user %q on %s with a long notification name: %q is not a valid object name", u, ch, long)
			}
		}
		if errs := validation.IsValidLabelValue(notifyv1.LabelValue(u)); len(errs) > 0 {
			t.Errorf("user %q: label %q is not valid: %v", u, notifyv1.LabelValue(u), errs)
		}
	}
	if notifyv1.LabelValue("kim@example.com") == notifyv1.LabelValue("kim-example.com") {
		t.Error("a sanitised label must not equal the label of another name")
	}
}

// Names whose readable parts join alike stay distinct: the hash covers the
// exact triple.
func TestDeliveryNamesDoNotCollide(t *testing.T) {
	pairs := [][2][3]string{
		{{"x", "email", "email-y"}, {"x-email", "email", "y"}},
		{{"x", "inApp", "Kim"}, {"x", "inApp", "kim"}},
		{{"x", "inApp", "kim_x"}, {"x", "inApp", "kim-x"}},
		{{"x", "inApp", "kim@example.com"}, {"x", "inApp", "kim.example.com"}},
		{{"a", "webhook", "b-c"}, {"a-webhook-b", "webhook", "c"}},
	}
	for _, p := range pairs {
		a := DeliveryName(p[0][0], notifyv1.Channel(p[0][1]), p[0][2])
		b := DeliveryName(p[1][0], notifyv1.Channel(p[1][1]), p[1][2])
		if a == b {
			t.Errorf("%v and %v share the delivery name %q", p[0], p[1], a)
		}
	}
}
