package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-dev/herald/api/notify/v1alpha1"
)

// RetryFilter narrows a re-drive to one channel, one reason, or both;
// the zero value re-drives every Failed and Expired delivery.
type RetryFilter struct {
	Channel v1alpha1.Channel
	Reason  string
}

// Retry asks Herald to re-drive the Failed and Expired deliveries of the
// Notification namespace/name that match filter, by setting its
// notify.herald.dev/retry annotation to value (a request id, usually the
// time: each distinct value re-drives once) and the filter annotations.
// It returns at once; status.retry records the re-drive when it is done.
func Retry(ctx context.Context, c client.Client, namespace, name, value string, filter RetryFilter) error {
	if value == "" {
		return fmt.Errorf("retry of %s/%s: an empty value requests nothing", namespace, name)
	}
	annotations := map[string]any{
		v1alpha1.AnnotationRetry:        value,
		v1alpha1.AnnotationRetryChannel: nil,
		v1alpha1.AnnotationRetryReason:  nil,
	}
	if filter.Channel != "" {
		annotations[v1alpha1.AnnotationRetryChannel] = string(filter.Channel)
	}
	if filter.Reason != "" {
		annotations[v1alpha1.AnnotationRetryReason] = filter.Reason
	}
	return annotate(ctx, c, namespace, name, annotations)
}

// Cancel asks Herald to cancel the Notification namespace/name: no
// delivery not yet sent is sent, and it ends Cancelled. value is recorded
// in status.cancel (who or why); it must not be empty.
func Cancel(ctx context.Context, c client.Client, namespace, name, value string) error {
	if value == "" {
		return fmt.Errorf("cancel of %s/%s: an empty value requests nothing", namespace, name)
	}
	return annotate(ctx, c, namespace, name, map[string]any{v1alpha1.AnnotationCancel: value})
}

// RetryValue is the annotation value Retry is usually given: the time,
// as Flux's reconcile.fluxcd.io/requestedAt.
func RetryValue(now time.Time) string { return now.UTC().Format(time.RFC3339Nano) }

func annotate(ctx context.Context, c client.Client, namespace, name string, annotations map[string]any) error {
	data, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": annotations}})
	if err != nil {
		return err
	}
	n := &v1alpha1.Notification{}
	n.Namespace, n.Name = namespace, name
	if err := c.Patch(ctx, n, client.RawPatch("application/merge-patch+json", data)); err != nil {
		return fmt.Errorf("annotating notification %s/%s: %w", namespace, name, err)
	}
	return nil
}

// WaitFinished polls the Notification namespace/name every interval until
// it has finished (Delivered, PartiallyDelivered, Failed, Expired or
// Cancelled) and done, if given, agrees, or ctx ends. done lets a caller
// wait for more, e.g. for a re-drive to be recorded.
func WaitFinished(ctx context.Context, c client.Client, namespace, name string, interval time.Duration, done func(*v1alpha1.Notification) bool) (*v1alpha1.Notification, error) {
	n := &v1alpha1.Notification{}
	err := wait.PollUntilContextCancel(ctx, interval, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, n); err != nil {
			return false, err
		}
		return n.Status.Phase.Finished() && (done == nil || done(n)), nil
	})
	if err != nil {
		return n, fmt.Errorf("waiting for notification %s/%s to finish: %w", namespace, name, err)
	}
	return n, nil
}
