package notify_test

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/pkg/notify"
)

func TestRetryAndCancelAnnotate(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	n := &v1alpha1.Notification{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "n", Annotations: map[string]string{"keep": "me"}}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(n).Build()
	ctx := context.Background()
	get := func() map[string]string {
		var got v1alpha1.Notification
		if err := c.Get(ctx, client.ObjectKeyFromObject(n), &got); err != nil {
			t.Fatal(err)
		}
		return got.Annotations
	}

	v := notify.RetryValue(time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("x", 3600)))
	if v != "2026-03-01T11:00:00Z" {
		t.Errorf("RetryValue = %s", v)
	}
	if err := notify.Retry(ctx, c, "shop", "n", v, notify.RetryFilter{Channel: v1alpha1.ChannelWebhook, Reason: "Expired"}); err != nil {
		t.Fatal(err)
	}
	a := get()
	if a[v1alpha1.AnnotationRetry] != v || a[v1alpha1.AnnotationRetryChannel] != "webhook" || a[v1alpha1.AnnotationRetryReason] != "Expired" || a["keep"] != "me" {
		t.Errorf("after a filtered retry: %v", a)
	}
	// A later retry without filters removes the old ones.
	if err := notify.Retry(ctx, c, "shop", "n", "v2", notify.RetryFilter{}); err != nil {
		t.Fatal(err)
	}
	a = get()
	if _, ok := a[v1alpha1.AnnotationRetryChannel]; ok || a[v1alpha1.AnnotationRetry] != "v2" {
		t.Errorf("after an unfiltered retry: %v", a)
	}
	if err := notify.Retry(ctx, c, "shop", "n", "", notify.RetryFilter{}); err == nil {
		t.Error("an empty retry value was accepted")
	}
	if err := notify.Cancel(ctx, c, "shop", "n", ""); err == nil {
		t.Error("an empty cancel value was accepted")
	}
	if err := notify.Cancel(ctx, c, "shop", "n", "by kim"); err != nil {
		t.Fatal(err)
	}
	if get()[v1alpha1.AnnotationCancel] != "by kim" {
		t.Error("cancel annotation not set")
	}
	if err := notify.Cancel(ctx, c, "shop", "missing", "x"); err == nil {
		t.Error("cancelling a missing notification succeeded")
	}
}
