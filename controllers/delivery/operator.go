package delivery

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/metrics"
)

// What an operator's re-drive or cancel (annotations on the Notification,
// handled by the notification controller, controllers/notification/operator.go)
// changes in how a delivery is sent.

// deadline is when the delivery expires: a re-drive gives an expired
// delivery a new deadline in status, which replaces the spec's.
func deadline(d *notifyv1.ChannelDelivery) *metav1.Time {
	if d.Status.ExpiresAt != nil {
		return d.Status.ExpiresAt
	}
	return d.Spec.ExpiresAt
}

// policyAttempts is the number of attempts the retry policy counts once
// attempt has been made: those since the last re-drive.
func policyAttempts(s *notifyv1.ChannelDeliveryStatus, attempt int32) int {
	return int(attempt - s.AttemptsBeforeRetry)
}

// cancelRequested reports whether the Notification that controls d has
// been cancelled. It reads the cache, which holds the cancel annotation
// before the notification controller records the cancel (its reconcile is
// woken by the cache's update), so no attempt starts after the record: an
// attempt already claimed runs to its end and is recorded.
func (r *Reconciler) cancelRequested(ctx context.Context, d *notifyv1.ChannelDelivery) (bool, error) {
	owner := metav1.GetControllerOf(d)
	if owner == nil || owner.Kind != "Notification" {
		return false, nil
	}
	var n notifyv1.Notification
	if err := r.Get(ctx, client.ObjectKey{Namespace: d.Namespace, Name: owner.Name}, &n, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("reading notification %s: %w", owner.Name, err)
	}
	return n.UID == owner.UID && (n.Annotations[notifyv1.AnnotationCancel] != "" || n.Status.Cancel != nil), nil
}

// observeAttempt counts an attempt that reached a provider, for the
// failure rate per provider (herald_provider_attempts_total).
func observeAttempt(d *notifyv1.ChannelDelivery, a attemptMade, outcome string) {
	if a.provider == "" {
		return
	}
	metrics.ProviderAttempts.WithLabelValues(string(d.Spec.Channel), d.Namespace, a.provider, outcome).Inc()
}
