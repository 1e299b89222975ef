package retry

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// Resolve is the one place where a retry policy of the API (a
// Notification's spec.retry, copied into each delivery) meets the
// controller's defaults: every field it leaves unset comes from defaults,
// and a default maxDelay below a given initialDelay is raised to it rather
// than inverting the policy. The Notification reconciler writes the result
// into each delivery, so a delivery's policy no longer depends on the flags
// of the controller that happens to send it.
func Resolve(rp *notifyv1.RetryPolicy, defaults Policy) Policy {
	var p Policy
	if rp != nil {
		p.Strategy = Strategy(rp.Strategy)
		if rp.MaxAttempts != nil {
			p.MaxAttempts = int(*rp.MaxAttempts)
		}
		if rp.InitialDelay != nil {
			p.InitialDelay = rp.InitialDelay.Duration
		}
		if rp.MaxDelay != nil {
			p.MaxDelay = rp.MaxDelay.Duration
		}
	}
	p = p.WithDefaults(defaults)
	if p.MaxDelay < p.InitialDelay {
		p.MaxDelay = p.InitialDelay
	}
	return p
}

// Spec is p as the API's retry policy (jitter is the controller's own and
// not part of it).
func (p Policy) Spec() *notifyv1.RetryPolicy {
	attempts := int32(p.MaxAttempts)
	return &notifyv1.RetryPolicy{
		Strategy:     notifyv1.BackoffStrategy(p.Strategy),
		MaxAttempts:  &attempts,
		InitialDelay: &metav1.Duration{Duration: p.InitialDelay},
		MaxDelay:     &metav1.Duration{Duration: p.MaxDelay},
	}
}
