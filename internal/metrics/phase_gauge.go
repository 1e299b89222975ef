package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// phaseGauge reports deliveries by channel and phase when scraped, counted
// from the informer cache: no API calls, and always consistent with what
// `kubectl get channeldeliveries` shows.
type phaseGauge struct {
	mu     sync.Mutex
	reader client.Reader
	desc   *prometheus.Desc
}

var deliveryPhases = &phaseGauge{
	desc: prometheus.NewDesc("herald_deliveries", "ChannelDeliveries that exist now, by channel and phase.", []string{"channel", "phase"}, nil),
}

func init() { metrics.Registry.MustRegister(deliveryPhases) }

// RegisterPhaseGauge points the gauge at the manager's cache. It is
// registered once per process; a later manager (tests) replaces the reader.
func RegisterPhaseGauge(r client.Reader) {
	deliveryPhases.mu.Lock()
	defer deliveryPhases.mu.Unlock()
	deliveryPhases.reader = r
}

func (g *phaseGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *phaseGauge) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	r := g.reader
	g.mu.Unlock()
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var list notifyv1.ChannelDeliveryList
	if err := r.List(ctx, &list); err != nil {
		return
	}
	counts := map[[2]string]int{}
	for i := range list.Items {
		d := &list.Items[i]
		phase := string(d.Phase())
		if phase == "" {
			phase = string(notifyv1.DeliveryPending)
		}
		counts[[2]string{string(d.Spec.Channel), phase}]++
	}
	for k, v := range counts {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(v), k[0], k[1])
	}
}
