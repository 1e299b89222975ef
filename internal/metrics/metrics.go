// Package metrics holds the Prometheus metrics of Herald's controllers.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics live in controller-runtime's registry, so they are served on the
// manager's metrics endpoint next to the workqueue and client metrics.
// docs/metrics.md describes each one.
var (
	DeliveriesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_deliveries_total",
		Help: "Deliveries that reached a terminal phase, by channel and phase.",
	}, []string{"channel", "phase"})

	AttemptDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "herald_delivery_attempt_duration_seconds",
		Help:    "Duration of one delivery attempt (the send itself), by channel.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
	}, []string{"channel"})

	DeliveryLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "herald_delivery_latency_seconds",
		Help:    "Time from a delivery's creation to its success, by channel.",
		Buckets: prometheus.ExponentialBuckets(0.01, 3, 12),
	}, []string{"channel"})

	Retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_delivery_retries_total",
		Help: "Failed attempts that were scheduled for another try, by channel and reason.",
	}, []string{"channel", "reason"})

	RateLimitWaits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_delivery_rate_limit_waits_total",
		Help: "Times a delivery was held back by its provider's rate limit, by channel.",
	}, []string{"channel"})

	NotificationsFinished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_notifications_finished_total",
		Help: "Notifications that finished, by phase.",
	}, []string{"phase"})
)

func init() {
	metrics.Registry.MustRegister(DeliveriesTotal, AttemptDuration, DeliveryLatency, Retries, RateLimitWaits, NotificationsFinished)
}
