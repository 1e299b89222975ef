package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// Metrics for alerting on Herald's health (config/prometheus/alerts.yaml,
// docs/operations.md "Day 2").

// ProviderAttempts counts delivery attempts per provider and outcome, so
// that a failure rate can be computed per provider and per channel.
var ProviderAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "herald_provider_attempts_total",
	Help: "Delivery attempts by channel, provider (namespace and name) and outcome (Succeeded or Failed).",
}, []string{"channel", "provider_namespace", "provider", "outcome"})

// OverdueAfter is how long past its due time an unfinished delivery that
// is not waiting for a provider counts as overdue: longer means the
// controller is not keeping up (or a delivery is stuck).
const OverdueAfter = time.Minute

// healthGauges report, when scraped, from the informer cache: providers
// that are not Ready or tripped, notifications by phase and the oldest one
// still dispatching, and deliveries waiting past their due time or
// deadline.
type healthGauges struct {
	mu     sync.Mutex
	reader client.Reader
	clock  clock.PassiveClock

	notifications, oldestDispatching, providerReady, providerTripped, overdue *prometheus.Desc
}

var health = &healthGauges{
	notifications: prometheus.NewDesc("herald_notifications", "Notifications that exist now, by phase.", []string{"phase"}, nil),
	oldestDispatching: prometheus.NewDesc("herald_notification_dispatching_oldest_seconds",
		"Age of the oldest Notification still in Dispatching (since it was dispatched), 0 when none is.", nil, nil),
	providerReady: prometheus.NewDesc("herald_provider_ready",
		"1 when the NotificationProvider's Ready condition is True, else 0.", []string{"provider_namespace", "provider", "channel"}, nil),
	providerTripped: prometheus.NewDesc("herald_provider_tripped",
		"1 while the provider's circuit is open (Ready False, reason DeliveriesRejected), else 0.", []string{"provider_namespace", "provider", "channel"}, nil),
	overdue: prometheus.NewDesc("herald_deliveries_overdue",
		"Unfinished deliveries more than a minute past their next attempt (and not waiting for a provider), or past their expiresAt, by channel.", []string{"channel"}, nil),
}

func init() { metrics.Registry.MustRegister(ProviderAttempts, health) }

// RegisterHealth points the health gauges at the manager's cache and
// clock. A later manager (tests) replaces them.
func RegisterHealth(r client.Reader, clk clock.PassiveClock) {
	health.mu.Lock()
	defer health.mu.Unlock()
	health.reader, health.clock = r, clk
}

func (g *healthGauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{g.notifications, g.oldestDispatching, g.providerReady, g.providerTripped, g.overdue} {
		ch <- d
	}
}

func (g *healthGauges) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	r, clk := g.reader, g.clock
	g.mu.Unlock()
	if r == nil || clk == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := clk.Now()

	var providers notifyv1.NotificationProviderList
	if err := r.List(ctx, &providers, client.UnsafeDisableDeepCopy); err == nil {
		for i := range providers.Items {
			p := &providers.Items[i]
			ready, tripped := 0.0, 0.0
			if c := meta.FindStatusCondition(p.Status.Conditions, notifyv1.ConditionReady); c != nil {
				if c.Status == "True" {
					ready = 1
				} else if c.Reason == notifyv1.ReasonProviderRejected {
					tripped = 1
				}
			}
			ch <- prometheus.MustNewConstMetric(g.providerReady, prometheus.GaugeValue, ready, p.Namespace, p.Name, string(p.Spec.Channel))
			ch <- prometheus.MustNewConstMetric(g.providerTripped, prometheus.GaugeValue, tripped, p.Namespace, p.Name, string(p.Spec.Channel))
		}
	}

	var notifications notifyv1.NotificationList
	if err := r.List(ctx, &notifications, client.UnsafeDisableDeepCopy); err == nil {
		phases := map[string]int{}
		var oldest time.Duration
		for i := range notifications.Items {
			n := &notifications.Items[i]
			phase := string(n.Status.Phase)
			if phase == "" {
				phase = string(notifyv1.NotificationPending)
			}
			phases[phase]++
			if n.Status.Phase == notifyv1.NotificationDispatching {
				since := n.CreationTimestamp.Time
				if n.Status.DispatchTime != nil {
					since = n.Status.DispatchTime.Time
				}
				oldest = max(oldest, now.Sub(since))
			}
		}
		for p, v := range phases {
			ch <- prometheus.MustNewConstMetric(g.notifications, prometheus.GaugeValue, float64(v), p)
		}
		ch <- prometheus.MustNewConstMetric(g.oldestDispatching, prometheus.GaugeValue, oldest.Seconds())
	}

	var deliveries notifyv1.ChannelDeliveryList
	if err := r.List(ctx, &deliveries, client.UnsafeDisableDeepCopy); err == nil {
		overdue := map[string]int{}
		for _, ch := range notifyv1.Channels {
			overdue[string(ch)] = 0
		}
		for i := range deliveries.Items {
			if Overdue(&deliveries.Items[i], now) {
				overdue[string(deliveries.Items[i].Spec.Channel)]++
			}
		}
		for c, v := range overdue {
			ch <- prometheus.MustNewConstMetric(g.overdue, prometheus.GaugeValue, float64(v), c)
		}
	}
}

// Overdue reports whether d, unfinished, is more than OverdueAfter past
// when it was due (its next attempt, its notBefore, or its creation) while
// not waiting for a provider or in an attempt, or is past its deadline.
func Overdue(d *notifyv1.ChannelDelivery, now time.Time) bool {
	s := &d.Status
	if d.Phase().Finished() {
		return false
	}
	deadline := d.Spec.ExpiresAt
	if s.ExpiresAt != nil {
		deadline = s.ExpiresAt
	}
	if deadline != nil && now.Sub(deadline.Time) > OverdueAfter {
		return true
	}
	if s.Phase == notifyv1.DeliverySending || s.Reason == notifyv1.ReasonWaitingForProvider {
		return false
	}
	due := d.CreationTimestamp.Time
	if d.Spec.NotBefore != nil && d.Spec.NotBefore.After(due) {
		due = d.Spec.NotBefore.Time
	}
	if s.NextAttemptTime != nil {
		due = s.NextAttemptTime.Time
	}
	return now.Sub(due) > OverdueAfter
}
