// Package schedule holds the NotificationSchedule reconciler, which creates
// a schedule's Notifications when its runs are due, as the CronJob
// controller creates Jobs.
package schedule

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/emit"
	"github.com/herald-dev/herald/internal/patch"
	"github.com/herald-dev/herald/internal/schedule"
)

// requeueSlack is added to the wait for the next run so that the
// reconcile lands after the run's instant, not a hair before it.
const requeueSlack = 100 * time.Millisecond

// Reconciler creates a schedule's Notifications when
// its runs are due, the way the CronJob controller creates Jobs:
//
//   - children are named <schedule>-<minutes since the epoch of the run>,
//     so a restart or a retried reconcile finds the run's Notification
//     already there (AlreadyExists) and never creates a second one;
//   - after an outage only the newest due run is made, and not even that
//     when it is more than startingDeadlineSeconds late; the others count
//     in status.missedRuns;
//   - finished children beyond the history limits are deleted.
//
// Time comes from Clock so that tests drive it with a fake clock.
type Reconciler struct {
	client.Client
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
}

// +kubebuilder:rbac:groups=notify.herald.dev,resources=notificationschedules,verbs=get;list;watch
// +kubebuilder:rbac:groups=notify.herald.dev,resources=notificationschedules/status,verbs=patch
// +kubebuilder:rbac:groups=notify.herald.dev,resources=notificationschedules/finalizers,verbs=update
// +kubebuilder:rbac:groups=notify.herald.dev,resources=notifications,verbs=get;list;watch;create;delete

func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var s notifyv1.NotificationSchedule
	if err := r.Get(ctx, req.NamespacedName, &s); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if s.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	now := r.Clock.Now()
	patcher := patch.NewHelper(&s, r.Client, patch.ControllerFieldOwner)
	before := s.Status.DeepCopy()

	if err := r.trackChildren(ctx, &s); err != nil {
		return ctrl.Result{}, err
	}

	var (
		result ctrl.Result
		missed schedule.Decision
	)
	sched, err := schedule.Parse(s.Spec.Schedule, s.Spec.TimeZone)
	switch {
	case err != nil:
		s.Status.NextScheduleTime = nil
		r.setReady(&s, metav1.ConditionFalse, notifyv1.ReasonInvalidSchedule, err.Error(), now)
	case s.Spec.Suspend:
		s.Status.NextScheduleTime = nil
		r.setReady(&s, metav1.ConditionFalse, notifyv1.ReasonSuspended, "spec.suspend is true: no runs are made, and runs missed meanwhile are skipped", now)
	default:
		d := sched.Decide(r.since(&s, now), now, deadline(&s), false)
		if !d.Run.IsZero() {
			if err := r.run(ctx, &s, d.Run, &d); err != nil {
				return ctrl.Result{}, err
			}
		}
		if d.Missed > 0 {
			s.Status.MissedRuns += d.Missed
			s.Status.LastMissedTime = &metav1.Time{Time: d.LastMissed}
			missed = d
		}
		msg := "no further runs within five years"
		s.Status.NextScheduleTime = nil
		if !d.Next.IsZero() {
			s.Status.NextScheduleTime = &metav1.Time{Time: d.Next}
			msg = fmt.Sprintf("next run at %s", d.Next.In(sched.Location()).Format(time.RFC3339))
			result.RequeueAfter = d.Next.Sub(now) + requeueSlack
		}
		r.setReady(&s, metav1.ConditionTrue, notifyv1.ReasonScheduled, msg, now)
	}
	s.Status.ObservedGeneration = s.Generation

	// On a conflict the Notification of a run, if any, exists: the retry
	// finds it by name and records it.
	wrote, err := patcher.Patch(ctx, &s, patch.WithOptimisticLock())
	if err != nil {
		return patch.RequeueOnConflict(err, "schedule status")
	}
	if wrote {
		// Announced only once recorded, so that a retried reconcile does
		// not report the same problem twice.
		r.announce(&s, before, missed, deadline(&s))
	}
	return result, nil
}

// since is the instant up to which runs are handled. Runs are handled from
// the schedule's creation, and from the moment it became active again
// after being suspended or invalid: those runs are skipped, not made up.
// The Ready condition's transition time records that moment.
func (r *Reconciler) since(s *notifyv1.NotificationSchedule, now time.Time) time.Time {
	var activeSince time.Time
	if c := meta.FindStatusCondition(s.Status.Conditions, notifyv1.ConditionReady); c != nil {
		activeSince = c.LastTransitionTime.Time
		if c.Status != metav1.ConditionTrue {
			activeSince = now // becoming active in this reconcile
		}
	}
	var last, lastMissed time.Time
	if t := s.Status.LastScheduleTime; t != nil {
		last = t.Time
	}
	if t := s.Status.LastMissedTime; t != nil {
		lastMissed = t.Time
	}
	return schedule.Since(s.CreationTimestamp.Time, last, lastMissed, activeSince)
}

func deadline(s *notifyv1.NotificationSchedule) *time.Duration {
	if s.Spec.StartingDeadlineSeconds == nil {
		return nil
	}
	d := time.Duration(*s.Spec.StartingDeadlineSeconds) * time.Second
	return &d
}

// run creates the Notification of the run at t. AlreadyExists means an
// earlier reconcile made it (a restart between the create and the status
// write): the run is done either way.
func (r *Reconciler) run(ctx context.Context, s *notifyv1.NotificationSchedule, t time.Time, d *schedule.Decision) error {
	n := r.child(s, t)
	err := r.Create(ctx, n)
	switch {
	case err == nil:
		r.Recorder.Eventf(s, n, "Normal", notifyv1.ReasonCreated, "Schedule", "created Notification %s for the run at %s", n.Name, t.UTC().Format(time.RFC3339))
	case apierrors.IsAlreadyExists(err):
		log.FromContext(ctx).V(1).Info("the run's notification exists already", "notification", n.Name)
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		// Retrying cannot help: count the run as missed and say why.
		r.Recorder.Eventf(s, nil, "Warning", notifyv1.ReasonFailedCreate, "Schedule", "the Notification for the run at %s was rejected: %v", t.UTC().Format(time.RFC3339), err)
		d.Missed++
		if d.LastMissed.Before(t) {
			d.LastMissed = t
		}
		return nil
	default:
		return fmt.Errorf("creating notification %s: %w", n.Name, err)
	}
	s.Status.LastScheduleTime = &metav1.Time{Time: t}
	s.Status.LastNotification = n.Name
	if !slices.Contains(s.Status.Active, n.Name) {
		s.Status.Active = append(s.Status.Active, n.Name)
		sort.Strings(s.Status.Active)
	}
	return nil
}

// ScheduledName is the deterministic name of the Notification a schedule
// creates for its run at t: the schedule's name and the run's minute since
// the Unix epoch, as CronJobs name their Jobs.
func ScheduledName(schedule string, t time.Time) string {
	return notifyv1.FitName(fmt.Sprintf("%s-%d", schedule, t.Unix()/60), 253)
}

func (r *Reconciler) child(s *notifyv1.NotificationSchedule, t time.Time) *notifyv1.Notification {
	tpl := s.Spec.Notification
	// Children go with their schedule, and their progress wakes it.
	n, _ := emit.OwnedNotification(s, r.Scheme(), ScheduledName(s.Name, t), tpl.Metadata, *tpl.Spec.DeepCopy())
	n.Labels[notifyv1.LabelSchedule] = notifyv1.LabelValue(s.Name)
	n.Annotations[notifyv1.AnnotationScheduledTime] = t.UTC().Format(time.RFC3339)
	return n
}

// trackChildren lists the schedule's Notifications, records the unfinished
// ones in status.active and deletes finished ones beyond the history
// limits, oldest run first.
func (r *Reconciler) trackChildren(ctx context.Context, s *notifyv1.NotificationSchedule) error {
	var list notifyv1.NotificationList
	if err := r.List(ctx, &list, client.InNamespace(s.Namespace), client.MatchingLabels{notifyv1.LabelSchedule: notifyv1.LabelValue(s.Name)}); err != nil {
		return fmt.Errorf("listing the schedule's notifications: %w", err)
	}
	var children []notifyv1.Notification
	for i := range list.Items {
		if metav1.IsControlledBy(&list.Items[i], s) && list.Items[i].DeletionTimestamp == nil {
			children = append(children, list.Items[i])
		}
	}
	active, prune := PlanHistory(children, limit(s.Spec.SuccessfulHistoryLimit, 3), limit(s.Spec.FailedHistoryLimit, 1))
	s.Status.Active = active
	for _, n := range prune {
		if err := r.Delete(ctx, n, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting old notification %s: %w", n.Name, err)
		}
		log.FromContext(ctx).V(1).Info("deleted a finished notification beyond the history limit", "notification", n.Name, "phase", n.Status.Phase)
	}
	return nil
}

func limit(p *int32, def int) int {
	if p == nil {
		return def
	}
	return int(*p)
}

// PlanHistory splits a schedule's children into the names of the
// unfinished ones (sorted) and the finished ones to delete: all but the
// newest keepSucceeded Delivered ones and all but the newest keepFailed
// others (PartiallyDelivered, Failed, Expired). Newest means the latest
// run, read from the scheduled-time annotation.
func PlanHistory(children []notifyv1.Notification, keepSucceeded, keepFailed int) (active []string, prune []*notifyv1.Notification) {
	var succeeded, failed []*notifyv1.Notification
	for i := range children {
		n := &children[i]
		switch {
		case !n.Status.Phase.Finished():
			active = append(active, n.Name)
		case n.Status.Phase == notifyv1.NotificationDelivered:
			succeeded = append(succeeded, n)
		default:
			failed = append(failed, n)
		}
	}
	sort.Strings(active)
	for _, group := range []struct {
		items []*notifyv1.Notification
		keep  int
	}{{succeeded, keepSucceeded}, {failed, keepFailed}} {
		sort.Slice(group.items, func(i, j int) bool { return runTime(group.items[i]).After(runTime(group.items[j])) })
		if len(group.items) > group.keep {
			prune = append(prune, group.items[max(group.keep, 0):]...)
		}
	}
	return active, prune
}

// runTime is when a child's run was due, falling back to its creation.
func runTime(n *notifyv1.Notification) time.Time {
	if v, ok := n.Annotations[notifyv1.AnnotationScheduledTime]; ok {
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			return t
		}
	}
	return n.CreationTimestamp.Time
}

// setReady sets the Ready condition with the transition time taken from
// the reconciler's clock: since() reads it back as the moment the schedule
// became active.
func (r *Reconciler) setReady(s *notifyv1.NotificationSchedule, status metav1.ConditionStatus, reason, msg string, now time.Time) {
	meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{
		Type: notifyv1.ConditionReady, Status: status, Reason: reason, Message: msg,
		ObservedGeneration: s.Generation, LastTransitionTime: metav1.NewTime(now),
	})
}

func (r *Reconciler) announce(s *notifyv1.NotificationSchedule, before *notifyv1.NotificationScheduleStatus, d schedule.Decision, dl *time.Duration) {
	if d.Missed > 0 {
		why := "superseded by a newer run: missed runs are not made up"
		if d.Run.IsZero() && dl != nil {
			why = fmt.Sprintf("more than startingDeadlineSeconds (%s) late", *dl)
		}
		r.Recorder.Eventf(s, nil, "Warning", notifyv1.ReasonMissedSchedule, "Schedule", "skipped %d run(s), the newest at %s: %s",
			d.Missed, d.LastMissed.UTC().Format(time.RFC3339), why)
	}
	c := meta.FindStatusCondition(s.Status.Conditions, notifyv1.ConditionReady)
	old := meta.FindStatusCondition(before.Conditions, notifyv1.ConditionReady)
	if c != nil && c.Reason == notifyv1.ReasonInvalidSchedule && (old == nil || old.Reason != c.Reason || old.Message != c.Message) {
		r.Recorder.Eventf(s, nil, "Warning", notifyv1.ReasonInvalidSchedule, "Schedule", "%s", c.Message)
	}
}

// SetupWithManager watches schedules' specs and annotations (a changed
// annotation, e.g. from `kubectl annotate`, asks for an immediate
// reconcile; status writes do not wake it) and the Notifications they own,
// whose completion updates status.active and the history.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&notifyv1.NotificationSchedule{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&notifyv1.Notification{}).
		Complete(r)
}
