// Package selfalert lets Herald tell its operators, through Herald itself,
// when a provider trips or when deliveries fail in numbers: an optional
// runnable of `herald controller` (--alert-namespace). Alerts are ordinary
// Notifications in the operators' namespace, labelled LabelAlert; they are
// throttled by their names (one per cause per window, which holds across
// restarts and replicas), and never about themselves: their deliveries do
// not count as failures, and the providers of the alert namespace, which
// carry the alerts, are left to the Prometheus alerts (config/prometheus).
package selfalert

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/pkg/notify"
)

// LabelAlert marks Herald's own alert Notifications; the fan-out copies
// it to their deliveries.
const LabelAlert = notifyv1.LabelHeraldAlert

// Options configure the alerts; Namespace empty turns them off.
type Options struct {
	// Namespace holds the operators' Recipients and the alerts.
	Namespace string
	// Roles are the audience: Recipients with any of them.
	Roles []string
	// Channels the alerts go out on.
	Channels []string
	// FailureThreshold is how many deliveries must fail within Window for
	// a failure alert.
	FailureThreshold int
	// Window is the throttle: at most one alert per cause per Window, and
	// the period failures are counted over.
	Window time.Duration
	// CheckInterval is how often providers and failures are looked at.
	CheckInterval time.Duration
}

// DefaultOptions are off, with the settings alerts get when turned on.
func DefaultOptions() Options {
	return Options{
		Roles:            []string{"herald-operators"},
		Channels:         []string{string(notifyv1.ChannelInApp), string(notifyv1.ChannelEmail)},
		FailureThreshold: 50,
		Window:           15 * time.Minute,
		CheckInterval:    30 * time.Second,
	}
}

// AddFlags binds the options to flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Namespace, "alert-namespace", o.Namespace, "Namespace of the Recipients Herald alerts, through Herald, when a provider trips or deliveries fail in numbers; empty turns these alerts off.")
	fs.StringSliceVar(&o.Roles, "alert-roles", o.Roles, "Roles of the Recipients in --alert-namespace who get Herald's alerts.")
	fs.StringSliceVar(&o.Channels, "alert-channels", o.Channels, "Channels of Herald's alerts.")
	fs.IntVar(&o.FailureThreshold, "alert-failure-threshold", o.FailureThreshold, "Failed deliveries within --alert-window that trigger an alert.")
	fs.DurationVar(&o.Window, "alert-window", o.Window, "At most one alert per cause (a provider, failures) per window; failures are counted over it.")
}

// Validate checks the options when alerts are on.
func (o *Options) Validate() error {
	if o.Namespace == "" {
		return nil
	}
	if len(o.Roles) == 0 || len(o.Channels) == 0 {
		return fmt.Errorf("--alert-roles and --alert-channels must not be empty when --alert-namespace is set")
	}
	for _, c := range o.Channels {
		if !slices.Contains(notifyv1.Channels, notifyv1.Channel(c)) {
			return fmt.Errorf("--alert-channels: unknown channel %q", c)
		}
	}
	if o.FailureThreshold < 1 || o.Window <= 0 || o.CheckInterval <= 0 {
		return fmt.Errorf("--alert-failure-threshold must be at least 1 and --alert-window positive")
	}
	return nil
}

// Alerter looks at providers and failed deliveries every CheckInterval and
// sends alerts. It runs on the leader only (a manager Runnable).
type Alerter struct {
	Client  client.Client // the manager's: reads from the cache
	Options Options
	Clock   clock.PassiveClock
}

// Start runs until ctx ends.
func (a *Alerter) Start(ctx context.Context) error {
	t := time.NewTicker(a.Options.CheckInterval)
	defer t.Stop()
	for {
		if err := a.Check(ctx); err != nil {
			log.FromContext(ctx).Error(err, "herald alerts")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Check sends the alerts that are due now.
func (a *Alerter) Check(ctx context.Context) error {
	now := a.Clock.Now()
	bucket := now.Truncate(a.Options.Window)
	var errs []string
	var providers notifyv1.NotificationProviderList
	if err := a.Client.List(ctx, &providers); err != nil {
		return fmt.Errorf("listing providers: %w", err)
	}
	for i := range providers.Items {
		p := &providers.Items[i]
		c := meta.FindStatusCondition(p.Status.Conditions, notifyv1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != notifyv1.ReasonProviderRejected || p.Namespace == a.Options.Namespace {
			continue
		}
		key := fmt.Sprintf("herald-alert/provider-tripped/%s/%s/%d", p.Namespace, p.Name, bucket.Unix())
		title := fmt.Sprintf("Herald: provider %s/%s (%s) tripped", p.Namespace, p.Name, p.Spec.Channel)
		msg := fmt.Sprintf("The %s provider %s in namespace %s rejected deliveries for a provider reason; its deliveries wait or use a fallback. %s",
			p.Spec.Channel, p.Name, p.Namespace, c.Message)
		if err := a.send(ctx, key, notifyv1.TypeCritical, title, msg); err != nil {
			errs = append(errs, err.Error())
		}
	}
	failed, byNamespace, err := a.recentFailures(ctx, now)
	if err != nil {
		errs = append(errs, err.Error())
	} else if failed >= a.Options.FailureThreshold {
		key := fmt.Sprintf("herald-alert/failures/%d", bucket.Unix())
		title := fmt.Sprintf("Herald: %d deliveries failed in the last %s", failed, a.Options.Window)
		msg := fmt.Sprintf("%d deliveries failed in the last %s (threshold %d): %s. `kubectl herald status NAME` shows why; `kubectl herald retry NAME` re-drives them.",
			failed, a.Options.Window, a.Options.FailureThreshold, byNamespace)
		if err := a.send(ctx, key, notifyv1.TypeWarning, title, msg); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// recentFailures counts the deliveries that ended Failed within the window,
// other than alerts' own, and says which namespaces had the most.
func (a *Alerter) recentFailures(ctx context.Context, now time.Time) (int, string, error) {
	var list notifyv1.ChannelDeliveryList
	if err := a.Client.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return 0, "", fmt.Errorf("listing deliveries: %w", err)
	}
	since := now.Add(-a.Options.Window)
	perNamespace := map[string]int{}
	total := 0
	for i := range list.Items {
		d := &list.Items[i]
		if d.Status.Phase != notifyv1.DeliveryFailed || d.Labels[LabelAlert] == "true" ||
			d.Status.CompletionTime == nil || d.Status.CompletionTime.Time.Before(since) {
			continue
		}
		total++
		perNamespace[d.Namespace]++
	}
	namespaces := make([]string, 0, len(perNamespace))
	for ns := range perNamespace {
		namespaces = append(namespaces, ns)
	}
	sort.Slice(namespaces, func(i, j int) bool {
		if perNamespace[namespaces[i]] != perNamespace[namespaces[j]] {
			return perNamespace[namespaces[i]] > perNamespace[namespaces[j]]
		}
		return namespaces[i] < namespaces[j]
	})
	var parts []string
	for i, ns := range namespaces {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("and %d more namespaces", len(namespaces)-i))
			break
		}
		parts = append(parts, fmt.Sprintf("%s: %d", ns, perNamespace[ns]))
	}
	return total, strings.Join(parts, ", "), nil
}

// send creates the alert unless one with its key exists: the key names the
// cause and the window, which is the throttle.
func (a *Alerter) send(ctx context.Context, key string, typ notifyv1.NotificationType, title, msg string) error {
	b := notify.New(a.Options.Namespace, key).
		ToRoles(a.Options.Roles...).
		Type(typ).
		Category("herald-alerts").
		Title(notifyv1.FitText(title, 200)).
		Message(notifyv1.FitText(msg, 2000)).
		Label(LabelAlert, "true")
	for _, c := range a.Options.Channels {
		b.On(notifyv1.Channel(c))
	}
	if _, err := b.Send(ctx, a.Client); err != nil {
		return fmt.Errorf("sending alert %q: %w", key, err)
	}
	return nil
}
