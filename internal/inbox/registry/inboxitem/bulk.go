package inboxitem

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/rest"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/inbox/hub"
)

// MaxBulkItems bounds the writes of one bulk action: at most this many
// items are changed per request; status.remaining says how many more
// matched, and the caller repeats the request for them (items already
// changed no longer need it, so a repeat picks up where the last one
// stopped).
const MaxBulkItems = 100

// BulkREST serves create of bulkactions: one request that applies an
// operation to the caller's items matching selectors. Nothing is stored;
// the answer is the action with its status.
type BulkREST struct{ items *REST }

// NewBulkREST returns the storage of bulkactions, writing through items.
func NewBulkREST(items *REST) *BulkREST { return &BulkREST{items: items} }

var (
	_ rest.Storage              = &BulkREST{}
	_ rest.Creater              = &BulkREST{}
	_ rest.Scoper               = &BulkREST{}
	_ rest.SingularNameProvider = &BulkREST{}
)

func (b *BulkREST) New() runtime.Object     { return &inboxv1.BulkAction{} }
func (b *BulkREST) Destroy()                {}
func (b *BulkREST) NamespaceScoped() bool   { return false }
func (b *BulkREST) GetSingularName() string { return "bulkaction" }

var bulkKind = inboxv1.GroupVersion.WithKind("BulkAction").GroupKind()

// Create applies the action. Each item is written on its own, through the
// same path as a PATCH of the item (merge patch of the delivery's status,
// retried on conflicts); an item whose write still fails is listed in
// status.failed and the others stand. The answer comes once every write
// is back in the hub, so the caller's next list, counts and streams show
// all of them.
func (b *BulkREST) Create(ctx context.Context, obj runtime.Object, _ rest.ValidateObjectFunc, opts *metav1.CreateOptions) (runtime.Object, error) {
	act, ok := obj.(*inboxv1.BulkAction)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("expected a BulkAction, got %T", obj))
	}
	act = act.DeepCopy()
	act.Status = inboxv1.BulkActionStatus{}
	sel, err := parseBulkSelectors(act)
	if err != nil {
		return nil, err
	}
	user := caller(ctx)
	items, _, err := b.items.hub.List(user, act.Spec.Namespace)
	if err != nil {
		return nil, hubError(err)
	}
	now := b.items.clock.Now()
	dryRun := opts != nil && len(opts.DryRun) > 0
	match := matcher(sel)
	zones := map[string]string{} // recipient timezones, read once a request
	var last uint64
	for _, it := range items {
		if !match(it) {
			continue
		}
		act.Status.Matched++
		if !needsChange(act.Spec.Operation, it) {
			act.Status.Unchanged++
			continue
		}
		if act.Status.Changed+int32(len(act.Status.Failed)) >= MaxBulkItems {
			act.Status.Remaining++
			continue
		}
		change, err := b.change(ctx, act, it, user, now, zones)
		if err != nil {
			return nil, err
		}
		_, rv, err := b.items.update(ctx, user, it.Namespace, it.Name, change, nil, dryRun, false)
		if err != nil {
			act.Status.Failed = append(act.Status.Failed, inboxv1.BulkFailure{Namespace: it.Namespace, Name: it.Name, Message: err.Error()})
			continue
		}
		act.Status.Changed++
		last = max(last, rv)
	}
	if last > 0 {
		b.items.hub.WaitFor(ctx, last, hub.CatchUpTimeout)
	}
	if act.CreationTimestamp.IsZero() {
		act.CreationTimestamp = metav1.NewTime(now.Truncate(time.Second))
	}
	return act, nil
}

// parseBulkSelectors checks the spec and returns its selectors as list
// options (422 Invalid for anything wrong).
func parseBulkSelectors(act *inboxv1.BulkAction) (*metainternalversion.ListOptions, error) {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	switch act.Spec.Operation {
	case inboxv1.BulkMarkRead, inboxv1.BulkMarkSeen, inboxv1.BulkArchiveRead:
		if act.Spec.Snooze != nil {
			errs = append(errs, field.Forbidden(spec.Child("snooze"), "only the Snooze operation takes snooze"))
		}
	case inboxv1.BulkSnooze:
		if act.Spec.Snooze == nil {
			errs = append(errs, field.Required(spec.Child("snooze"), "the Snooze operation needs until or preset"))
		}
	default:
		errs = append(errs, field.NotSupported(spec.Child("operation"), act.Spec.Operation,
			[]inboxv1.BulkOperation{inboxv1.BulkMarkRead, inboxv1.BulkMarkSeen, inboxv1.BulkArchiveRead, inboxv1.BulkSnooze}))
	}
	opts := &metainternalversion.ListOptions{}
	if ls, err := labels.Parse(act.Spec.LabelSelector); err != nil {
		errs = append(errs, field.Invalid(spec.Child("labelSelector"), act.Spec.LabelSelector, err.Error()))
	} else {
		opts.LabelSelector = ls
	}
	if fs, err := fields.ParseSelector(act.Spec.FieldSelector); err != nil {
		errs = append(errs, field.Invalid(spec.Child("fieldSelector"), act.Spec.FieldSelector, err.Error()))
	} else {
		for _, r := range fs.Requirements() {
			if _, _, err := FieldLabelConversion(r.Field, r.Value); err != nil {
				errs = append(errs, field.Invalid(spec.Child("fieldSelector"), act.Spec.FieldSelector, err.Error()))
			}
		}
		opts.FieldSelector = fs
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(bulkKind, act.Name, errs)
	}
	return opts, nil
}

// needsChange reports whether op would change it.
func needsChange(op inboxv1.BulkOperation, it *inboxv1.InboxItem) bool {
	switch op {
	case inboxv1.BulkMarkRead:
		return !it.Status.Read
	case inboxv1.BulkMarkSeen:
		return !it.Status.Seen
	case inboxv1.BulkArchiveRead:
		return it.Status.Read && !it.Status.Archived
	}
	return true // Snooze: every visible item leaves
}

// change returns the update that applies act to it.
func (b *BulkREST) change(ctx context.Context, act *inboxv1.BulkAction, it *inboxv1.InboxItem, user string, now time.Time, zones map[string]string) (rest.UpdatedObjectInfo, error) {
	var until *metav1.Time
	if act.Spec.Operation == inboxv1.BulkSnooze {
		t, err := ResolveSnooze(*act.Spec.Snooze, now, b.timezone(ctx, user, it, zones))
		if err != nil {
			return nil, apierrors.NewInvalid(bulkKind, act.Name, field.ErrorList{field.Invalid(field.NewPath("spec", "snooze"), act.Spec.Snooze, err.Error())})
		}
		mt := metav1.NewTime(t)
		until = &mt
	}
	return transform(func(upd *inboxv1.InboxItem) {
		switch act.Spec.Operation {
		case inboxv1.BulkMarkRead:
			upd.Status.Read = true
		case inboxv1.BulkMarkSeen:
			upd.Status.Seen = true
		case inboxv1.BulkArchiveRead:
			if upd.Status.Read {
				upd.Status.Archived = true
			}
		case inboxv1.BulkSnooze:
			upd.Status.SnoozedUntil = until
		}
	}), nil
}

// timezone is the timezone of the Recipient an item was delivered to, as
// it is now (the caller may have changed it through preferences), or the
// one recorded in the delivery when the Recipient cannot be read; "" is
// UTC.
func (b *BulkREST) timezone(ctx context.Context, user string, it *inboxv1.InboxItem, zones map[string]string) string {
	d := b.items.hub.Delivery(user, it.Namespace, it.Name)
	if d == nil {
		return ""
	}
	key := d.Namespace + "/" + d.Spec.Recipient.Name
	if tz, ok := zones[key]; ok {
		return tz
	}
	tz := d.Spec.Recipient.Timezone
	var r notifyv1.Recipient
	if err := b.items.writer.Get(ctx, types.NamespacedName{Namespace: d.Namespace, Name: d.Spec.Recipient.Name}, &r); err == nil && r.Spec.Username == user {
		tz = r.Spec.Timezone
	}
	zones[key] = tz
	return tz
}

// transform is a rest.UpdatedObjectInfo that changes the current item in
// place, as a merge patch of the changed fields would.
type transform func(*inboxv1.InboxItem)

func (t transform) Preconditions() *metav1.Preconditions { return nil }
func (t transform) UpdatedObject(_ context.Context, old runtime.Object) (runtime.Object, error) {
	it := old.(*inboxv1.InboxItem).DeepCopy()
	t(it)
	return it, nil
}
