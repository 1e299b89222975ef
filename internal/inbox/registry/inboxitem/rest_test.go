package inboxitem_test

import (
	"context"
	"fmt"
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

// newClient returns a fake client holding d (read back, so that it has a
// resourceVersion), and records the body of every status patch.
func newClient(t *testing.T, d *notifyv1.ChannelDelivery) (client.Client, *notifyv1.ChannelDelivery, *[]string) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := notifyv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	var patches []string
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(d).
		WithStatusSubresource(&notifyv1.ChannelDelivery{}).
		WithInterceptorFuncs(interceptor.Funcs{
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
				data, err := p.Data(obj)
				if err != nil {
					return err
				}
				patches = append(patches, string(data))
				return c.SubResource(sub).Patch(ctx, obj, p, opts...)
			},
		}).Build()
	return c, get(t, c), &patches
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
	c, d, _ := newClient(t, d)
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
