// Package hub keeps one replica's inbox: every in-app ChannelDelivery, fed
// by a reflector in resourceVersion order, the items visible to each user,
// and a ring of recent events from which watches and SSE streams resume.
// The REST storage (registry/inboxitem) and the SSE handler (stream) read
// from it through small interfaces of their own.
package hub

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/inbox/view"
)

// byUsername indexes deliveries by the user whose inbox shows them.
const byUsername = "username"

// CatchUpTimeout bounds how long a write waits for its own change to come
// back through the watch, and a reader for a resourceVersion it was given
// by another replica (see WaitFor).
const CatchUpTimeout = 5 * time.Second

// subscriberBuffer is how many events a slow reader may fall behind before
// the hub drops it; a dropped stream or watch resumes from its last id.
// It is allocated whole for every subscriber (8 bytes an event): 256 holds
// a full bulk action (inboxitem.MaxBulkItems) with room to spare, and costs
// 2 KiB a subscriber where 1024 cost 8 KiB (docs/performance.md).
const subscriberBuffer = 256

// Event is one change to one user's inbox. Its ID is the resourceVersion
// of the ChannelDelivery change it comes from, so the ids of a user's
// events increase strictly and mean the same on every replica, which all
// watch the same deliveries. An expiry is not a delivery change: its event
// takes the hub's current resourceVersion as id.
type Event struct {
	ID        uint64
	User      string
	Namespace string
	Name      string
	// Old and New are the item before and after; nil when it was or is not
	// visible. An item that leaves is Old with the resourceVersion of the
	// change that removed it (ID). They are shared and must not be
	// modified.
	Old, New *inboxv1.InboxItem
	// Expired is set on the event that removes an item at its expiresAt.
	Expired bool
	// Woken is set on the event that brings a snoozed item back.
	Woken bool

	typ string // set once, when the hub publishes the event
}

// SSE event types.
const (
	EventItem   = "item"
	EventUpdate = "update"
	EventRemove = "remove"
	EventReset  = "reset"
)

// Type is the SSE event type of e, or "" when nothing a reader sees changed
// (a delivery write the inbox does not show; watches still see it as
// MODIFIED, because the item's resourceVersion changed). The hub works it
// out once, when it publishes e, for all its readers.
func (e *Event) Type() string { return e.typ }

func classify(before, after *inboxv1.InboxItem) string {
	switch {
	case before == nil && after != nil:
		return EventItem
	case before != nil && after == nil:
		return EventRemove
	case before != nil && after != nil && !view.Same(before, after):
		return EventUpdate
	}
	return ""
}

type shownItem struct {
	user  string
	item  *inboxv1.InboxItem
	timer clock.Timer
}

// Subscription receives the events of one user, optionally of one
// namespace. The hub closes Events when it drops the subscription: on
// overflow, on a relist (the history before it is gone), on Shutdown or on
// Unsubscribe.
type Subscription struct {
	// Events carries the live events that follow the subscription's Start.
	Events <-chan *Event

	user      string
	namespace string
	ch        chan *Event
}

// Start is where a subscription begins: either the events after the
// caller's cursor, or a snapshot of the inbox as of SnapshotID.
type Start struct {
	// Replay holds the retained events after the cursor, oldest first.
	Replay []*Event
	// Snapshot is set (possibly empty) when there was no cursor or the
	// cursor was older than the retained history (Reset).
	Snapshot   []*inboxv1.InboxItem
	HasSnap    bool
	Reset      bool
	SnapshotID uint64
}

// ErrNotSynced is returned before the first list of deliveries arrived,
// ErrShutdown once the server is stopping.
var (
	ErrNotSynced = errors.New("the inbox cache has not synced yet")
	ErrShutdown  = errors.New("the inbox server is shutting down")
)

// Hub is the inbox's source of truth on one replica. A reflector feeds it
// every in-app ChannelDelivery in resourceVersion order (it is the
// reflector's store, so relists arrive whole, as one Replace); it keeps the
// deliveries indexed by username, the items currently visible, and a ring
// of recent events from which watches and SSE streams resume.
//
// Reads are served from the hub and not from a shared informer's cache,
// because a shared informer's store runs ahead of its event handlers: a
// list taken from it could not say which resourceVersion it reflects, and
// a stream resumed from that version would repeat or miss events.
type Hub struct {
	clock clock.WithDelayedExecution
	log   logr.Logger
	size  int

	mu         sync.Mutex
	deliveries cache.Indexer
	shown      map[string]*shownItem
	snoozed    map[string]*snoozedItem // live items hidden until a time
	tallies    map[string]*tally       // counts, by user
	ring       []*Event                // circular, ringLen events from ringStart
	ringStart  int
	ringLen    int
	floor      uint64 // the oldest cursor the ring can resume from
	head       uint64 // the resourceVersion the hub reflects
	synced     bool
	closed     bool
	subs       map[string]map[*Subscription]struct{} // by user
	advanced   chan struct{}                         // closed when head moves
}

// New returns a hub that keeps the last history events.
func New(history int, clk clock.WithDelayedExecution, log logr.Logger) *Hub {
	if history < 1 {
		history = 1
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Hub{
		clock: clk,
		log:   log,
		size:  history,
		deliveries: cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{
			byUsername: func(obj any) ([]string, error) {
				if u := view.Owner(obj.(*notifyv1.ChannelDelivery)); u != "" {
					return []string{u}, nil
				}
				return nil, nil
			},
		}),
		shown:    map[string]*shownItem{},
		snoozed:  map[string]*snoozedItem{},
		tallies:  map[string]*tally{},
		ring:     make([]*Event, history),
		subs:     map[string]map[*Subscription]struct{}{},
		advanced: make(chan struct{}),
	}
}

// Run feeds the hub from lw until ctx ends.
func (h *Hub) Run(ctx context.Context, lw cache.ListerWatcher) {
	r := cache.NewReflectorWithOptions(lw, &notifyv1.ChannelDelivery{}, h, cache.ReflectorOptions{Name: "inbox-channeldeliveries"})
	r.RunWithContext(ctx)
}

// HasSynced reports whether the first list of deliveries has arrived.
func (h *Hub) HasSynced() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.synced
}

// WaitForSync blocks until HasSynced or ctx ends.
func (h *Hub) WaitForSync(ctx context.Context) error {
	if !h.waitUntil(ctx, nil, func() bool { return h.synced }) {
		return ctx.Err()
	}
	return nil
}

// Head returns the resourceVersion the hub reflects.
func (h *Hub) Head() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.head
}

// WaitFor blocks until the hub reflects rv, up to timeout. It reports
// whether it does.
func (h *Hub) WaitFor(ctx context.Context, rv uint64, timeout time.Duration) bool {
	t := h.clock.NewTimer(timeout)
	defer t.Stop()
	return h.waitUntil(ctx, t.C(), func() bool { return h.synced && h.head >= rv })
}

// waitUntil blocks until cond, checked under the lock whenever the hub
// advances, holds (true), or until ctx ends or timeout fires (false).
func (h *Hub) waitUntil(ctx context.Context, timeout <-chan time.Time, cond func() bool) bool {
	for {
		h.mu.Lock()
		ok, ch := cond(), h.advanced
		h.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-timeout:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// --- cache.ReflectorStore: called by the reflector's goroutine, in order.

func (h *Hub) Add(obj any) error    { return h.apply(obj, false) }
func (h *Hub) Update(obj any) error { return h.apply(obj, false) }
func (h *Hub) Delete(obj any) error { return h.apply(obj, true) }
func (h *Hub) Resync() error        { return nil }

// Replace installs a full list taken at resourceVersion rv: the first one,
// or a relist after the watch fell too far behind. The events between the
// hub's last state and the list are unknown, so the history restarts at rv
// and every open stream and watch is closed; they resume from their last
// id, find it older than the history, and get a fresh snapshot.
func (h *Hub) Replace(list []any, rv string) error {
	v, err := ParseRV(rv)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.deliveries.Replace(list, rv); err != nil {
		return err
	}
	for key := range h.shown {
		h.hideLocked(key)
	}
	for key := range h.snoozed {
		h.unsnoozeLocked(key)
	}
	now := h.clock.Now()
	for _, obj := range list {
		d := obj.(*notifyv1.ChannelDelivery)
		key := keyOf(d.Namespace, d.Name)
		switch {
		case view.Visible(d, now):
			h.showLocked(key, view.Owner(d), view.Item(d))
		case view.Live(d, now):
			h.snoozeLocked(key, d, now)
		}
	}
	if h.synced {
		h.log.Info("relisted deliveries; inbox history restarts", "resourceVersion", rv)
	}
	h.head = max(h.head, v)
	h.restartHistoryLocked()
	h.synced = true
	h.advanceLocked()
	return nil
}

// Bookmark and UpdateResourceVersion move the head on bookmarks, so lists
// and snapshots carry a current resourceVersion even when no in-app
// delivery changes.
func (h *Hub) Bookmark(rv string) error {
	h.UpdateResourceVersion(rv)
	return nil
}

func (h *Hub) UpdateResourceVersion(rv string) {
	v, err := ParseRV(rv)
	if err != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.synced && v > h.head {
		h.head = v
		h.advanceLocked()
	}
}

func (h *Hub) apply(obj any, deleted bool) error {
	d, ok := obj.(*notifyv1.ChannelDelivery)
	if !ok {
		return fmt.Errorf("unexpected object %T", obj)
	}
	rv, err := ParseRV(d.ResourceVersion)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if rv <= h.head {
		// A watch delivers changes in resourceVersion order. One that is
		// not newer than what the hub reflects means the history is not
		// what clients were told; start it over rather than replay a
		// wrong one.
		h.log.Info("delivery change out of resourceVersion order; inbox history restarts", "delivery", keyOf(d.Namespace, d.Name), "resourceVersion", rv, "head", h.head)
		h.restartHistoryLocked()
	} else {
		h.head = rv
	}
	key := keyOf(d.Namespace, d.Name)
	old := h.shown[key]
	h.hideLocked(key)
	h.unsnoozeLocked(key)
	var item *inboxv1.InboxItem
	if deleted {
		if err := h.deliveries.Delete(d); err != nil {
			return err
		}
	} else {
		if err := h.deliveries.Update(d); err != nil {
			return err
		}
		now := h.clock.Now()
		switch {
		case view.Visible(d, now):
			item = view.Item(d)
			h.showLocked(key, view.Owner(d), item)
		case view.Live(d, now):
			h.snoozeLocked(key, d, now)
		}
	}
	if old != nil || item != nil {
		ev := &Event{ID: rv, User: view.Owner(d), Namespace: d.Namespace, Name: d.Name, New: item}
		if old != nil {
			ev.Old, ev.User = old.item, old.user
		}
		if ev.New == nil {
			// The item leaves (its delivery was deleted, or stopped being
			// visible) with the resourceVersion of that change, which is
			// also the event's id.
			gone := ev.Old.DeepCopy()
			gone.ResourceVersion = d.ResourceVersion
			ev.Old = gone
		}
		h.publishLocked(ev)
	}
	h.advanceLocked()
	return nil
}

// showLocked makes item visible and arms its expiry.
func (h *Hub) showLocked(key, user string, item *inboxv1.InboxItem) {
	s := &shownItem{user: user, item: item}
	if at := item.Spec.ExpiresAt; at != nil {
		s.timer = h.clock.AfterFunc(at.Sub(h.clock.Now()), func() { h.expire(key, item) })
	}
	h.shown[key] = s
	h.tallyLocked(user).add(item, 1)
}

func (h *Hub) hideLocked(key string) {
	if s := h.shown[key]; s != nil {
		if s.timer != nil {
			s.timer.Stop()
		}
		delete(h.shown, key)
		h.tallyLocked(s.user).add(s.item, -1)
		h.pruneTallyLocked(s.user)
	}
}

// snoozedItem is a live delivery hidden until its snoozedUntil.
type snoozedItem struct {
	user      string
	namespace string
	category  string
	typ       string
	timer     clock.Timer
}

// snoozeLocked keeps a snoozed delivery out of sight and arms the timer
// that brings it back, like an expiry in reverse.
func (h *Hub) snoozeLocked(key string, d *notifyv1.ChannelDelivery, now time.Time) {
	s := &snoozedItem{user: view.Owner(d), namespace: d.Namespace,
		category: d.Spec.Content.Category, typ: string(d.Spec.Content.Type)}
	rv := d.ResourceVersion
	// The wake takes the hub's lock and reads the clock, so it runs on its
	// own goroutine, as the real clock's timers do anyway: a fake clock
	// calls timer functions while holding its own lock.
	s.timer = h.clock.AfterFunc(d.Status.SnoozedUntil.Sub(now), func() { go h.wake(key, rv) })
	h.snoozed[key] = s
	h.tallyLocked(s.user).addSnoozed(s, 1)
}

func (h *Hub) unsnoozeLocked(key string) {
	if s := h.snoozed[key]; s != nil {
		if s.timer != nil {
			s.timer.Stop()
		}
		delete(h.snoozed, key)
		h.tallyLocked(s.user).addSnoozed(s, -1)
		h.pruneTallyLocked(s.user)
	}
}

// wake brings a snoozed item back when its snoozedUntil is due, unless its
// delivery changed meanwhile (the change armed a timer of its own). Like an
// expiry, its event takes the hub's current resourceVersion as id; the
// item keeps its delivery's resourceVersion, so writes to it work as usual.
func (h *Hub) wake(key, rv string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.snoozed[key] == nil {
		return
	}
	obj, ok, _ := h.deliveries.GetByKey(key)
	if !ok {
		return
	}
	d := obj.(*notifyv1.ChannelDelivery)
	if d.ResourceVersion != rv {
		return
	}
	h.unsnoozeLocked(key)
	now := h.clock.Now()
	if !view.Visible(d, now) {
		if view.Live(d, now) { // woken early: wait on
			h.snoozeLocked(key, d, now)
		}
		return
	}
	item := view.Item(d)
	h.showLocked(key, view.Owner(d), item)
	h.publishLocked(&Event{ID: h.head, User: view.Owner(d), Namespace: d.Namespace, Name: d.Name, New: item, Woken: true})
}

// expire removes an item at its expiresAt, unless it changed meanwhile.
func (h *Hub) expire(key string, item *inboxv1.InboxItem) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.shown[key]
	if s == nil || s.item != item {
		return
	}
	s.timer = nil // fired; stopping it from its own callback could deadlock a fake clock
	h.hideLocked(key)
	gone := item.DeepCopy()
	gone.ResourceVersion = strconv.FormatUint(h.head, 10)
	h.publishLocked(&Event{ID: h.head, User: s.user, Namespace: item.Namespace, Name: item.Name, Old: gone, Expired: true})
}

// restartHistoryLocked forgets the ring: from now on only cursors at or
// after head can resume. Subscribers are closed, since the events they
// would need next are not known.
func (h *Hub) restartHistoryLocked() {
	for i := range h.ring {
		h.ring[i] = nil
	}
	h.ringStart, h.ringLen = 0, 0
	h.floor = h.head
	h.dropAllLocked()
}

func (h *Hub) publishLocked(ev *Event) {
	ev.typ = classify(ev.Old, ev.New)
	if h.ringLen == h.size {
		oldest := h.ring[h.ringStart]
		h.ring[h.ringStart] = nil
		h.ringStart = (h.ringStart + 1) % h.size
		h.ringLen--
		// A cursor before the evicted event would need it.
		h.floor = max(h.floor, oldest.ID)
	}
	h.ring[(h.ringStart+h.ringLen)%h.size] = ev
	h.ringLen++
	for sub := range h.subs[ev.User] {
		if sub.namespace != "" && sub.namespace != ev.Namespace {
			continue
		}
		select {
		case sub.ch <- ev:
		default:
			h.log.V(1).Info("inbox subscriber fell behind; closing it", "user", sub.user)
			h.dropLocked(sub)
		}
	}
}

func (h *Hub) advanceLocked() {
	close(h.advanced)
	h.advanced = make(chan struct{})
}

func (h *Hub) dropLocked(sub *Subscription) {
	set := h.subs[sub.user]
	if _, ok := set[sub]; !ok {
		return
	}
	delete(set, sub)
	if len(set) == 0 {
		delete(h.subs, sub.user)
	}
	close(sub.ch)
}

// Subscribe registers a reader of user's events (in namespace, or all when
// empty) and says where it starts: after cursor, replaying the retained
// events, or from a snapshot when cursor is nil or older than the history.
// A cursor ahead of the hub is an error: wait with WaitFor first.
func (h *Hub) Subscribe(user, namespace string, cursor *uint64) (*Subscription, Start, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, Start{}, ErrShutdown
	}
	if !h.synced {
		return nil, Start{}, ErrNotSynced
	}
	var st Start
	switch {
	case cursor == nil || *cursor < h.floor:
		st.Reset = cursor != nil
		st.HasSnap = true
		st.Snapshot = h.itemsLocked(user, namespace)
		st.SnapshotID = h.head
	case *cursor > h.head:
		return nil, Start{}, fmt.Errorf("resourceVersion %d is newer than this server's %d", *cursor, h.head)
	default:
		st.Replay = h.replayLocked(user, namespace, *cursor)
	}
	ch := make(chan *Event, subscriberBuffer)
	sub := &Subscription{Events: ch, user: user, namespace: namespace, ch: ch}
	if h.subs[user] == nil {
		h.subs[user] = map[*Subscription]struct{}{}
	}
	h.subs[user][sub] = struct{}{}
	return sub, st, nil
}

// Shutdown ends every stream and watch, and refuses new ones, so that the
// HTTP server's graceful shutdown is not held up by long-running requests;
// their clients reconnect to another replica and resume.
func (h *Hub) Shutdown() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	h.dropAllLocked()
}

// dropAllLocked closes every stream and watch; their clients resume from
// their last id.
func (h *Hub) dropAllLocked() {
	for _, set := range h.subs {
		for sub := range set {
			h.dropLocked(sub)
		}
	}
}

// Unsubscribe removes sub; its channel is closed.
func (h *Hub) Unsubscribe(sub *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropLocked(sub)
}

// Quiet returns the head when sub has nothing pending, for bookmarks: a
// bookmark must not claim a version whose events are still queued.
func (h *Hub) Quiet(sub *Subscription) (uint64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.head, len(sub.ch) == 0
}

func (h *Hub) replayLocked(user, namespace string, cursor uint64) []*Event {
	// The ring is sorted by id: find the first event after the cursor.
	first := sort.Search(h.ringLen, func(i int) bool {
		return h.ring[(h.ringStart+i)%h.size].ID > cursor
	})
	var out []*Event
	for i := first; i < h.ringLen; i++ {
		ev := h.ring[(h.ringStart+i)%h.size]
		if ev.User == user && (namespace == "" || ev.Namespace == namespace) {
			out = append(out, ev)
		}
	}
	return out
}

// List returns user's visible items (in namespace, or all when empty),
// sorted by namespace and name, and the resourceVersion they reflect.
func (h *Hub) List(user, namespace string) ([]*inboxv1.InboxItem, uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.synced {
		return nil, 0, ErrNotSynced
	}
	return h.itemsLocked(user, namespace), h.head, nil
}

func (h *Hub) itemsLocked(user, namespace string) []*inboxv1.InboxItem {
	keys, _ := h.deliveries.IndexKeys(byUsername, user)
	now := h.clock.Now()
	out := make([]*inboxv1.InboxItem, 0, len(keys))
	for _, key := range keys {
		s := h.shown[key]
		if s == nil || s.user != user || (namespace != "" && s.item.Namespace != namespace) || view.Expired(s.item.Spec.ExpiresAt, now) {
			continue
		}
		out = append(out, s.item)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Get returns the item namespace/name if user sees it. Anyone else gets
// nothing, exactly as for an item that does not exist.
func (h *Hub) Get(user, namespace, name string) (*inboxv1.InboxItem, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.synced {
		return nil, ErrNotSynced
	}
	key := keyOf(namespace, name)
	if z := h.snoozed[key]; z != nil && z.user == user {
		// Snoozed: out of lists, but its owner can still read it (and
		// unsnooze it).
		if obj, ok, _ := h.deliveries.GetByKey(key); ok {
			return view.Item(obj.(*notifyv1.ChannelDelivery)), nil
		}
	}
	s := h.shown[key]
	if s == nil || s.user != user || view.Expired(s.item.Spec.ExpiresAt, h.clock.Now()) {
		return nil, nil
	}
	return s.item, nil
}

// Delivery returns the cached delivery behind an item user sees, or has
// snoozed.
func (h *Hub) Delivery(user, namespace, name string) *notifyv1.ChannelDelivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := keyOf(namespace, name)
	s, z := h.shown[key], h.snoozed[key]
	if (s == nil || s.user != user) && (z == nil || z.user != user) {
		return nil
	}
	obj, ok, _ := h.deliveries.GetByKey(key)
	if !ok {
		return nil
	}
	return obj.(*notifyv1.ChannelDelivery)
}

func keyOf(namespace, name string) string { return namespace + "/" + name }

// ParseRV reads a resourceVersion as the number it is on an etcd-backed
// API server.
func ParseRV(rv string) (uint64, error) {
	v, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("resourceVersion %q is not a number: the inbox needs an etcd-backed API server, whose resourceVersions are comparable", rv)
	}
	return v, nil
}
