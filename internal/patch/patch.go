// Package patch is the one way Herald writes the status of its objects.
//
// A Helper takes a copy of an object's status when a reconcile (or an inbox
// request) reads it, and later writes only the status fields that changed
// since, as a JSON merge patch on the status subresource (computed with
// github.com/evanphx/json-patch, as controller-runtime's client.MergeFrom
// does, but over the status alone). Two writers of one object therefore never
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
	"reflect"

	jsonpatch "github.com/evanphx/json-patch/v5"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Field managers, so that managedFields (kubectl get --show-managed-fields)
// say which part of Herald wrote what.
const (
	ControllerFieldOwner = "herald-controller"
	InboxFieldOwner      = "herald-inbox"
	// ReceiverFieldOwner writes a delivery's status.receipt, and the
	// failure a receipt reports (herald receiver).
	ReceiverFieldOwner = "herald-receiver"
)

// Helper writes the status changes of one object. It keeps the status as
// JSON, not a copy of the whole object: a delivery's spec (its rendered
// content) is most of it and is never written here, and a reconcile that
// changes nothing then costs one small encoding.
type Helper struct {
	client client.Client
	owner  string
	// resourceVersion and status are obj's when the helper took them.
	resourceVersion string
	status          []byte
	err             error
}

// NewHelper remembers obj's status as it is now; a later Patch writes what
// changed.
func NewHelper(obj client.Object, c client.Client, fieldOwner string) *Helper {
	h := &Helper{client: c, owner: fieldOwner}
	h.Reset(obj)
	return h
}

// Reset makes obj's status the helper's copy, as after a fresh read.
func (h *Helper) Reset(obj client.Object) {
	h.resourceVersion = obj.GetResourceVersion()
	h.status, h.err = statusJSON(obj)
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
	if h.err != nil {
		return false, h.err
	}
	after, err := statusJSON(obj)
	if err != nil {
		return false, err
	}
	data, err := statusPatch(h.status, after, h.resourceVersion, o.optimisticLock)
	if err != nil || data == nil {
		return false, err
	}
	if err := h.client.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, data), client.FieldOwner(h.owner)); err != nil {
		return false, err
	}
	h.Reset(obj)
	return true, nil
}

// statusJSON encodes the Status field of one of Herald's API objects.
func statusJSON(obj client.Object) ([]byte, error) {
	v := reflect.ValueOf(obj)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil, fmt.Errorf("patch: %T is not a struct", obj)
	}
	f := v.FieldByName("Status")
	if !f.IsValid() {
		return nil, fmt.Errorf("patch: %T has no Status field", obj)
	}
	b, err := json.Marshal(f.Interface())
	if err != nil {
		return nil, fmt.Errorf("encoding the status of %T: %w", obj, err)
	}
	return b, nil
}

// statusPatch is the merge patch from the status before to the status
// after, wrapped as an object's patch, with the resourceVersion precondition
// when asked; nil when nothing changed.
//
// A nested object of the status that changed is sent whole, from after,
// not as the difference: a merge patch would otherwise send only its
// changed fields, and where the object does not exist on the server yet
// (a Notification's first status.deliveries) the fields left out, zero on
// both sides here, would be missing there and fail the CRD's required
// rules. Like a list, such an object has one writer.
func statusPatch(before, after []byte, resourceVersion string, lock bool) ([]byte, error) {
	diff, err := jsonpatch.CreateMergePatch(before, after)
	if err != nil {
		return nil, fmt.Errorf("computing status patch: %w", err)
	}
	var changed map[string]json.RawMessage
	if err := json.Unmarshal(diff, &changed); err != nil {
		return nil, fmt.Errorf("reading status patch: %w", err)
	}
	if len(changed) == 0 {
		return nil, nil
	}
	var whole map[string]json.RawMessage
	for key, v := range changed {
		if len(v) == 0 || v[0] != '{' {
			continue
		}
		if whole == nil {
			if err := json.Unmarshal(after, &whole); err != nil {
				return nil, fmt.Errorf("reading status: %w", err)
			}
		}
		changed[key] = whole[key]
	}
	out := map[string]any{"status": changed}
	if lock {
		out["metadata"] = map[string]string{"resourceVersion": resourceVersion}
	}
	return json.Marshal(out)
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
