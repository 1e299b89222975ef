package inboxitem_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/inbox/hub"
	"github.com/herald-dev/herald/internal/inbox/registry/inboxitem"
	"github.com/herald-dev/herald/internal/inbox/view"
	"github.com/herald-dev/herald/internal/patch"
)

// These tests run the storage against a fake hub (a map of cached
// deliveries, possibly stale) and controller-runtime's fake client; the
// envtest suite in internal/inbox runs it behind a real kube-apiserver.

// fakeHub serves items from deliveries as they were last cached.
type fakeHub struct {
	mu     sync.Mutex
	cached map[string]*notifyv1.ChannelDelivery
	waited []uint64
}

func newFakeHub(ds ...*notifyv1.ChannelDelivery) *fakeHub {
	h := &fakeHub{cached: map[string]*notifyv1.ChannelDelivery{}}
	for _, d := range ds {
		h.cache(d)
	}
	return h
}

func (h *fakeHub) cache(d *notifyv1.ChannelDelivery) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cached[d.Namespace+"/"+d.Name] = d.DeepCopy()
}

func (h *fakeHub) Delivery(user, namespace, name string) *notifyv1.ChannelDelivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	d := h.cached[namespace+"/"+name]
	if d == nil || view.Owner(d) != user {
		return nil
	}
	return d
}

func (h *fakeHub) Get(user, namespace, name string) (*inboxv1.InboxItem, error) {
	if d := h.Delivery(user, namespace, name); d != nil {
		return view.Item(d), nil
	}
	return nil, nil
}

func (h *fakeHub) List(user, namespace string) ([]*inboxv1.InboxItem, uint64, error) {
	return nil, 0, fmt.Errorf("not in this fake")
}

func (h *fakeHub) Head() uint64 { return 0 }

// WaitFor records what a write waited for: its change coming back.
func (h *fakeHub) WaitFor(_ context.Context, rv uint64, _ time.Duration) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.waited = append(h.waited, rv)
	return true
}

func (h *fakeHub) Subscribe(string, string, *uint64) (*hub.Subscription, hub.Start, error) {
	return nil, hub.Start{}, fmt.Errorf("not in this fake")
}
func (h *fakeHub) Unsubscribe(*hub.Subscription)          {}
func (h *fakeHub) Quiet(*hub.Subscription) (uint64, bool) { return 0, false }

var _ inboxitem.Hub = &fakeHub{}
var _ inboxitem.Hub = &hub.Hub{}

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func newDelivery() *notifyv1.ChannelDelivery {
	return &notifyv1.ChannelDelivery{
		ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "ns",
			Labels: map[string]string{notifyv1.LabelChannel: string(notifyv1.ChannelInApp)}},
		Spec: notifyv1.ChannelDeliverySpec{
			Notification: "n",
			Channel:      notifyv1.ChannelInApp,
			Recipient:    notifyv1.RecipientSnapshot{Name: "alice", Username: "alice"},
			Content:      notifyv1.RenderedContent{Type: notifyv1.TypeInformational, Title: "t"},
		},
		Status: notifyv1.ChannelDeliveryStatus{
			Phase:          notifyv1.DeliverySucceeded,
			Attempts:       1,
			CompletionTime: &metav1.MicroTime{Time: t0.Add(-26 * time.Hour)},
		},
	}
}

// fakeAPI is controller-runtime's fake client holding one delivery. It
// records the body of every status patch and counts reads, and can act
// as another writer right before a status patch lands.
type fakeAPI struct {
	client.Client
	patches []string
	gets    int
	// beforePatch, when set, runs before the n-th status patch (from 0)
	// with the client underneath, as another writer would.
	beforePatch func(c client.Client, n int)
}

// newClient returns a fake client holding d, and d read back from it (so
// that it has a resourceVersion).
func newClient(t *testing.T, d *notifyv1.ChannelDelivery) (*fakeAPI, *notifyv1.ChannelDelivery) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := notifyv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	api := &fakeAPI{}
	api.Client = fake.NewClientBuilder().WithScheme(scheme).WithObjects(d).
		WithStatusSubresource(&notifyv1.ChannelDelivery{}).
		WithInterceptorFuncs(interceptor.Funcs{
			Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
				api.gets++
				return c.Get(ctx, key, obj, opts...)
			},
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
				data, err := p.Data(obj)
				if err != nil {
					return err
				}
				if api.beforePatch != nil {
					api.beforePatch(c, len(api.patches))
				}
				api.patches = append(api.patches, string(data))
				return c.SubResource(sub).Patch(ctx, obj, p, opts...)
			},
		}).Build()
	d = get(t, api)
	api.gets = 0
	return api, d
}

func get(t *testing.T, c client.Client) *notifyv1.ChannelDelivery {
	t.Helper()
	var d notifyv1.ChannelDelivery
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "d"}, &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

func as(name string) context.Context {
	ctx := genericapirequest.WithNamespace(context.Background(), "ns")
	return genericapirequest.WithUser(ctx, &user.DefaultInfo{Name: name})
}

// patchOf changes the item the way a merge patch would: applied to the
// current item each time the storage asks.
func patchOf(change func(*inboxv1.InboxItem)) rest.UpdatedObjectInfo {
	return rest.DefaultUpdatedObjectInfo(nil, func(_ context.Context, _, old runtime.Object) (runtime.Object, error) {
		it := old.(*inboxv1.InboxItem).DeepCopy()
		change(it)
		return it, nil
	})
}

func markRead(it *inboxv1.InboxItem) { it.Status.Read = true }

// Every time the storage uses is the configured clock's: the times a
// write stamps, expiry, and table ages.
func TestStorageTellsTimeByItsClock(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	d := newDelivery()
	d.Spec.ExpiresAt = &metav1.Time{Time: t0.Add(time.Hour)}
	c, d := newClient(t, d)
	items, _ := inboxitem.NewREST(newFakeHub(d), c, clk)

	obj, _, err := items.Update(as("alice"), "d", patchOf(markRead), nil, nil, false, &metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := get(t, c).Status.ReadTime; got == nil || !got.Time.Equal(t0) {
		t.Fatalf("readTime: want %v, the clock's, got %v", t0, got)
	}
	table, err := items.ConvertToTable(context.Background(), obj, nil)
	if err != nil {
		t.Fatal(err)
	}
	if age := table.Rows[0].Cells[5]; age != "26h" {
		t.Fatalf("age: want 26h by the clock, got %v", age)
	}

	clk.Step(time.Hour) // the item expires
	_, _, err = items.Update(as("alice"), "d", patchOf(func(it *inboxv1.InboxItem) { it.Status.Archived = true }), nil, nil, false, &metav1.UpdateOptions{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("an expired item: want NotFound, got %v", err)
	}
}

// controllerWrite is the delivery controller writing its own status
// fields from the copy it read, with the patch helper as it does.
func controllerWrite(t *testing.T, c client.Client, from *notifyv1.ChannelDelivery) {
	t.Helper()
	d := from.DeepCopy()
	h := patch.NewHelper(d, c, patch.ControllerFieldOwner)
	d.Status.Attempts++
	d.Status.Reason = notifyv1.ReasonDelivered
	if _, err := h.Patch(context.Background(), d); err != nil {
		t.Fatal(err)
	}
}

// The controller writes its status fields between the inbox's read and its
// write: the inbox's write conflicts, is re-applied to the delivery read
// live, and both changes stand. Each patch carries only the inbox's field
// and the resourceVersion it was based on.
func TestInboxWriteKeepsAConcurrentControllerChange(t *testing.T) {
	c, d := newClient(t, newDelivery())
	h := newFakeHub(d)
	c.beforePatch = func(under client.Client, n int) {
		if n == 0 {
			controllerWrite(t, under, d)
		}
	}
	items, _ := inboxitem.NewREST(h, c, clocktesting.NewFakeClock(t0))

	obj, _, err := items.Update(as("alice"), "d", patchOf(markRead), nil, nil, false, &metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.patches) != 2 || c.gets != 1 {
		t.Fatalf("want a conflicting patch, one live read and a second patch; got patches %q and %d reads", c.patches, c.gets)
	}
	got := get(t, c)
	if got.Status.ReadTime == nil || got.Status.Attempts != 2 || got.Status.Reason != notifyv1.ReasonDelivered {
		t.Fatalf("a writer's change was lost: %+v", got.Status)
	}
	for i, want := range []string{d.ResourceVersion, strconv.Itoa(mustAtoi(t, d.ResourceVersion) + 1)} {
		var body map[string]any
		if err := json.Unmarshal([]byte(c.patches[i]), &body); err != nil {
			t.Fatal(err)
		}
		wantBody := map[string]any{
			"metadata": map[string]any{"resourceVersion": want},
			"status":   map[string]any{"readTime": "2026-11-29T12:00:00Z"},
		}
		if !reflect.DeepEqual(body, wantBody) {
			t.Fatalf("patch %d: want %v, got %s", i, wantBody, c.patches[i])
		}
	}
	if it := obj.(*inboxv1.InboxItem); !it.Status.Read || it.ResourceVersion != got.ResourceVersion {
		t.Fatalf("the answer must be the item as written, got %+v", it)
	}
	if len(h.waited) != 1 || strconv.FormatUint(h.waited[0], 10) != got.ResourceVersion {
		t.Fatalf("the write must wait for its own resourceVersion %s, waited for %v", got.ResourceVersion, h.waited)
	}
}

// The controller writes from a copy read before the inbox's write: its
// patch does not carry readTime, so the reader's mark stays.
func TestControllerWriteKeepsTheInboxChange(t *testing.T) {
	c, d := newClient(t, newDelivery())
	items, _ := inboxitem.NewREST(newFakeHub(d), c, clocktesting.NewFakeClock(t0))
	if _, _, err := items.Update(as("alice"), "d", patchOf(markRead), nil, nil, false, &metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	controllerWrite(t, c, d) // d is from before the inbox's write
	got := get(t, c)
	if got.Status.ReadTime == nil || got.Status.Attempts != 2 {
		t.Fatalf("a writer's change was lost: %+v", got.Status)
	}
}

// Conflicts that another try cannot resolve are answered at once: a
// different answer to an approval, and a PUT whose resourceVersion is
// stale against the live delivery (after one live read).
func TestFinalConflictsAreNotRetried(t *testing.T) {
	d := newDelivery()
	d.Spec.Content.Actions = []notifyv1.Action{{ID: "approve", Outcome: notifyv1.OutcomeApprove}, {ID: "reject", Outcome: notifyv1.OutcomeReject}}
	d.Status.Response = &notifyv1.InboxResponse{Action: "approve", Username: "alice", Time: metav1.NewTime(t0)}
	c, d := newClient(t, d)
	items, _ := inboxitem.NewREST(newFakeHub(d), c, clocktesting.NewFakeClock(t0))

	_, _, err := items.Update(as("alice"), "d", patchOf(func(it *inboxv1.InboxItem) {
		it.Status.Response = &inboxv1.InboxItemResponse{Action: "reject"}
	}), nil, nil, false, &metav1.UpdateOptions{})
	if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), "already answered") {
		t.Fatalf("want the answer-is-final conflict, got %v", err)
	}
	if c.gets != 0 || len(c.patches) != 0 {
		t.Fatalf("a final answer must not be retried: %d reads, %d patches", c.gets, len(c.patches))
	}

	stale := view.Item(d)
	stale.ResourceVersion = "1"
	stale.Status.Read = true
	_, _, err = items.Update(as("alice"), "d", rest.DefaultUpdatedObjectInfo(stale), nil, nil, false, &metav1.UpdateOptions{})
	if !apierrors.IsConflict(err) {
		t.Fatalf("want a conflict for a stale PUT, got %v", err)
	}
	if c.gets != 1 || len(c.patches) != 0 {
		t.Fatalf("a stale PUT is compared live once and refused: %d reads, %d patches", c.gets, len(c.patches))
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
