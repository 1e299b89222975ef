package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Annotations an operator sets on a Notification (kubectl annotate, or
// `kubectl herald retry|cancel`). docs/operations.md, "Day 2".
const (
	// AnnotationRetry re-drives the notification's Failed and Expired
	// deliveries: each gets a fresh set of attempts. It acts once per
	// distinct value (a timestamp is the usual value), like Flux's
	// reconcile.fluxcd.io/requestedAt; status.retry.value records the last
	// value handled.
	AnnotationRetry = "notify.herald.dev/retry"
	// AnnotationRetryChannel, with AnnotationRetry, re-drives only the
	// deliveries of this channel.
	AnnotationRetryChannel = "notify.herald.dev/retry-channel"
	// AnnotationRetryReason, with AnnotationRetry, re-drives only the
	// deliveries whose status.reason is this one (AttemptsExhausted,
	// PermanentFailure, RecipientRejected, ProviderNotReady, Expired, ...).
	AnnotationRetryReason = "notify.herald.dev/retry-reason"
	// AnnotationCancel, with any non-empty value, cancels the
	// notification: no delivery not yet sent is sent, the fan-out stops,
	// and the notification ends Cancelled. It cannot be undone.
	AnnotationCancel = "notify.herald.dev/cancel"
)

// LabelHeraldAlert marks the Notifications Herald sends about itself
// (`herald controller --alert-namespace`) and, copied by the fan-out,
// their deliveries: they never count towards another alert.
const LabelHeraldAlert = "notify.herald.dev/herald-alert"

// Reasons of re-driven and cancelled deliveries and notifications.
const (
	// ReasonRetried is the reason of a delivery re-driven by AnnotationRetry.
	ReasonRetried = "Retried"
	// ReasonCancelled is the reason of a delivery or notification cancelled
	// by AnnotationCancel.
	ReasonCancelled = "Cancelled"
)

// RetryRecord is the last re-drive of a notification's deliveries.
type RetryRecord struct {
	// value is the AnnotationRetry value handled.
	// +kubebuilder:validation:MaxLength=256
	Value string `json:"value"`
	// time is when the deliveries were re-driven.
	Time metav1.MicroTime `json:"time"`
	// channel and reason are the filters it was given, if any.
	// +optional
	Channel Channel `json:"channel,omitempty"`
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Reason string `json:"reason,omitempty"`
	// deliveries is how many deliveries it re-drove.
	Deliveries int32 `json:"deliveries"`
}

// CancelRecord is the cancellation of a notification.
type CancelRecord struct {
	// value is the AnnotationCancel value handled.
	// +kubebuilder:validation:MaxLength=256
	Value string `json:"value"`
	// time is when the cancel was recorded: from then on no delivery of
	// the notification starts an attempt, and the fan-out creates none.
	Time metav1.MicroTime `json:"time"`
	// notCreated counts the deliveries the fan-out had not created yet
	// and never will; they count as cancelled.
	// +optional
	NotCreated int32 `json:"notCreated,omitempty"`
}

// Matches reports whether a re-drive with these filters applies to d: a
// Failed or Expired delivery of the channel and with the reason asked for,
// if any.
func (r *RetryRecord) Matches(d *ChannelDelivery) bool {
	if d.Status.Phase != DeliveryFailed && d.Status.Phase != DeliveryExpired {
		return false
	}
	if r.Channel != "" && d.Spec.Channel != r.Channel {
		return false
	}
	return r.Reason == "" || d.Status.Reason == r.Reason
}
