package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics of `herald receiver` (docs/metrics.md).
var (
	ReceiptRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_receipt_requests_total",
		Help: "Status callbacks the receiver answered, by provider API (cloud, twilio) and outcome.",
	}, []string{"api", "outcome"})

	Receipts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_receipts_total",
		Help: "Statuses carried by verified callbacks, by provider API, receipt state and what the receiver did with them.",
	}, []string{"api", "state", "result"})
)

func init() { metrics.Registry.MustRegister(ReceiptRequests, Receipts) }
