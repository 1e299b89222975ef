// Package stream serves a caller's inbox as Server-Sent Events, at
// /apis/inbox.herald.dev/v1alpha1/[namespaces/NS/]stream, from the events of
// the inbox hub.
package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/utils/clock"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	"github.com/herald-dev/herald/internal/inbox/hub"
)

// Resource is the path segment of the SSE stream. kube-apiserver
// (and this server) parse /apis/inbox.herald.dev/v1alpha1/[namespaces/NS/]stream
// as a request for the resource "stream" of this group, so RBAC grants it
// like a resource: verbs list (plain GET) and watch (GET ?watch=1).
const Resource = "stream"

// DefaultHeartbeat is how often an idle stream gets a comment line, to keep
// proxies and load balancers from closing it.
const DefaultHeartbeat = 15 * time.Second

// Hub is what the stream needs of the inbox hub (*hub.Hub): to wait for a
// resourceVersion a client brings, and to follow the caller's events.
type Hub interface {
	Counts(user, namespace string) (*inboxv1.InboxCounts, uint64, error)
	WaitFor(ctx context.Context, rv uint64, timeout time.Duration) bool
	Subscribe(user, namespace string, cursor *uint64) (*hub.Subscription, hub.Start, error)
	Unsubscribe(*hub.Subscription)
}

// Handler serves the caller's inbox as Server-Sent Events.
//
// Every event has an id: the resourceVersion of the delivery change it
// shows. A client that reconnects with Last-Event-ID (or ?since=) gets
// exactly the events after that id that this replica still retains; when
// it retains nothing that old, or the id is one it cannot place, the first
// event is a reset carrying the full inbox. Because ids are
// resourceVersions, any replica can resume a stream another one served.
type Handler struct {
	hub       Hub
	heartbeat time.Duration
	clock     clock.WithTicker
	log       logr.Logger
}

// NewHandler returns the stream handler; heartbeat must be positive. clk
// paces (and dates) the heartbeats.
func NewHandler(h Hub, heartbeat time.Duration, clk clock.WithTicker, log logr.Logger) *Handler {
	return &Handler{hub: h, heartbeat: heartbeat, clock: clk, log: log}
}

// IsRequest reports whether ri asks for the stream: the resource "stream"
// of the inbox group, in one namespace or all.
func IsRequest(ri *genericapirequest.RequestInfo) bool {
	return ri != nil && ri.IsResourceRequest && ri.APIGroup == inboxv1.GroupName &&
		ri.APIVersion == inboxv1.GroupVersion.Version && ri.Resource == Resource &&
		ri.Name == "" && ri.Subresource == ""
}

func (s *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "the inbox stream only answers GET", http.StatusMethodNotAllowed)
		return
	}
	ctx := r.Context()
	var user, namespace string
	if u, ok := genericapirequest.UserFrom(ctx); ok {
		user = u.GetName()
	}
	if ri, ok := genericapirequest.RequestInfoFrom(ctx); ok {
		namespace = ri.Namespace
	}
	if user == "" {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}

	var cursor *uint64
	raw := r.Header.Get("Last-Event-ID")
	if raw == "" {
		raw = r.URL.Query().Get("since")
	}
	if raw != "" {
		v, err := strconv.ParseUint(raw, 10, 64)
		if err != nil {
			http.Error(w, fmt.Sprintf("invalid event id %q: ids are decimal numbers", raw), http.StatusBadRequest)
			return
		}
		cursor = &v
		// An id from a replica that is ahead of this one: wait for this
		// one to catch up, or start over with a reset.
		if !s.hub.WaitFor(ctx, v, hub.CatchUpTimeout) {
			cursor = nil
		}
	}
	// ?counts=true adds a counts event whenever the caller's counts change.
	withCounts, _ := strconv.ParseBool(r.URL.Query().Get("counts"))
	sub, start, err := s.hub.Subscribe(user, namespace, cursor)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer s.hub.Unsubscribe(sub)
	var lastCounts *inboxv1.InboxCounts
	// counts writes a counts event when the counts differ from the last
	// ones sent. It is called when no hub event is pending, so a burst of
	// changes (a bulk action) sends one counts event, not one per item.
	counts := func(buf *bytes.Buffer) error {
		if !withCounts || len(sub.Events) > 0 {
			return nil
		}
		c, _, err := s.hub.Counts(user, namespace)
		if err != nil || (lastCounts != nil && equality.Semantic.DeepEqual(c, lastCounts)) {
			return nil
		}
		lastCounts = c
		return writeCounts(buf, c)
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	// nginx and similar proxies buffer responses unless told not to.
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)

	var buf bytes.Buffer
	if start.HasSnap {
		reason := "Initial"
		if raw != "" {
			reason = "CursorNotRetained"
		}
		list := &inboxv1.InboxItemList{
			TypeMeta: metav1.TypeMeta{APIVersion: inboxv1.GroupVersion.String(), Kind: "InboxItemList"},
			ListMeta: metav1.ListMeta{ResourceVersion: strconv.FormatUint(start.SnapshotID, 10)},
			Items:    make([]inboxv1.InboxItem, 0, len(start.Snapshot)),
		}
		for _, it := range start.Snapshot {
			list.Items = append(list.Items, *it)
		}
		fmt.Fprintf(&buf, ": reset reason=%s\n", reason)
		if err := writeEvent(&buf, start.SnapshotID, hub.EventReset, list); err != nil {
			s.log.Error(err, "encoding inbox snapshot")
			return
		}
	}
	for _, ev := range start.Replay {
		if err := writeHubEvent(&buf, ev); err != nil {
			s.log.Error(err, "encoding inbox event")
			return
		}
	}
	if err := counts(&buf); err != nil {
		s.log.Error(err, "encoding inbox counts")
		return
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		return
	}

	// Options.Validate has made sure the interval is positive.
	ticker := s.clock.NewTicker(s.heartbeat)
	defer ticker.Stop()
	for {
		buf.Reset()
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-sub.Events:
			if !ok {
				// Dropped by the hub: the client reconnects with its last
				// id and resumes or gets a reset.
				return
			}
			if err := writeHubEvent(&buf, ev); err != nil {
				s.log.Error(err, "encoding inbox event")
				return
			}
			if err := counts(&buf); err != nil {
				s.log.Error(err, "encoding inbox counts")
				return
			}
			if buf.Len() == 0 {
				continue
			}
		case now := <-ticker.C():
			fmt.Fprintf(&buf, ": heartbeat %s\n\n", now.UTC().Format(time.RFC3339))
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// writeHubEvent writes ev as an SSE event, or nothing when the reader
// would see no change.
func writeHubEvent(buf *bytes.Buffer, ev *hub.Event) error {
	typ := ev.Type()
	switch typ {
	case "":
		return nil
	case hub.EventRemove:
		return writeEvent(buf, ev.ID, typ, ev.Old)
	default:
		return writeEvent(buf, ev.ID, typ, ev.New)
	}
}

// EventCounts is the SSE event type of an InboxCounts, sent on streams
// opened with ?counts=true. It has no id: it is derived from the events
// around it, and resuming from an item event brings the counts again.
const EventCounts = "counts"

func writeCounts(buf *bytes.Buffer, c *inboxv1.InboxCounts) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	fmt.Fprintf(buf, "event: %s\ndata: %s\n\n", EventCounts, data)
	return nil
}

// writeEvent writes one event: id, type and a one-line JSON payload.
func writeEvent(buf *bytes.Buffer, id uint64, typ string, payload any) error {
	data, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	fmt.Fprintf(buf, "id: %d\nevent: %s\ndata: %s\n\n", id, typ, data)
	return nil
}
