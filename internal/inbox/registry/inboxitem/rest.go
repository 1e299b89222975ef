// Package inboxitem is the REST storage of inbox.herald.dev/v1alpha1
// inboxitems and inboxitems/status: get, list, watch, update and patch of
// the caller's own items. It reads from the inbox hub and writes the
// delivery behind an item (readTime, archivedTime and response of its
// status); nothing is stored here.
package inboxitem

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/inbox/hub"
	"github.com/herald-dev/herald/internal/inbox/view"
	"github.com/herald-dev/herald/internal/patch"
)

var itemsResource = inboxv1.Resource("inboxitems")

// Hub is what the storage needs of the inbox hub (*hub.Hub): the caller's
// items and the delivery behind one, the resourceVersion it reflects, and
// the caller's events for watches.
type Hub interface {
	Get(user, namespace, name string) (*inboxv1.InboxItem, error)
	List(user, namespace string) ([]*inboxv1.InboxItem, uint64, error)
	Delivery(user, namespace, name string) *notifyv1.ChannelDelivery
	Head() uint64
	WaitFor(ctx context.Context, rv uint64, timeout time.Duration) bool
	Subscribe(user, namespace string, cursor *uint64) (*hub.Subscription, hub.Start, error)
	Unsubscribe(*hub.Subscription)
	Quiet(*hub.Subscription) (head uint64, quiet bool)
}

// REST is the rest.Storage of inboxitems (and, through StatusREST, of
// inboxitems/status, which accepts the same writes). Every call is for the
// authenticated caller only: other users' items do not exist for them.
type REST struct {
	hub    Hub
	writer client.Client // writes delivery status, reads live on conflict
	clock  clock.WithTicker
}

// NewREST returns the storage of inboxitems and of inboxitems/status,
// reading from h and writing deliveries' status with writer. clk says when
// items expire, stamps readTime, archivedTime and response times, ages
// table rows and paces watch bookmarks.
func NewREST(h Hub, writer client.Client, clk clock.WithTicker) (*REST, *StatusREST) {
	items := &REST{hub: h, writer: writer, clock: clk}
	return items, &StatusREST{items: items}
}

// StatusREST serves inboxitems/status: get, update and patch, with the
// same rules as the main resource, for clients that write status through
// the subresource as they would on any other kind.
type StatusREST struct{ items *REST }

func (s *StatusREST) New() runtime.Object   { return &inboxv1.InboxItem{} }
func (s *StatusREST) Destroy()              {}
func (s *StatusREST) NamespaceScoped() bool { return true }
func (s *StatusREST) Get(ctx context.Context, name string, opts *metav1.GetOptions) (runtime.Object, error) {
	return s.items.Get(ctx, name, opts)
}
func (s *StatusREST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, forceAllowCreate bool, opts *metav1.UpdateOptions) (runtime.Object, bool, error) {
	return s.items.Update(ctx, name, objInfo, createValidation, updateValidation, forceAllowCreate, opts)
}

var _ rest.Patcher = &StatusREST{}

var (
	_ rest.Storage              = &REST{}
	_ rest.Scoper               = &REST{}
	_ rest.SingularNameProvider = &REST{}
	_ rest.Getter               = &REST{}
	_ rest.Lister               = &REST{}
	_ rest.Watcher              = &REST{}
	_ rest.Patcher              = &REST{}
	_ rest.ShortNamesProvider   = &REST{}
	_ rest.CategoriesProvider   = &REST{}
)

func (s *REST) New() runtime.Object     { return &inboxv1.InboxItem{} }
func (s *REST) NewList() runtime.Object { return &inboxv1.InboxItemList{} }
func (s *REST) Destroy()                {}
func (s *REST) NamespaceScoped() bool   { return true }
func (s *REST) GetSingularName() string { return "inboxitem" }
func (s *REST) ShortNames() []string    { return []string{"inbox"} }
func (s *REST) Categories() []string    { return []string{"herald"} }
func (s *REST) ConvertToTable(ctx context.Context, obj runtime.Object, opts runtime.Object) (*metav1.Table, error) {
	return convertToTable(obj, s.clock.Now())
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

func (s *REST) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
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
func (s *REST) List(ctx context.Context, opts *metainternalversion.ListOptions) (runtime.Object, error) {
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

// Update applies a PUT or PATCH of an item: only status.read,
// status.archived and status.response can change. The change is written to
// the delivery's status as a merge patch of the fields that change, with
// the delivery's resourceVersion as precondition, so it never overwrites
// what the delivery controller writes there. When someone else wrote in
// between, it is retried on the delivery read live: a patch is re-applied
// to it; a PUT carrying a resourceVersion fails instead, as it would on any
// Kubernetes object. The answer comes once the change is back in the hub.
func (s *REST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, _ rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, _ bool, opts *metav1.UpdateOptions) (runtime.Object, bool, error) {
	dryRun := opts != nil && len(opts.DryRun) > 0
	out, _, err := s.update(ctx, caller(ctx), genericapirequest.NamespaceValue(ctx), name, objInfo, updateValidation, dryRun, true)
	if err != nil {
		return nil, false, err
	}
	return out, false, nil
}

// update writes one item of user; wait says whether to wait for the change
// to come back into the hub (a bulk action waits once, for all its
// writes). It returns the item as written and the resourceVersion written
// (0 when nothing was).
func (s *REST) update(ctx context.Context, user, ns, name string, objInfo rest.UpdatedObjectInfo, updateValidation rest.ValidateObjectUpdateFunc, dryRun, wait bool) (*inboxv1.InboxItem, uint64, error) {
	d := s.hub.Delivery(user, ns, name)
	if d == nil {
		return nil, 0, notFound(name)
	}
	var out *inboxv1.InboxItem
	var written uint64
	first := true
	// retry.OnError rather than RetryOnConflict: an answer that differs
	// from the recorded one, and a PUT whose resourceVersion is stale
	// against the live delivery, are 409 Conflicts too, and final.
	err := retry.OnError(retry.DefaultRetry, isRetriable, func() error {
		if !first {
			// The cache can lag; on a retry read the delivery live.
			var live notifyv1.ChannelDelivery
			if err := s.writer.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &live); err != nil {
				if apierrors.IsNotFound(err) {
					return notFound(name)
				}
				return err
			}
			d = &live
		}
		var err error
		out, written, err = s.write(ctx, d, user, objInfo, updateValidation, dryRun, first)
		first = false
		return err
	})
	var r retriable
	if errors.As(err, &r) {
		err = r.err // out of attempts
	}
	if err != nil {
		return nil, 0, err
	}
	if wait && written > 0 {
		// Wait for the write to come back through the watch, so the
		// caller's next read (and its SSE streams) already show it.
		s.hub.WaitFor(ctx, written, hub.CatchUpTimeout)
	}
	return out, written, nil
}

// retriable marks an attempt that failed because the delivery it started
// from was not current: the write conflicted with another writer's (the
// controller, another replica, another tab), or the caller's
// resourceVersion is newer than the cache's. Update tries again on the
// delivery read live.
type retriable struct{ err error }

func (r retriable) Error() string { return r.err.Error() }

func isRetriable(err error) bool {
	var r retriable
	return errors.As(err, &r)
}

// write makes one attempt at an update, based on d; cached says d comes
// from the hub rather than from a live read. It returns the item as
// written (or as it would be, on a dry run, or unchanged when nothing
// changes).
func (s *REST) write(ctx context.Context, d *notifyv1.ChannelDelivery, user string, objInfo rest.UpdatedObjectInfo, updateValidation rest.ValidateObjectUpdateFunc, dryRun, cached bool) (*inboxv1.InboxItem, uint64, error) {
	// A snoozed item can be written too: that is how it is unsnoozed.
	if view.Owner(d) != user || !view.Live(d, s.clock.Now()) {
		return nil, 0, notFound(d.Name)
	}
	old := view.Item(d)
	obj, err := objInfo.UpdatedObject(ctx, old.DeepCopy())
	if err != nil {
		return nil, 0, err
	}
	upd, ok := obj.(*inboxv1.InboxItem)
	if !ok {
		return nil, 0, apierrors.NewBadRequest(fmt.Sprintf("expected an InboxItem, got %T", obj))
	}
	if upd.ResourceVersion != "" && upd.ResourceVersion != old.ResourceVersion {
		conflict := apierrors.NewConflict(itemsResource, d.Name,
			fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
		if cached {
			return nil, 0, retriable{conflict} // the cache may be behind the caller; compare live
		}
		return nil, 0, conflict
	}
	if updateValidation != nil {
		if err := updateValidation(ctx, upd, old); err != nil {
			return nil, 0, err
		}
	}
	next, err := applyStatus(d, old, upd, user, s.clock.Now())
	switch {
	case err != nil:
		return nil, 0, err
	case next == nil:
		return old, 0, nil // nothing changed
	case dryRun:
		return view.Item(next), 0, nil
	}
	// Only what applyStatus changed (readTime, archivedTime, response) is
	// sent, with d's resourceVersion as precondition.
	if _, err := patch.NewHelper(d, s.writer, patch.InboxFieldOwner).Patch(ctx, next, patch.WithOptimisticLock()); err != nil {
		switch {
		case apierrors.IsConflict(err):
			return nil, 0, retriable{err}
		case apierrors.IsNotFound(err):
			return nil, 0, notFound(d.Name)
		}
		return nil, 0, err
	}
	rv, _ := hub.ParseRV(next.ResourceVersion)
	return view.Item(next), rv, nil
}
