// Package eventrule holds the EventRule reconciler, which turns core/v1
// Events into Notifications.
package eventrule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	clientretry "k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/emit"
	"github.com/herald-dev/herald/internal/patch"
	"github.com/herald-dev/herald/internal/render"
)

// Annotations on Notifications created by an EventRule, for tracing a
// Notification back to what caused it.
const (
	AnnotationInvolvedObject = "notify.herald.dev/involved-object"
	AnnotationEventReason    = "notify.herald.dev/event-reason"
	AnnotationThrottleWindow = "notify.herald.dev/throttle-window"
)

// minEventAge is the least age at which an Event is too old to act on
// (see staleAfter).
const minEventAge = 5 * time.Minute

// EventParams are the params every Notification from an EventRule gets
// from its Event (see Reconciler).
var EventParams = []string{"reason", "message", "type", "kind", "name", "namespace", "count", "lastTimestamp"}

// Reconciler turns core/v1 Events into Notifications.
//
// It reconciles rules, not Events: a new or updated Event in a namespace
// wakes the rules of that namespace it could match, and each reconcile
// looks at the namespace's recent Events (from the cache) and creates the
// Notifications that should exist for them. A Notification's name is
// derived from (rule, involved kind/name, reason, throttle window), so
// creating it again within the window is AlreadyExists: that is the
// throttle, and it holds across restarts and concurrent replicas. (A
// repeat whose Notification is in the cache already is not even created:
// a flood of repeats costs no API writes.)
//
// Which Events were already counted is kept in memory per rule (the
// ledger), so that a burst costs one status write per reconcile and every
// Event is counted once while the controller runs. After a restart the
// ledger is rebuilt: Events whose Notification exists already are taken as
// counted.
type Reconciler struct {
	client.Client
	// APIReader reads the involved objects' labels when a rule has a
	// selector. Those objects may be of any kind, so they are read on
	// demand rather than cached (a cache would watch every kind).
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	Workers   int
	// MaxNotificationsPerMinute is the operator's ceiling on every rule's
	// budget (--eventrule-max-notifications-per-minute): a rule gets the
	// lower of it and its spec.maxNotificationsPerMinute. Not positive:
	// no ceiling beyond the API's maximum.
	MaxNotificationsPerMinute int
	// NamespaceMaxNotificationsPerMinute is the budget all rules of a
	// namespace share (--eventrule-namespace-max-notifications-per-minute),
	// on top of each rule's own. Not positive: none.
	NamespaceMaxNotificationsPerMinute int

	mu      sync.Mutex
	ledgers map[types.NamespacedName]*ruleLedger
	// budgets hold each rule's token bucket (budget.go), apart from the
	// ledgers: a spec change starts a new ledger but must not refill the
	// bucket.
	budgets map[types.NamespacedName]*budget
	// namespaces hold each namespace's shared token bucket
	// (namespace_budget.go); lastSweep is when those of namespaces
	// without rules were last looked at.
	namespaces map[string]*namespaceBudget
	lastSweep  time.Time
}

// ruleLedger remembers which Event observations a rule has handled.
type ruleLedger struct {
	uid        types.UID
	generation int64
	// rebuilt is false until the first complete pass after a start or a
	// spec change; during it Events whose Notification exists already are
	// taken as handled, not counted again.
	rebuilt bool
	// seen maps an observation (Event UID and count) to when it occurred,
	// so that entries can be dropped once their Event is stale.
	seen map[string]time.Time
	// overBudget maps a grouped rule's group window whose remaining
	// Events were counted as rate limited to how many of its Events were
	// handled by then, and which budget held it back, so that they are
	// neither counted again nor carried by a later part.
	overBudget map[groupWindowKey]overBudgetGroup
}

// overBudgetGroup is a group window given up on for the budget.
type overBudgetGroup struct {
	handled int
	by      heldBy
}

// +kubebuilder:rbac:groups=notify.herald.dev,resources=eventrules,verbs=get;list;watch
// +kubebuilder:rbac:groups=notify.herald.dev,resources=eventrules/status,verbs=patch
// +kubebuilder:rbac:groups=notify.herald.dev,resources=eventrules/finalizers,verbs=update
// +kubebuilder:rbac:groups=notify.herald.dev,resources=notifications,verbs=get;list;watch;create
// +kubebuilder:rbac:groups="",resources=events,verbs=list;watch
// +kubebuilder:rbac:groups="",resources=pods;nodes;services;persistentvolumeclaims;configmaps,verbs=get
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets;replicasets,verbs=get
// +kubebuilder:rbac:groups=batch,resources=jobs;cronjobs,verbs=get

func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var rule notifyv1.EventRule
	if err := r.Get(ctx, req.NamespacedName, &rule); err != nil {
		if apierrors.IsNotFound(err) {
			r.dropLedger(req.NamespacedName)
			r.dropBudget(req.NamespacedName, r.Clock.Now())
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	now := r.Clock.Now()
	if rule.DeletionTimestamp != nil {
		r.dropBudget(req.NamespacedName, now)
		return ctrl.Result{}, nil
	}
	b := r.budgetFor(&rule, now)

	if rule.Spec.Suspend {
		// Forget what was seen: on resume the rule starts like a new one.
		// The budget is kept, so that suspending cannot refill it.
		r.dropLedger(req.NamespacedName)
		bc, recheck := r.settle(&rule, b, tally{}, now)
		return ctrl.Result{RequeueAfter: recheck}, r.writeStatus(ctx, &rule, tally{}, metav1.ConditionFalse, notifyv1.ReasonSuspended,
			"spec.suspend is true: Events are not looked at", bc)
	}
	p, reason, err := r.prepare(ctx, &rule)
	if err != nil {
		if reason == "" {
			return ctrl.Result{}, err
		}
		// Matching Events are left unhandled: once the rule is fixed (or
		// its template appears) they are acted on if still recent.
		bc, recheck := r.settle(&rule, b, tally{}, now)
		return ctrl.Result{RequeueAfter: recheck}, r.writeStatus(ctx, &rule, tally{}, metav1.ConditionFalse, reason, err.Error(), bc)
	}

	if g := rule.Spec.Grouping; g != nil {
		t, next, scanErr := r.scanGroups(ctx, &rule, p, b, now)
		bc, recheck := r.settle(&rule, b, t, now)
		msg := fmt.Sprintf("watching Events in namespace %s; grouping by [%s], wait %s, interval %s; %s",
			rule.Namespace, strings.Join(g.By, ", "), g.Wait.Duration, g.Interval.Duration, b.limits())
		if err := r.writeStatus(ctx, &rule, t, metav1.ConditionTrue, notifyv1.ReasonWatching, msg, bc); err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{RequeueAfter: earliest(next, recheck)}, scanErr
	}
	t, scanErr := r.scan(ctx, &rule, p, b, now)
	bc, recheck := r.settle(&rule, b, t, now)
	msg := fmt.Sprintf("watching Events in namespace %s; throttle %s; %s",
		rule.Namespace, rule.Spec.Throttle.Duration, b.limits())
	if err := r.writeStatus(ctx, &rule, t, metav1.ConditionTrue, notifyv1.ReasonWatching, msg, bc); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: recheck}, scanErr
}

// earliest is the shorter of two requeue delays, zero meaning none.
func earliest(a, b time.Duration) time.Duration {
	switch {
	case a <= 0:
		return b
	case b <= 0:
		return a
	}
	return min(a, b)
}

// prepared is what a rule needs to act on Events, checked once per
// reconcile.
type prepared struct {
	selector labels.Selector // nil: no selector
	template *notifyv1.NotificationTemplate
}

// prepare checks the rule can produce valid Notifications. A returned
// reason says the problem is the rule's (shown in its Ready condition);
// without one the error is transient.
func (r *Reconciler) prepare(ctx context.Context, rule *notifyv1.EventRule) (*prepared, string, error) {
	p := &prepared{}
	if sel := rule.Spec.Match.Selector; sel != nil {
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			return nil, notifyv1.ReasonInvalidMatch, fmt.Errorf("spec.match.selector: %w", err)
		}
		p.selector = s
	}
	spec := &rule.Spec.Notification.Spec
	sample := map[string]string{}
	for _, k := range EventParams {
		sample[k] = "sample"
	}
	if rule.Spec.Grouping != nil {
		for _, k := range GroupParams {
			sample[k] = "sample"
		}
	}
	params, err := renderParams(spec.Params, sample)
	if err != nil {
		return nil, notifyv1.ReasonTemplateInvalid, err
	}
	if ref := spec.TemplateRef; ref != nil {
		var t notifyv1.NotificationTemplate
		if err := r.Get(ctx, client.ObjectKey{Namespace: rule.Namespace, Name: ref.Name}, &t); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, notifyv1.ReasonTemplateNotFound, fmt.Errorf("NotificationTemplate %q not found in namespace %s; matching Events wait for it", ref.Name, rule.Namespace)
			}
			return nil, "", fmt.Errorf("reading template %s: %w", ref.Name, err)
		}
		if err := render.Check(&t.Spec); err != nil {
			return nil, notifyv1.ReasonTemplateInvalid, fmt.Errorf("NotificationTemplate %q: %w", ref.Name, err)
		}
		// The params every Notification will carry must satisfy the
		// template, or each one would fail to dispatch.
		if _, err := render.Params(t.Spec.Params, withEventParams(params, sample, t.Spec.Params)); err != nil {
			return nil, notifyv1.ReasonInvalidParams, fmt.Errorf("NotificationTemplate %q: %w (the event fields %v are supplied when the template declares them)", ref.Name, err, EventParams)
		}
		p.template = &t
		return p, "", nil
	}
	all := merge(sample, params)
	for field, src := range map[string]string{"title": spec.Title, "message": spec.Message} {
		if _, err := render.Text(field, src, all); err != nil {
			return nil, notifyv1.ReasonTemplateInvalid, fmt.Errorf("spec.notification.spec.%w", err)
		}
	}
	return p, "", nil
}

// tally is what one reconcile adds to a rule's counts.
type tally struct {
	matched, emitted, throttled, grouped int64
	// rateLimited counts Events that made no Notification because the
	// budget was spent; postponed counts grouped Notifications that were
	// due but wait for the budget.
	rateLimited int64
	postponed   int
	// namespaceRateLimited and namespacePostponed are the parts of
	// rateLimited and postponed that the namespace's budget held back
	// (the rest the rule's own did).
	namespaceRateLimited int64
	namespacePostponed   int
	lastEmit             time.Time
}

// limit counts events that make no Notification because of budget by.
func (t *tally) limit(by heldBy, events int64) {
	t.rateLimited += events
	if by == heldByNamespace {
		t.namespaceRateLimited += events
	}
}

// postpone counts a grouped Notification that waits for budget by.
func (t *tally) postpone(by heldBy) {
	t.postponed++
	if by == heldByNamespace {
		t.namespacePostponed++
	}
}

// scan acts on the namespace's recent Events that the rule has not
// handled yet. It returns what it counted even when it stops early on an
// error, so that the counts are recorded before the retry.
func (r *Reconciler) scan(ctx context.Context, rule *notifyv1.EventRule, p *prepared, b *budget, now time.Time) (tally, error) {
	var t tally
	// Every matching Event wakes this scan, so the Events are read as the
	// cache holds them, without copies; nothing here writes to them.
	var list corev1.EventList
	if err := r.List(ctx, &list, client.InNamespace(rule.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return t, fmt.Errorf("listing events: %w", err)
	}
	stale := staleAfter(rule)
	recent := list.Items[:0]
	for i := range list.Items {
		if e := &list.Items[i]; !isHeraldEvent(e) && now.Sub(occurrence(e)) <= stale {
			recent = append(recent, *e)
		}
	}
	// Oldest first, so that counts and Notifications follow the order
	// things happened in.
	sort.SliceStable(recent, func(i, j int) bool {
		return occurrence(&recent[i]).Before(occurrence(&recent[j]))
	})
	ledger := r.ledger(rule)
	involved := map[string]labels.Set{}
	created := map[string]bool{}
	for i := range recent {
		e := &recent[i]
		occ := occurrence(e)
		key := observation(e)
		if _, ok := ledger.seen[key]; ok {
			continue
		}
		if !quickMatch(&rule.Spec.Match, e) {
			ledger.seen[key] = occ
			continue
		}
		if p.selector != nil {
			set, err := r.involvedLabels(ctx, rule, e, involved)
			if err != nil {
				return t, err
			}
			if !p.selector.Matches(set) {
				ledger.seen[key] = occ
				continue
			}
		}
		n, err := r.notificationFor(rule, p.template, e, occ)
		if err != nil {
			// The rendered content breaks the Notification's limits or
			// rules; trying again cannot help.
			t.matched++
			ledger.seen[key] = occ
			r.Recorder.Eventf(rule, nil, "Warning", notifyv1.ReasonInvalidContent, "Emit", "cannot make a Notification for %s/%s %s: %v",
				e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, err)
			continue
		}
		if !ledger.rebuilt && !created[n.Name] {
			var existing notifyv1.Notification
			if err := r.Get(ctx, client.ObjectKeyFromObject(n), &existing); err == nil {
				ledger.seen[key] = occ // handled before a restart
				continue
			}
		}
		// A repeat whose window has its Notification (in the cache) is
		// throttled without a create, and takes nothing from the budget.
		exists, err := r.notificationExists(ctx, n, created)
		if err != nil {
			return t, err
		}
		if exists {
			t.matched++
			t.throttled++
			ledger.seen[key] = occ
			continue
		}
		refund, by := b.draw(now)
		if by != heldByNone {
			t.matched++
			t.limit(by, 1)
			ledger.seen[key] = occ
			continue
		}
		err = r.Create(ctx, n)
		switch {
		case err == nil:
			t.emitted++
			t.lastEmit = now
			created[n.Name] = true
			r.Recorder.Eventf(rule, n, "Normal", notifyv1.ReasonEmitted, "Emit", "created Notification %s for %s/%s %s",
				n.Name, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason)
		case apierrors.IsAlreadyExists(err):
			refund()
			t.throttled++
		case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
			refund()
			r.Recorder.Eventf(rule, nil, "Warning", notifyv1.ReasonInvalidContent, "Emit", "the Notification for %s/%s %s was rejected: %v",
				e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, err)
		default:
			refund()
			return t, fmt.Errorf("creating notification %s: %w", n.Name, err)
		}
		t.matched++
		ledger.seen[key] = occ
	}
	ledger.rebuilt = true
	for k, occ := range ledger.seen {
		if now.Sub(occ) > stale {
			delete(ledger.seen, k)
		}
	}
	return t, nil
}

// notificationExists reports whether n exists already: made in this pass
// (created) or found in the cache.
func (r *Reconciler) notificationExists(ctx context.Context, n *notifyv1.Notification, created map[string]bool) (bool, error) {
	if created[n.Name] {
		return true, nil
	}
	var existing notifyv1.Notification
	switch err := r.Get(ctx, client.ObjectKeyFromObject(n), &existing); {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("reading notification %s: %w", n.Name, err)
	}
}

// staleAfter is the age beyond which an Event is ignored: the longer of the
// throttle window and five minutes. Without it a restart, which replays
// every Event still stored (an hour by default), would notify again for
// problems long past whose Notifications were already deleted.
func staleAfter(rule *notifyv1.EventRule) time.Duration {
	return max(rule.Spec.Throttle.Duration, minEventAge)
}

// isHeraldEvent reports whether an Event is about one of Herald's own
// objects. Those are never matched: a rule matching them would react to
// the Events its own Notifications cause, without end.
func isHeraldEvent(e *corev1.Event) bool {
	gv, err := schema.ParseGroupVersion(e.InvolvedObject.APIVersion)
	return err == nil && gv.Group == notifyv1.GroupVersion.Group
}

// quickMatch checks the parts of a match that need only the Event.
func quickMatch(m *notifyv1.EventMatch, e *corev1.Event) bool {
	return (len(m.Types) == 0 || slices.Contains(m.Types, e.Type)) &&
		(len(m.Reasons) == 0 || slices.Contains(m.Reasons, e.Reason)) &&
		(len(m.InvolvedKinds) == 0 || slices.Contains(m.InvolvedKinds, e.InvolvedObject.Kind))
}

// involvedLabels reads the labels of an Event's involved object, once per
// reconcile per object. An object that is gone, or that Herald may not
// read, has no labels.
func (r *Reconciler) involvedLabels(ctx context.Context, rule *notifyv1.EventRule, e *corev1.Event, memo map[string]labels.Set) (labels.Set, error) {
	ref := e.InvolvedObject
	id := ref.APIVersion + "/" + ref.Kind + "/" + ref.Namespace + "/" + ref.Name
	if set, ok := memo[id]; ok {
		return set, nil
	}
	if ref.APIVersion == "" || ref.Kind == "" {
		memo[id] = nil
		return nil, nil
	}
	obj := &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(schema.FromAPIVersionAndKind(ref.APIVersion, ref.Kind))
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, obj)
	switch {
	case err == nil:
		memo[id] = labels.Set(obj.Labels)
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
		memo[id] = nil
	case apierrors.IsForbidden(err):
		// Retrying cannot help, and waiting would hold back every later
		// Event: the object counts as unlabelled, and the rule says why.
		memo[id] = nil
		r.Recorder.Eventf(rule, nil, "Warning", notifyv1.ReasonSelectorUnreadable, "Match",
			"cannot read the labels of %s %s/%s for spec.match.selector: %v; grant Herald get on %s", ref.Kind, ref.Namespace, ref.Name, err, ref.Kind)
	default:
		return nil, fmt.Errorf("reading the labels of %s %s/%s: %w", ref.Kind, ref.Namespace, ref.Name, err)
	}
	return memo[id], nil
}

// occurrence is when an Event last happened, whichever API wrote it.
func occurrence(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

func eventCount(e *corev1.Event) int32 {
	switch {
	case e.Series != nil && e.Series.Count > 0:
		return e.Series.Count
	case e.Count > 0:
		return e.Count
	}
	return 1
}

// observation identifies one occurrence of an Event: a repeated Event is
// the same object with a higher count.
func observation(e *corev1.Event) string {
	return string(e.UID) + "/" + strconv.Itoa(int(eventCount(e)))
}

// ThrottleWindow is the start of the window an occurrence falls in:
// windows are throttle long and aligned to the Unix epoch, so every
// replica and every restart computes the same one. A throttle of zero
// gives one window per second.
func ThrottleWindow(occurred time.Time, throttle time.Duration) time.Time {
	if throttle <= 0 {
		throttle = time.Second
	}
	return occurred.Truncate(throttle).UTC()
}

// EventNotificationName is the deterministic name of a rule's Notification
// for an involved object and reason in one throttle window:
// <rule>-<hash of kind/name/reason>-<window start, Unix seconds>.
func EventNotificationName(rule, kind, name, reason string, window time.Time) string {
	sum := sha256.Sum256([]byte(kind + "/" + name + "/" + reason))
	return notifyv1.FitName(fmt.Sprintf("%s-%s-%d", rule, hex.EncodeToString(sum[:])[:10], window.Unix()), 253)
}

// eventFields are the params an Event supplies.
func eventFields(e *corev1.Event, occurred time.Time) map[string]string {
	return map[string]string{
		"reason":        e.Reason,
		"message":       e.Message,
		"type":          e.Type,
		"kind":          e.InvolvedObject.Kind,
		"name":          e.InvolvedObject.Name,
		"namespace":     e.InvolvedObject.Namespace,
		"count":         strconv.Itoa(int(eventCount(e))),
		"lastTimestamp": occurred.UTC().Format(time.RFC3339),
	}
}

// notificationFor renders the rule's Notification for an Event:
//   - the rule's params are themselves templates over the event fields
//     ({{ .name }} etc.), so a template with other param names can be fed;
//   - with a templateRef, each event field the template declares and the
//     rule's params do not set is added as a param (a template rejects
//     params it does not declare);
//   - without one, title and message are rendered with the event fields
//     and the rule's params (which win on a clash).
func (r *Reconciler) notificationFor(rule *notifyv1.EventRule, tmpl *notifyv1.NotificationTemplate, e *corev1.Event, occurred time.Time) (*notifyv1.Notification, error) {
	spec, err := renderSpec(rule, tmpl, eventFields(e, occurred), "")
	if err != nil {
		return nil, err
	}
	window := ThrottleWindow(occurred, rule.Spec.Throttle.Duration)
	// Owned by the rule: deleting the rule deletes its Notifications.
	n, err := emit.OwnedNotification(rule, r.Scheme(), EventNotificationName(rule.Name, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, window),
		rule.Spec.Notification.Metadata, *spec)
	if err != nil {
		return nil, err
	}
	n.Labels[notifyv1.LabelEventRule] = notifyv1.LabelValue(rule.Name)
	n.Annotations[AnnotationInvolvedObject] = e.InvolvedObject.Kind + "/" + e.InvolvedObject.Name
	n.Annotations[AnnotationEventReason] = e.Reason
	n.Annotations[AnnotationThrottleWindow] = window.Format(time.RFC3339)
	return n, nil
}

// renderSpec renders the rule's Notification spec with fields; suffix,
// when set, is appended to a message the rule writes itself (not to a
// template's).
func renderSpec(rule *notifyv1.EventRule, tmpl *notifyv1.NotificationTemplate, fields map[string]string, suffix string) (*notifyv1.NotificationSpec, error) {
	spec := rule.Spec.Notification.Spec.DeepCopy()
	params, err := renderParams(spec.Params, fields)
	if err != nil {
		return nil, err
	}
	if tmpl != nil {
		params = withEventParams(params, fields, tmpl.Spec.Params)
	} else {
		all := merge(fields, params)
		if spec.Title, err = render.Text("title", spec.Title, all); err != nil {
			return nil, err
		}
		if spec.Message, err = render.Text("message", spec.Message, all); err != nil {
			return nil, err
		}
		if spec.Message == "" {
			return nil, errors.New("the message renders empty")
		}
		if suffix != "" {
			spec.Message += "\n\n" + suffix
		}
		spec.Title = notifyv1.FitText(spec.Title, 256)
		spec.Message = notifyv1.FitText(spec.Message, 16384)
	}
	spec.Params = nil
	if len(params) > 0 {
		spec.Params = params
	}
	return spec, nil
}

func renderParams(given, fields map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(given))
	for k, v := range given {
		s, err := render.Text("params."+k, v, fields)
		if err != nil {
			return nil, err
		}
		out[k] = s
	}
	return out, nil
}

// withEventParams adds the event fields the template declares and params
// leaves unset.
func withEventParams(params, fields map[string]string, declared []notifyv1.TemplateParam) map[string]string {
	out := merge(params, nil)
	for _, p := range declared {
		if _, set := out[p.Name]; set {
			continue
		}
		if v, ok := fields[p.Name]; ok {
			out[p.Name] = v
		}
	}
	return out
}

// merge returns a copy of base with over's entries on top.
func merge(base, over map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

func (r *Reconciler) ledger(rule *notifyv1.EventRule) *ruleLedger {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ledgers == nil {
		r.ledgers = map[types.NamespacedName]*ruleLedger{}
	}
	key := client.ObjectKeyFromObject(rule)
	l := r.ledgers[key]
	// A new rule of the same name or a changed spec starts over: Events
	// that did not match before may match now.
	if l == nil || l.uid != rule.UID || l.generation != rule.Generation {
		l = &ruleLedger{uid: rule.UID, generation: rule.Generation, seen: map[string]time.Time{}, overBudget: map[groupWindowKey]overBudgetGroup{}}
		r.ledgers[key] = l
	}
	return l
}

func (r *Reconciler) dropLedger(key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.ledgers, key)
}

// writeStatus adds t to the rule's counts and sets Ready and RateLimited. The counts are
// sums, so the write is conditional on the version read; on a conflict the
// rule is read again from the API server (the cache may lag behind the
// previous write) and the same tally is added to it, so no count is lost
// or doubled.
func (r *Reconciler) writeStatus(ctx context.Context, rule *notifyv1.EventRule, t tally, status metav1.ConditionStatus, reason, msg string, bc budgetCondition) error {
	key := client.ObjectKeyFromObject(rule)
	first := true
	return clientretry.RetryOnConflict(clientretry.DefaultRetry, func() error {
		if !first {
			fresh := &notifyv1.EventRule{}
			if err := r.APIReader.Get(ctx, key, fresh); err != nil {
				return err
			}
			*rule = *fresh
		}
		first = false
		patcher := patch.NewHelper(rule, r.Client, patch.ControllerFieldOwner)
		st := &rule.Status
		st.Matched += t.matched
		st.Emitted += t.emitted
		st.Throttled += t.throttled
		st.Grouped += t.grouped
		st.RateLimited += t.rateLimited
		if !t.lastEmit.IsZero() {
			st.LastEmitTime = &metav1.Time{Time: t.lastEmit}
		}
		st.ObservedGeneration = rule.Generation
		notifyv1.SetCondition(rule, notifyv1.ConditionReady, status, reason, msg)
		notifyv1.SetCondition(rule, notifyv1.ConditionRateLimited, bc.status, bc.reason, bc.message)
		_, err := patcher.Patch(ctx, rule, patch.WithOptimisticLock())
		return err
	})
}

// rulesForEvent maps an Event to the rules of its namespace that could
// match it. Events of namespaces without rules cost a cache lookup.
func (r *Reconciler) rulesForEvent(ctx context.Context, o client.Object) []reconcile.Request {
	e, ok := o.(*corev1.Event)
	if !ok || isHeraldEvent(e) {
		return nil
	}
	var rules notifyv1.EventRuleList
	if err := r.List(ctx, &rules, client.InNamespace(e.Namespace)); err != nil {
		log.FromContext(ctx).Error(err, "listing event rules", "namespace", e.Namespace)
		return nil
	}
	var out []reconcile.Request
	for i := range rules.Items {
		rule := &rules.Items[i]
		if !rule.Spec.Suspend && quickMatch(&rule.Spec.Match, e) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(rule)})
		}
	}
	return out
}

// rulesForTemplate maps a NotificationTemplate to the rules that use it:
// its arrival or fix releases the Events they hold back.
func (r *Reconciler) rulesForTemplate(ctx context.Context, o client.Object) []reconcile.Request {
	var rules notifyv1.EventRuleList
	if err := r.List(ctx, &rules, client.InNamespace(o.GetNamespace())); err != nil {
		log.FromContext(ctx).Error(err, "listing event rules", "namespace", o.GetNamespace())
		return nil
	}
	var out []reconcile.Request
	for i := range rules.Items {
		if ref := rules.Items[i].Spec.Notification.Spec.TemplateRef; ref != nil && ref.Name == o.GetName() {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&rules.Items[i])})
		}
	}
	return out
}

// SetupWithManager watches rules' specs, Events (cluster-wide in the
// manager's cache; deletions are of no interest) and templates.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	occurrences := predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return true },
		UpdateFunc:  func(event.UpdateEvent) bool { return true },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&notifyv1.EventRule{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Event{}, handler.EnqueueRequestsFromMapFunc(r.rulesForEvent), builder.WithPredicates(occurrences)).
		Watches(&notifyv1.NotificationTemplate{}, handler.EnqueueRequestsFromMapFunc(r.rulesForTemplate),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, r.Workers)}).
		Complete(r)
}

// TrimEvent is the cache transform of Events: it keeps what EventRules match and render: the event's identity,
// type, reason, message, involved object, count and times. The reporting
// fields, related object, labels and annotations are dropped.
func TrimEvent(obj any) (any, error) {
	e, ok := obj.(*corev1.Event)
	if !ok {
		return obj, nil
	}
	e.ManagedFields, e.Labels, e.Annotations, e.OwnerReferences = nil, nil, nil, nil
	e.Source, e.Action, e.Related = corev1.EventSource{}, "", nil
	e.ReportingController, e.ReportingInstance = "", ""
	return e, nil
}
