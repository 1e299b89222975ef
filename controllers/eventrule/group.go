package eventrule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/emit"
)

// GroupParams are the params a grouped Notification gets besides the
// EventParams of its group's first Event.
var GroupParams = []string{"groupCount", "groupObjects", "groupKey"}

// Annotations on grouped Notifications.
const (
	AnnotationGroupKey    = "notify.herald.dev/group-key"
	AnnotationGroupWindow = "notify.herald.dev/group-window"
	AnnotationGroupCount  = "notify.herald.dev/group-count"
	AnnotationGroupPart   = "notify.herald.dev/group-part"
)

// maxGroupObjects bounds the objects a grouped Notification lists; the
// count covers them all. maxGroupParts bounds the Notifications of one
// group in one window.
const (
	maxGroupObjects = 20
	maxGroupParts   = 5
)

// groupedEvent is one matching Event and when it occurred.
type groupedEvent struct {
	e   *corev1.Event
	occ time.Time
}

// groupWindowKey is one group in one window.
type groupWindowKey struct {
	key    string
	window time.Time
}

// GroupKey is the value of an Event's group: the keys of by, with their
// values, in order. objLabels are the involved object's labels (nil when
// no key needs them or the object has none).
func GroupKey(by []string, e *corev1.Event, objLabels labels.Set) string {
	parts := make([]string, 0, len(by))
	for _, k := range by {
		var v string
		switch {
		case k == "reason":
			v = e.Reason
		case k == "type":
			v = e.Type
		case k == "kind":
			v = e.InvolvedObject.Kind
		case k == "name":
			v = e.InvolvedObject.Name
		case k == "namespace":
			v = e.InvolvedObject.Namespace
		case strings.HasPrefix(k, "label:"):
			v = objLabels[strings.TrimPrefix(k, "label:")]
		}
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

// needsLabels reports whether a grouping key reads the involved object's
// labels.
func needsLabels(by []string) bool {
	for _, k := range by {
		if strings.HasPrefix(k, "label:") {
			return true
		}
	}
	return false
}

// GroupWindow is the start of the interval an occurrence falls in,
// aligned to the Unix epoch like ThrottleWindow.
func GroupWindow(occurred time.Time, interval time.Duration) time.Time {
	return ThrottleWindow(occurred, interval)
}

// GroupNotificationName is the deterministic name of part (1-based) of a
// group's Notifications in the window starting at window.
func GroupNotificationName(rule, key string, window time.Time, part int) string {
	sum := sha256.Sum256([]byte(key))
	return notifyv1.FitName(fmt.Sprintf("%s-g%s-%d-%d", rule, hex.EncodeToString(sum[:])[:10], window.Unix(), part), 253)
}

// groupStaleAfter keeps Events long enough for every part of their window
// to be made.
func groupStaleAfter(g *notifyv1.EventGrouping) time.Duration {
	return max(2*g.Interval.Duration+g.Wait.Duration, minEventAge)
}

// scanGroups makes the grouped Notifications that are due. A group's
// Events in one window are ordered by occurrence; part 1 is made wait
// after the first of them and carries those that occurred by then; every
// further part is made at the end of the window and carries the Events
// not yet carried. Each part records how many Events it carries, and the
// Events themselves are in the cluster, so after a restart the same parts
// are found and the rest is carried by the next: no Event is counted
// twice or left out (as long as the API server keeps Events for the
// window, an hour by default). It returns when the next part is due.
//
// Every part draws on the rule's budget and its namespace's. A part that
// is due when either is spent waits for a token of both, and carries the
// Events that arrive meanwhile; it may wait until one interval after its
// window ended, giving older windows the first tokens. Then the Events the
// group has not carried are counted as rate limited and none of them is
// carried later.
func (r *Reconciler) scanGroups(ctx context.Context, rule *notifyv1.EventRule, p *prepared, b *budget, now time.Time) (tally, time.Duration, error) {
	var t tally
	g := rule.Spec.Grouping
	var list corev1.EventList
	if err := r.List(ctx, &list, client.InNamespace(rule.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return t, 0, fmt.Errorf("listing events: %w", err)
	}
	stale := groupStaleAfter(g)
	ledger := r.ledger(rule)
	involved := map[string]labels.Set{}
	groups := map[groupWindowKey][]groupedEvent{}
	for i := range list.Items {
		e := &list.Items[i]
		occ := occurrence(e)
		if isHeraldEvent(e) || now.Sub(occ) > stale || !quickMatch(&rule.Spec.Match, e) {
			continue
		}
		var set labels.Set
		if p.selector != nil || needsLabels(g.By) {
			var err error
			if set, err = r.involvedLabels(ctx, rule, e, involved); err != nil {
				return t, 0, err
			}
			if p.selector != nil && !p.selector.Matches(set) {
				continue
			}
		}
		if key := observation(e); ledger.seen[key].IsZero() {
			ledger.seen[key] = occ
			t.matched++
		}
		wk := groupWindowKey{GroupKey(g.By, e, set), GroupWindow(occ, g.Interval.Duration)}
		groups[wk] = append(groups[wk], groupedEvent{e: e, occ: occ})
	}
	for k, occ := range ledger.seen {
		if now.Sub(occ) > stale {
			delete(ledger.seen, k)
		}
	}
	for wk := range ledger.overBudget {
		if now.Sub(wk.window.Add(g.Interval.Duration)) > stale {
			delete(ledger.overBudget, wk)
		}
	}

	var next time.Duration
	due := func(at time.Time) {
		if d := at.Sub(now); d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	keys := make([]groupWindowKey, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if !keys[i].window.Equal(keys[j].window) {
			return keys[i].window.Before(keys[j].window)
		}
		return keys[i].key < keys[j].key
	})
	for _, wk := range keys {
		evs := groups[wk]
		sort.SliceStable(evs, func(i, j int) bool {
			if !evs[i].occ.Equal(evs[j].occ) {
				return evs[i].occ.Before(evs[j].occ)
			}
			return evs[i].e.UID < evs[j].e.UID
		})
		if over, ok := ledger.overBudget[wk]; ok {
			// The group's rest was counted as rate limited; Events that
			// turned up since (reported late) are too.
			if len(evs) > over.handled {
				t.limit(over.by, int64(len(evs)-over.handled))
				ledger.overBudget[wk] = overBudgetGroup{len(evs), over.by}
			}
			continue
		}
		cutoff := evs[0].occ.Add(g.Wait.Duration)
		end := wk.window.Add(g.Interval.Duration)
		// The last moment a part may wait for the budget.
		giveUp := end.Add(g.Interval.Duration)
		carried := 0
		for part := 1; part <= maxGroupParts && carried < len(evs); part++ {
			name := GroupNotificationName(rule.Name, wk.key, wk.window, part)
			var existing notifyv1.Notification
			err := r.Get(ctx, client.ObjectKey{Namespace: rule.Namespace, Name: name}, &existing)
			if err == nil {
				c, _ := strconv.Atoi(existing.Annotations[AnnotationGroupCount])
				carried += max(c, 1)
				continue
			}
			if !apierrors.IsNotFound(err) {
				return t, 0, fmt.Errorf("reading notification %s: %w", name, err)
			}
			batch := evs[carried:]
			if part == 1 {
				if now.Before(cutoff) {
					due(cutoff)
					break
				}
				n := 0
				for n < len(batch) && !batch[n].occ.After(cutoff) {
					n++
				}
				batch = batch[:max(n, 1)]
			} else if now.Before(end) {
				due(end)
				break
			}
			if part == maxGroupParts {
				batch = evs[carried:] // the last part carries the rest
			}
			refund, by := b.draw(now)
			if by != heldByNone {
				if now.Before(giveUp) {
					t.postpone(by)
					due(now.Add(b.untilDrawable(now)))
					break
				}
				t.limit(by, int64(len(evs)-carried))
				ledger.overBudget[wk] = overBudgetGroup{len(evs), by}
				break
			}
			notif, err := r.groupNotification(rule, p.template, wk.key, wk.window, part, batch)
			if err != nil {
				refund()
				r.Recorder.Eventf(rule, nil, "Warning", notifyv1.ReasonInvalidContent, "Emit", "cannot make the grouped Notification %s: %v", name, err)
				break
			}
			switch err := r.Create(ctx, notif); {
			case err == nil:
				t.emitted++
				t.grouped += int64(len(batch))
				t.lastEmit = now
				r.Recorder.Eventf(rule, notif, "Normal", notifyv1.ReasonEmitted, "Emit", "created Notification %s for %d Events of group %q",
					notif.Name, len(batch), wk.key)
			case apierrors.IsAlreadyExists(err):
				// Made a moment ago; the cache has not seen it yet.
				refund()
			case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
				refund()
				r.Recorder.Eventf(rule, nil, "Warning", notifyv1.ReasonInvalidContent, "Emit", "the grouped Notification %s was rejected: %v", name, err)
			default:
				refund()
				return t, 0, fmt.Errorf("creating notification %s: %w", name, err)
			}
			carried += len(batch)
		}
	}
	return t, next, nil
}

// groupNotification renders one part of a group's Notifications from its
// first Event's fields and the group's: groupCount, groupObjects (at most
// maxGroupObjects, then "and N more") and groupKey.
func (r *Reconciler) groupNotification(rule *notifyv1.EventRule, tmpl *notifyv1.NotificationTemplate, key string, window time.Time, part int, batch []groupedEvent) (*notifyv1.Notification, error) {
	first := batch[0]
	fields := eventFields(first.e, first.occ)
	objects := groupObjects(batch)
	fields["groupCount"] = strconv.Itoa(len(batch))
	fields["groupObjects"] = objects
	fields["groupKey"] = key
	suffix := ""
	if m := rule.Spec.Notification.Spec.Message; !strings.Contains(m, "groupCount") && !strings.Contains(m, "groupObjects") {
		suffix = fmt.Sprintf("%d matching Events (%s): %s", len(batch), key, objects)
	}
	spec, err := renderSpec(rule, tmpl, fields, suffix)
	if err != nil {
		return nil, err
	}
	n, err := emit.OwnedNotification(rule, r.Scheme(), GroupNotificationName(rule.Name, key, window, part), rule.Spec.Notification.Metadata, *spec)
	if err != nil {
		return nil, err
	}
	n.Labels[notifyv1.LabelEventRule] = notifyv1.LabelValue(rule.Name)
	n.Annotations[AnnotationGroupKey] = notifyv1.FitText(key, 1024)
	n.Annotations[AnnotationGroupWindow] = window.Format(time.RFC3339)
	n.Annotations[AnnotationGroupCount] = strconv.Itoa(len(batch))
	n.Annotations[AnnotationGroupPart] = strconv.Itoa(part)
	n.Annotations[AnnotationInvolvedObject] = notifyv1.FitText(objects, 1024)
	return n, nil
}

// groupObjects lists the distinct involved objects of batch, in order of
// occurrence, at most maxGroupObjects of them.
func groupObjects(batch []groupedEvent) string {
	seen := map[string]bool{}
	var names []string
	for _, ge := range batch {
		id := ge.e.InvolvedObject.Kind + "/" + ge.e.InvolvedObject.Name
		if !seen[id] {
			seen[id] = true
			names = append(names, id)
		}
	}
	if len(names) > maxGroupObjects {
		return strings.Join(names[:maxGroupObjects], ", ") + fmt.Sprintf(" and %d more", len(names)-maxGroupObjects)
	}
	return strings.Join(names, ", ")
}
