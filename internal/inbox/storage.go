package inbox

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/watch"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/inbox/hub"
	"github.com/herald-dev/herald/internal/inbox/view"
)

// maxCommentLength bounds a response's comment.
const maxCommentLength = 1024

// writeAttempts bounds retries of a delivery status write that conflicts
// with another writer (the controller, another replica, another tab).
const writeAttempts = 5

// bookmarkInterval is how often an idle watch that asked for bookmarks
// gets one.
const bookmarkInterval = time.Minute

var itemsResource = inboxv1.Resource("inboxitems")

// itemStorage is the rest.Storage of inboxitems (and inboxitems/status,
// which accepts the same writes). Every call is for the authenticated
// caller only: other users' items do not exist for them.
type itemStorage struct {
	hub    *hub.Hub
	writer client.Client // writes delivery status, reads live on conflict
}

// statusStorage serves inboxitems/status: get, update and patch, with the
// same rules as the main resource, for clients that write status through
// the subresource as they would on any other kind.
type statusStorage struct{ items *itemStorage }

func (s *statusStorage) New() runtime.Object   { return &inboxv1.InboxItem{} }
func (s *statusStorage) Destroy()              {}
func (s *statusStorage) NamespaceScoped() bool { return true }
func (s *statusStorage) Get(ctx context.Context, name string, opts *metav1.GetOptions) (runtime.Object, error) {
	return s.items.Get(ctx, name, opts)
}
func (s *statusStorage) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, forceAllowCreate bool, opts *metav1.UpdateOptions) (runtime.Object, bool, error) {
	return s.items.Update(ctx, name, objInfo, createValidation, updateValidation, forceAllowCreate, opts)
}

var _ rest.Patcher = &statusStorage{}

var (
	_ rest.Storage              = &itemStorage{}
	_ rest.Scoper               = &itemStorage{}
	_ rest.SingularNameProvider = &itemStorage{}
	_ rest.Getter               = &itemStorage{}
	_ rest.Lister               = &itemStorage{}
	_ rest.Watcher              = &itemStorage{}
	_ rest.Patcher              = &itemStorage{}
	_ rest.ShortNamesProvider   = &itemStorage{}
	_ rest.CategoriesProvider   = &itemStorage{}
)

func (s *itemStorage) New() runtime.Object     { return &inboxv1.InboxItem{} }
func (s *itemStorage) NewList() runtime.Object { return &inboxv1.InboxItemList{} }
func (s *itemStorage) Destroy()                {}
func (s *itemStorage) NamespaceScoped() bool   { return true }
func (s *itemStorage) GetSingularName() string { return "inboxitem" }
func (s *itemStorage) ShortNames() []string    { return []string{"inbox"} }
func (s *itemStorage) Categories() []string    { return []string{"herald"} }
func (s *itemStorage) ConvertToTable(ctx context.Context, obj runtime.Object, opts runtime.Object) (*metav1.Table, error) {
	return convertToTable(obj, time.Now())
}

// caller returns the authenticated user's name. The generic server's
// authentication filter guarantees one; an empty name sees nothing.
func caller(ctx context.Context) string {
	if u, ok := genericapirequest.UserFrom(ctx); ok {
		return u.GetName()
	}
	return ""
}

func notFound(name string) error { return apierrors.NewNotFound(itemsResource, name) }

func hubError(err error) error {
	if err == hub.ErrNotSynced || err == hub.ErrShutdown {
		return apierrors.NewServiceUnavailable(err.Error())
	}
	return apierrors.NewInternalError(err)
}

func (s *itemStorage) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	it, err := s.hub.Get(caller(ctx), genericapirequest.NamespaceValue(ctx), name)
	if err != nil {
		return nil, hubError(err)
	}
	if it == nil {
		return nil, notFound(name)
	}
	// Items are shared with other readers; the serializer may touch them.
	return it.DeepCopy(), nil
}

// List serves the caller's items from the hub, which reflects one
// resourceVersion, so a watch started from the list's version misses and
// repeats nothing. Pagination is not offered: an inbox is small.
func (s *itemStorage) List(ctx context.Context, opts *metainternalversion.ListOptions) (runtime.Object, error) {
	items, head, err := s.hub.List(caller(ctx), genericapirequest.NamespaceValue(ctx))
	if err != nil {
		return nil, hubError(err)
	}
	match := matcher(opts)
	out := &inboxv1.InboxItemList{ListMeta: metav1.ListMeta{ResourceVersion: strconv.FormatUint(head, 10)}}
	for _, it := range items {
		if match(it) {
			out.Items = append(out.Items, *it.DeepCopy())
		}
	}
	return out, nil
}

// matcher returns the label and field selector of opts as one predicate.
func matcher(opts *metainternalversion.ListOptions) func(*inboxv1.InboxItem) bool {
	ls, fs := labels.Everything(), fields.Everything()
	if opts != nil && opts.LabelSelector != nil {
		ls = opts.LabelSelector
	}
	if opts != nil && opts.FieldSelector != nil {
		fs = opts.FieldSelector
	}
	return func(it *inboxv1.InboxItem) bool {
		return ls.Matches(labels.Set(it.Labels)) && fs.Matches(fieldSet(it))
	}
}

// fieldSet is what field selectors match an item against.
func fieldSet(it *inboxv1.InboxItem) fields.Set {
	return fields.Set{
		"metadata.name":           it.Name,
		"metadata.namespace":      it.Namespace,
		inboxv1.FieldCategory:     it.Spec.Category,
		inboxv1.FieldType:         it.Spec.Type,
		inboxv1.FieldNotification: it.Spec.Notification,
		inboxv1.FieldRead:         strconv.FormatBool(it.Status.Read),
		inboxv1.FieldArchived:     strconv.FormatBool(it.Status.Archived),
	}
}

// Watch follows the caller's items. resourceVersion semantics are those
// of kube-apiserver: unset or "0" starts with the current items as ADDED
// events; a version replays what followed it, or fails with 410 Gone when
// it is older than the retained history, so informers relist.
func (s *itemStorage) Watch(ctx context.Context, opts *metainternalversion.ListOptions) (watch.Interface, error) {
	user, ns := caller(ctx), genericapirequest.NamespaceValue(ctx)
	var cursor *uint64
	if rv := opts.ResourceVersion; rv != "" && rv != "0" {
		v, err := strconv.ParseUint(rv, 10, 64)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid resourceVersion %q", rv))
		}
		cursor = &v
		if !s.hub.WaitFor(ctx, v, hub.CatchUpTimeout) {
			e := apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %d, current: %d", v, s.hub.Head()), 1)
			e.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: metav1.CauseTypeResourceVersionTooLarge, Message: "Too large resource version"}}
			return nil, e
		}
	}
	initial := opts.SendInitialEvents != nil && *opts.SendInitialEvents
	if initial {
		// Watch-list: the current state, then a bookmark marking its end.
		cursor = nil
	}
	sub, start, err := s.hub.Subscribe(user, ns, cursor)
	if err != nil {
		return nil, hubError(err)
	}
	if start.Reset {
		s.hub.Unsubscribe(sub)
		return nil, apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %s (the inbox keeps history from %d)", opts.ResourceVersion, start.SnapshotID))
	}
	w := &itemWatch{
		hub:       s.hub,
		sub:       sub,
		match:     matcher(opts),
		bookmarks: opts.AllowWatchBookmarks,
		result:    make(chan watch.Event),
		stop:      make(chan struct{}),
	}
	var prefix []watch.Event
	for _, it := range start.Snapshot {
		if w.match(it) {
			prefix = append(prefix, watch.Event{Type: watch.Added, Object: it.DeepCopy()})
		}
	}
	if initial && opts.AllowWatchBookmarks {
		prefix = append(prefix, watch.Event{Type: watch.Bookmark, Object: &inboxv1.InboxItem{
			TypeMeta: metav1.TypeMeta{APIVersion: inboxv1.GroupVersion.String(), Kind: "InboxItem"},
			ObjectMeta: metav1.ObjectMeta{
				ResourceVersion: strconv.FormatUint(start.SnapshotID, 10),
				Annotations:     map[string]string{metav1.InitialEventsAnnotationKey: "true"},
			},
		}})
	}
	for _, ev := range start.Replay {
		if e, ok := w.convert(ev); ok {
			prefix = append(prefix, e)
		}
	}
	go w.run(prefix)
	return w, nil
}

// itemWatch turns hub events into watch events for one caller and
// selector: an item that starts or stops matching is ADDED or DELETED, as
// kube-apiserver does for selector watches.
type itemWatch struct {
	hub       *hub.Hub
	sub       *hub.Subscription
	match     func(*inboxv1.InboxItem) bool
	bookmarks bool
	result    chan watch.Event
	stop      chan struct{}
	stopOnce  sync.Once
}

func (w *itemWatch) ResultChan() <-chan watch.Event { return w.result }

func (w *itemWatch) Stop() {
	w.hub.Unsubscribe(w.sub)
	w.stopOnce.Do(func() { close(w.stop) })
}

func (w *itemWatch) convert(ev *hub.Event) (watch.Event, bool) {
	was := ev.Old != nil && w.match(ev.Old)
	is := ev.New != nil && w.match(ev.New)
	switch {
	case is && !was:
		return watch.Event{Type: watch.Added, Object: ev.New.DeepCopy()}, true
	case is && was:
		return watch.Event{Type: watch.Modified, Object: ev.New.DeepCopy()}, true
	case was:
		gone := ev.Old
		if ev.New != nil {
			gone = ev.New // stopped matching: last state, current version
		}
		obj := gone.DeepCopy()
		obj.ResourceVersion = strconv.FormatUint(ev.ID, 10)
		return watch.Event{Type: watch.Deleted, Object: obj}, true
	}
	return watch.Event{}, false
}

func (w *itemWatch) run(prefix []watch.Event) {
	defer close(w.result)
	defer w.hub.Unsubscribe(w.sub)
	for _, e := range prefix {
		select {
		case w.result <- e:
		case <-w.stop:
			return
		}
	}
	var tick <-chan time.Time
	if w.bookmarks {
		t := time.NewTicker(bookmarkInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case ev, ok := <-w.sub.Events:
			if !ok {
				// Dropped by the hub (fell behind, or history restarted):
				// ending the watch makes the client resume or relist.
				return
			}
			e, ok := w.convert(ev)
			if !ok {
				continue
			}
			select {
			case w.result <- e:
			case <-w.stop:
				return
			}
		case <-tick:
			head, quiet := w.hub.Quiet(w.sub)
			if !quiet {
				continue
			}
			bm := watch.Event{Type: watch.Bookmark, Object: &inboxv1.InboxItem{
				TypeMeta:   metav1.TypeMeta{APIVersion: inboxv1.GroupVersion.String(), Kind: "InboxItem"},
				ObjectMeta: metav1.ObjectMeta{ResourceVersion: strconv.FormatUint(head, 10)},
			}}
			select {
			case w.result <- bm:
			case <-w.stop:
				return
			}
		case <-w.stop:
			return
		}
	}
}

// Update applies a PUT or PATCH of an item: only status.read,
// status.archived and status.response can change. The change is written to
// the delivery's status with the delivery's resourceVersion as
// precondition, and retried on conflict with the current delivery (a patch
// is re-applied to it; a PUT carrying a resourceVersion fails instead, as
// it would on any Kubernetes object).
func (s *itemStorage) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, _ rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, _ bool, opts *metav1.UpdateOptions) (runtime.Object, bool, error) {
	user, ns := caller(ctx), genericapirequest.NamespaceValue(ctx)
	d := s.hub.Delivery(user, ns, name)
	if d == nil {
		return nil, false, notFound(name)
	}
	for attempt := 1; ; attempt++ {
		// The cache can lag; on a retry read the delivery live.
		if attempt > 1 {
			var live notifyv1.ChannelDelivery
			if err := s.writer.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &live); err != nil {
				if apierrors.IsNotFound(err) {
					return nil, false, notFound(name)
				}
				return nil, false, err
			}
			d = &live
		}
		if view.Owner(d) != user || !view.Visible(d, time.Now()) {
			return nil, false, notFound(name)
		}
		old := view.Item(d)
		obj, err := objInfo.UpdatedObject(ctx, old.DeepCopy())
		if err != nil {
			return nil, false, err
		}
		upd, ok := obj.(*inboxv1.InboxItem)
		if !ok {
			return nil, false, apierrors.NewBadRequest(fmt.Sprintf("expected an InboxItem, got %T", obj))
		}
		if upd.ResourceVersion != "" && upd.ResourceVersion != old.ResourceVersion {
			if attempt == 1 {
				continue // the cache may be behind the caller; compare live
			}
			return nil, false, apierrors.NewConflict(itemsResource, name,
				fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
		}
		if updateValidation != nil {
			if err := updateValidation(ctx, upd, old); err != nil {
				return nil, false, err
			}
		}
		next, err := applyStatus(d, old, upd, user, time.Now())
		if err != nil {
			return nil, false, err
		}
		if next == nil || (opts != nil && len(opts.DryRun) > 0) {
			if next == nil {
				return old, false, nil // nothing changed
			}
			return view.Item(next), false, nil
		}
		if err := s.writer.Status().Update(ctx, next); err != nil {
			if apierrors.IsConflict(err) && attempt < writeAttempts {
				continue
			}
			if apierrors.IsNotFound(err) {
				return nil, false, notFound(name)
			}
			return nil, false, err
		}
		// Wait for the write to come back through the watch, so the
		// caller's next read (and its SSE streams) already show it.
		if rv, err := hub.ParseRV(next.ResourceVersion); err == nil {
			s.hub.WaitFor(ctx, rv, hub.CatchUpTimeout)
		}
		return view.Item(next), false, nil
	}
}

// applyStatus validates the caller's new item against the old one and
// returns the delivery with the resulting status, or nil when nothing
// changes. Times are the server's: a client's readTime or response time is
// ignored.
func applyStatus(d *notifyv1.ChannelDelivery, old, upd *inboxv1.InboxItem, user string, now time.Time) (*notifyv1.ChannelDelivery, error) {
	var errs field.ErrorList
	if upd.Name != old.Name {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), upd.Name, "does not match the item"))
	}
	if upd.Namespace != "" && upd.Namespace != old.Namespace {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "namespace"), upd.Namespace, "does not match the item"))
	}
	if !equality.Semantic.DeepEqual(upd.Spec, old.Spec) {
		errs = append(errs, field.Forbidden(field.NewPath("spec"), "inbox items are read-only except status.read, status.archived and status.response"))
	}
	if !equality.Semantic.DeepEqual(upd.Labels, old.Labels) || len(upd.Annotations) > 0 {
		errs = append(errs, field.Forbidden(field.NewPath("metadata"), "labels and annotations of inbox items are read-only"))
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(inboxv1.GroupVersion.WithKind("InboxItem").GroupKind(), old.Name, errs)
	}

	next := d.DeepCopy()
	t := metav1.NewTime(now.Truncate(time.Second))
	switch {
	case upd.Status.Read && next.Status.ReadTime == nil:
		next.Status.ReadTime = &t
	case !upd.Status.Read:
		next.Status.ReadTime = nil
	}
	switch {
	case upd.Status.Archived && next.Status.ArchivedTime == nil:
		next.Status.ArchivedTime = &t
	case !upd.Status.Archived:
		next.Status.ArchivedTime = nil
	}
	if err := applyResponse(next, old, upd.Status.Response, user, t); err != nil {
		return nil, err
	}
	if equality.Semantic.DeepEqual(next.Status, d.Status) {
		return nil, nil
	}
	return next, nil
}

// applyResponse records an answer to an approval item. An answer is final:
// the same answer again changes nothing (a merge patch of other fields
// carries it over), a different one or its removal is refused.
func applyResponse(next *notifyv1.ChannelDelivery, old *inboxv1.InboxItem, resp *inboxv1.InboxItemResponse, user string, t metav1.Time) error {
	path := field.NewPath("status", "response")
	given := next.Status.Response
	if given != nil {
		if resp != nil && resp.Action == given.Action && resp.Comment == given.Comment {
			return nil
		}
		what := "a different answer"
		if resp == nil {
			what = "removing it"
		}
		return &apierrors.StatusError{ErrStatus: metav1.Status{
			Status: metav1.StatusFailure,
			Code:   409,
			Reason: metav1.StatusReasonConflict,
			Details: &metav1.StatusDetails{
				Group: itemsResource.Group, Kind: itemsResource.Resource, Name: old.Name,
				Causes: []metav1.StatusCause{{Type: metav1.CauseTypeFieldValueNotSupported, Field: path.String(), Message: "already answered"}},
			},
			Message: fmt.Sprintf("inboxitems.%s %q was already answered %q by %s at %s; an answer is final, so %s is refused",
				itemsResource.Group, old.Name, given.Action, given.Username, given.Time.UTC().Format(time.RFC3339), what),
		}}
	}
	if resp == nil {
		return nil
	}
	var ids []string
	for _, a := range old.Spec.Actions {
		ids = append(ids, a.ID)
	}
	switch {
	case len(ids) == 0:
		return apierrors.NewInvalid(inboxv1.GroupVersion.WithKind("InboxItem").GroupKind(), old.Name, field.ErrorList{
			field.Forbidden(path, "this item offers no actions to answer")})
	case !slices.Contains(ids, resp.Action):
		return apierrors.NewInvalid(inboxv1.GroupVersion.WithKind("InboxItem").GroupKind(), old.Name, field.ErrorList{
			field.NotSupported(path.Child("action"), resp.Action, ids)})
	case len(resp.Comment) > maxCommentLength:
		return apierrors.NewInvalid(inboxv1.GroupVersion.WithKind("InboxItem").GroupKind(), old.Name, field.ErrorList{
			field.TooLong(path.Child("comment"), "", maxCommentLength)})
	}
	next.Status.Response = &notifyv1.InboxResponse{Action: resp.Action, Comment: resp.Comment, Username: user, Time: t}
	return nil
}
