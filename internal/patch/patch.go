// Package patch is the one way Herald writes the status of its objects.
//
// A Helper takes a copy of an object when a reconcile (or an inbox request)
// reads it, and later writes only the status fields that changed since, as
// a JSON merge patch on the status subresource (controller-runtime's
// client.MergeFrom computes it). Two writers of one object therefore never
// overwrite each other's fields: the delivery controller writes a
// ChannelDelivery's phase, attempts and history, the inbox server its
// readTime, archivedTime and response, and neither sends the other's.
//
// Lists, conditions included, are replaced whole by a merge patch, so each
// kind's conditions have exactly one writer (its controller), which owns all
// of them; see api/notify/v1alpha1/conditions.go.
//
// A write that must not be based on a stale read (claiming a delivery,
// adding to counters, a status derived from the cache) asks for the
// optimistic lock: the patch then carries the resourceVersion that was
// read, and the API server answers 409 Conflict if the object changed
// since. Callers requeue on a conflict, or re-read and try again with
// k8s.io/client-go/util/retry; nothing here loops.
//
// Why not a library helper: Flux's and Cluster API's patch helpers write
// changed conditions in a request of their own before the rest of the
// status, which doubles the status writes of a Notification whose
// conditions change (most of them), and a status write is most of what a
// delivery costs the control plane (docs/performance.md). Server-side
// apply would need apply configurations for every kind and a field manager
// per writer for the same result; merge patches carry the same
// field-by-field ownership for Herald's two writers.
package patch

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Field managers, so that managedFields (kubectl get --show-managed-fields)
// say which part of Herald wrote what.
const (
	ControllerFieldOwner = "herald-controller"
	InboxFieldOwner      = "herald-inbox"
)

// Helper writes the status changes of one object.
type Helper struct {
	client client.Client
	owner  string
	before client.Object
}

// NewHelper remembers obj as it is now; a later Patch writes what changed.
func NewHelper(obj client.Object, c client.Client, fieldOwner string) *Helper {
	return &Helper{client: c, owner: fieldOwner, before: obj.DeepCopyObject().(client.Object)}
}

// Option changes one Patch.
type Option func(*options)

type options struct{ optimisticLock bool }

// WithOptimisticLock makes the write fail with a Conflict when the object
// changed since the helper's copy was taken (or last written).
func WithOptimisticLock() Option { return func(o *options) { o.optimisticLock = true } }

// Patch writes the status fields of obj that differ from the helper's copy.
// It sends nothing and returns false when the status is unchanged. On
// success obj holds the server's answer (its new resourceVersion) and the
// helper's copy is renewed, so one helper serves several writes in a row.
func (h *Helper) Patch(ctx context.Context, obj client.Object, opts ...Option) (bool, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	var p client.Patch = client.MergeFrom(h.before)
	if o.optimisticLock {
		p = client.MergeFromWithOptions(h.before, client.MergeFromWithOptimisticLock{})
	}
	data, err := p.Data(obj)
	if err != nil {
		return false, fmt.Errorf("computing status patch: %w", err)
	}
	status, err := statusOnly(data, obj)
	if err != nil || status == nil {
		return false, err
	}
	if err := h.client.Status().Patch(ctx, obj, client.RawPatch(p.Type(), status), client.FieldOwner(h.owner)); err != nil {
		return false, err
	}
	h.before = obj.DeepCopyObject().(client.Object)
	return true, nil
}

// Reset makes obj the helper's copy, as after a fresh read.
func (h *Helper) Reset(obj client.Object) {
	h.before = obj.DeepCopyObject().(client.Object)
}

// statusOnly keeps the status part of a merge patch and the
// resourceVersion precondition, or returns nil when status is unchanged.
// Changes a reconcile made to metadata or spec are not this helper's to
// write (the status subresource ignores them anyway).
//
// A nested object of the status that changed is sent whole, from after,
// not as the difference: a merge patch would otherwise send only its
// changed fields, and where the object does not exist on the server yet
// (a Notification's first status.deliveries) the fields left out, zero on
// both sides here, would be missing there and fail the CRD's required
// rules. Like a list, such an object has one writer.
func statusOnly(data []byte, obj client.Object) ([]byte, error) {
	var full struct {
		Metadata *struct {
			ResourceVersion string `json:"resourceVersion,omitempty"`
		} `json:"metadata,omitempty"`
		Status map[string]json.RawMessage `json:"status,omitempty"`
	}
	if err := json.Unmarshal(data, &full); err != nil {
		return nil, fmt.Errorf("reading status patch: %w", err)
	}
	if len(full.Status) == 0 {
		return nil, nil
	}
	var after map[string]json.RawMessage
	for key, v := range full.Status {
		if len(v) == 0 || v[0] != '{' {
			continue
		}
		if after == nil {
			var err error
			if after, err = statusOf(obj); err != nil {
				return nil, err
			}
		}
		full.Status[key] = after[key]
	}
	out := map[string]any{"status": full.Status}
	if full.Metadata != nil && full.Metadata.ResourceVersion != "" {
		out["metadata"] = map[string]string{"resourceVersion": full.Metadata.ResourceVersion}
	}
	return json.Marshal(out)
}

// statusOf returns the top-level fields of obj's status as JSON.
func statusOf(obj client.Object) (map[string]json.RawMessage, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", obj, err)
	}
	var whole struct {
		Status map[string]json.RawMessage `json:"status"`
	}
	if err := json.Unmarshal(raw, &whole); err != nil {
		return nil, fmt.Errorf("reading status of %T: %w", obj, err)
	}
	return whole.Status, nil
}

// RequeueOnConflict is how a reconciler ends on a failed status write: a
// Conflict means its read was stale, and the next reconcile reads again;
// any other error is returned, wrapped with what was being written.
func RequeueOnConflict(err error, what string) (ctrl.Result, error) {
	if apierrors.IsConflict(err) {
		return ctrl.Result{Requeue: true}, nil
	}
	return ctrl.Result{}, fmt.Errorf("writing %s: %w", what, err)
}
