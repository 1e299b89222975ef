package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// The process's client towards kube-apiserver (internal/apflimit).
var (
	KubeAPIClientQPS = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "herald_kube_api_client_qps",
		Help: "Client-side rate limit towards the Kubernetes API server, in queries per second: the adaptive limiter's current rate, or --kube-api-qps when fixed; 0 means no client-side limit.",
	})

	KubeAPIThrottled = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "herald_kube_api_throttled_total",
		Help: "429 Too Many Requests answers from the Kubernetes API server (priority and fairness queues full), every attempt counted.",
	})
)

func init() {
	metrics.Registry.MustRegister(KubeAPIClientQPS, KubeAPIThrottled)
}
