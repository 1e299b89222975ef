package selfalert

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

func provider(ns, name string, ready metav1.ConditionStatus, reason string) *notifyv1.NotificationProvider {
	p := &notifyv1.NotificationProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	p.Spec.Channel = notifyv1.ChannelWebhook
	p.Status.Conditions = []metav1.Condition{{Type: notifyv1.ConditionReady, Status: ready, Reason: reason, Message: "HTTP 401 from the provider"}}
	return p
}

func failed(ns, name string, at time.Time, labels map[string]string) *notifyv1.ChannelDelivery {
	d := &notifyv1.ChannelDelivery{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
	d.Status.Phase = notifyv1.DeliveryFailed
	d.Status.CompletionTime = &metav1.MicroTime{Time: at}
	return d
}

func alerts(t *testing.T, c client.Client) []notifyv1.Notification {
	t.Helper()
	var list notifyv1.NotificationList
	if err := c.List(context.Background(), &list, client.InNamespace("ops")); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func TestCheck(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := notifyv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 7, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(now)
	objs := []client.Object{
		provider("shop", "hook", metav1.ConditionFalse, notifyv1.ReasonProviderRejected),
		provider("shop", "mail", metav1.ConditionTrue, notifyv1.ReasonReady),
		provider("shop", "sms", metav1.ConditionFalse, notifyv1.ReasonSecretNotFound),
		// The alerts' own provider tripping is not alerted through itself.
		provider("ops", "ops-mail", metav1.ConditionFalse, notifyv1.ReasonProviderRejected),
		failed("shop", "a", now.Add(-time.Minute), nil),
		failed("shop", "b", now.Add(-2*time.Minute), nil),
		failed("shop", "old", now.Add(-time.Hour), nil),
		// Alerts' own failed deliveries never count.
		failed("ops", "alert-1", now.Add(-time.Minute), map[string]string{LabelAlert: "true"}),
		failed("ops", "alert-2", now.Add(-time.Minute), map[string]string{LabelAlert: "true"}),
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
	opts := DefaultOptions()
	opts.Namespace = "ops"
	opts.FailureThreshold = 3
	a := &Alerter{Client: c, Options: opts, Clock: clk}
	if err := a.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := alerts(t, c)
	if len(got) != 1 || !strings.Contains(got[0].Spec.Title, "provider shop/hook (webhook) tripped") {
		t.Fatalf("alerts %+v, want one about shop/hook only (2 failures are under the threshold of 3)", got)
	}
	if got[0].Labels[LabelAlert] != "true" || got[0].Spec.Audience.Roles[0] != "herald-operators" {
		t.Errorf("alert labels %v audience %+v", got[0].Labels, got[0].Spec.Audience)
	}

	a.Options.FailureThreshold = 2
	if err := a.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	got = alerts(t, c)
	if len(got) != 2 {
		t.Fatalf("%d alerts, want the trip and the failures", len(got))
	}
	for _, n := range got {
		if strings.Contains(n.Spec.Title, "failed") && !strings.Contains(n.Spec.Message, "shop: 2") {
			t.Errorf("failure alert %q does not count shop's 2 failures", n.Spec.Message)
		}
	}

	// Within the window nothing is sent again; in the next one the causes
	// still there are.
	clk.Step(time.Minute)
	if err := a.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(alerts(t, c)); n != 2 {
		t.Fatalf("%d alerts after a second check in the same window, want 2", n)
	}
	clk.Step(opts.Window)
	if err := a.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(alerts(t, c)); n != 3 {
		t.Fatalf("%d alerts in the next window, want 3 (the trip again; the failures are older than the window)", n)
	}
}

func TestValidate(t *testing.T) {
	o := DefaultOptions()
	if err := o.Validate(); err != nil {
		t.Errorf("off: %v", err)
	}
	o.Namespace = "ops"
	if err := o.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	o.Channels = []string{"pager"}
	if err := o.Validate(); err == nil {
		t.Error("an unknown channel passed")
	}
}
