package inboxitem

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/utils/clock"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	"github.com/herald-dev/herald/internal/inbox/hub"
)

// bookmarkInterval is how often an idle watch that asked for bookmarks
// gets one.
const bookmarkInterval = time.Minute

// Watch follows the caller's items. resourceVersion semantics are those
// of kube-apiserver: unset or "0" starts with the current items as ADDED
// events; a version replays what followed it, or fails with 410 Gone when
// it is older than the retained history, so informers relist.
func (s *REST) Watch(ctx context.Context, opts *metainternalversion.ListOptions) (watch.Interface, error) {
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
		clock:     s.clock,
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
	hub       Hub
	clock     clock.WithTicker
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
		// Stopped matching: the last state, at the event's version (the hub
		// gives an item that left the resourceVersion of its removal).
		gone := ev.Old
		if ev.New != nil {
			gone = ev.New
		}
		return watch.Event{Type: watch.Deleted, Object: gone.DeepCopy()}, true
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
		t := w.clock.NewTicker(bookmarkInterval)
		defer t.Stop()
		tick = t.C()
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
