package inboxitem_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/inbox/hub"
	"github.com/herald-dev/herald/internal/inbox/registry/inboxitem"
)

// bulkSetup is a real hub fed from a fake API server's writes, as the
// reflector would feed it, holding alice's n items (every third one in
// category security) and one of bob's.
type bulkSetup struct {
	hub    *hub.Hub
	api    client.Client
	bulk   *inboxitem.BulkREST
	clock  *clocktesting.FakeClock
	failOn map[string]bool // deliveries whose status writes fail
}

func newBulkSetup(t *testing.T, n int) *bulkSetup {
	t.Helper()
	s := &bulkSetup{clock: clocktesting.NewFakeClock(t0), failOn: map[string]bool{}}
	s.hub = hub.New(1000, s.clock, logr.Discard())
	scheme := runtime.NewScheme()
	if err := notifyv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	var objs []client.Object
	for i := range n {
		d := newDelivery()
		d.Name = fmt.Sprintf("a%03d", i)
		if i%3 == 0 {
			d.Spec.Content.Category = "security"
		}
		objs = append(objs, d)
	}
	b := newDelivery()
	b.Name, b.Spec.Recipient.Username = "b", "bob"
	objs = append(objs, b, &notifyv1.Recipient{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "alice"},
		Spec: notifyv1.RecipientSpec{Username: "alice", Timezone: "Europe/Berlin"}})
	s.api = fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithStatusSubresource(&notifyv1.ChannelDelivery{}).
		WithInterceptorFuncs(interceptor.Funcs{
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
				if s.failOn[obj.GetName()] {
					return apierrors.NewServiceUnavailable("etcd is having a bad day")
				}
				if err := c.SubResource(sub).Patch(ctx, obj, p, opts...); err != nil {
					return err
				}
				return s.hub.Update(obj.(*notifyv1.ChannelDelivery).DeepCopy())
			},
		}).Build()
	var list notifyv1.ChannelDeliveryList
	if err := s.api.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	var items []any
	for i := range list.Items {
		items = append(items, &list.Items[i])
	}
	if err := s.hub.Replace(items, "1000"); err != nil {
		t.Fatal(err)
	}
	rest, _ := inboxitem.NewREST(s.hub, s.api, s.clock)
	s.bulk = inboxitem.NewBulkREST(rest)
	return s
}

func (s *bulkSetup) run(t *testing.T, who string, spec inboxv1.BulkActionSpec) (inboxv1.BulkActionStatus, error) {
	t.Helper()
	ctx := genericapirequest.WithUser(context.Background(), &user.DefaultInfo{Name: who})
	obj, err := s.bulk.Create(ctx, &inboxv1.BulkAction{Spec: spec}, nil, &metav1.CreateOptions{})
	if err != nil {
		return inboxv1.BulkActionStatus{}, err
	}
	return obj.(*inboxv1.BulkAction).Status, nil
}

func (s *bulkSetup) counts(t *testing.T, who string) inboxv1.InboxCountSummary {
	t.Helper()
	c, _, err := s.hub.Counts(who, "")
	if err != nil {
		t.Fatal(err)
	}
	return c.Counts
}

// Mark all read changes at most MaxBulkItems items per request, says how
// many remain, and a repeat finishes the job; bob's item is never touched.
func TestBulkMarkReadIsBoundedAndRepeatable(t *testing.T) {
	n := inboxitem.MaxBulkItems + 20
	s := newBulkSetup(t, n)
	st, err := s.run(t, "alice", inboxv1.BulkActionSpec{Operation: inboxv1.BulkMarkRead})
	if err != nil {
		t.Fatal(err)
	}
	if st.Matched != int32(n) || st.Changed != inboxitem.MaxBulkItems || st.Remaining != 20 || len(st.Failed) != 0 {
		t.Fatalf("first request: %+v", st)
	}
	if got := s.counts(t, "alice").Unread; got != 20 {
		t.Fatalf("unread after the first request: %d", got)
	}
	st, err = s.run(t, "alice", inboxv1.BulkActionSpec{Operation: inboxv1.BulkMarkRead})
	if err != nil {
		t.Fatal(err)
	}
	if st.Changed != 20 || st.Unchanged != int32(inboxitem.MaxBulkItems) || st.Remaining != 0 {
		t.Fatalf("second request: %+v", st)
	}
	if got := s.counts(t, "alice"); got.Unread != 0 || got.Unseen != 0 {
		t.Fatalf("alice after mark all read: %+v", got)
	}
	if got := s.counts(t, "bob").Unread; got != 1 {
		t.Fatalf("bob's item was touched: unread %d", got)
	}
}

// Archive all read archives only read items matching the selector; an
// item whose write fails is reported and the others stand.
func TestBulkArchiveReadWithSelectorAndFailures(t *testing.T) {
	s := newBulkSetup(t, 6) // a000 a003 are security
	if _, err := s.run(t, "alice", inboxv1.BulkActionSpec{Operation: inboxv1.BulkMarkRead, FieldSelector: "metadata.name!=a003"}); err != nil {
		t.Fatal(err)
	}
	s.failOn["a001"] = true
	st, err := s.run(t, "alice", inboxv1.BulkActionSpec{Operation: inboxv1.BulkArchiveRead})
	if err != nil {
		t.Fatal(err)
	}
	if st.Matched != 6 || st.Changed != 4 || st.Unchanged != 1 || len(st.Failed) != 1 ||
		st.Failed[0].Name != "a001" || !strings.Contains(st.Failed[0].Message, "bad day") {
		t.Fatalf("archive read: %+v", st)
	}
	if got := s.counts(t, "alice"); got.Archived != 4 || got.Total != 2 {
		t.Fatalf("counts: %+v", got)
	}
	// a000 is read, so seen; a003 is not.
	st, err = s.run(t, "alice", inboxv1.BulkActionSpec{Operation: inboxv1.BulkMarkSeen, FieldSelector: "spec.category=security"})
	if err != nil || st.Matched != 2 || st.Changed != 1 || st.Unchanged != 1 {
		t.Fatalf("mark seen: %+v %v", st, err)
	}
}

// A bulk snooze resolves "tomorrow" in the timezone of each item's
// Recipient (read live: the delivery of an in-app item records none), and
// the items leave until then.
func TestBulkSnooze(t *testing.T) {
	s := newBulkSetup(t, 2)
	st, err := s.run(t, "alice", inboxv1.BulkActionSpec{Operation: inboxv1.BulkSnooze, FieldSelector: "metadata.name=a001",
		Snooze: &inboxv1.SnoozeUntil{Preset: "tomorrow"}})
	if err != nil || st.Changed != 1 {
		t.Fatalf("snooze: %+v %v", st, err)
	}
	var d notifyv1.ChannelDelivery
	if err := s.api.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "a001"}, &d); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC); d.Status.SnoozedUntil == nil || !d.Status.SnoozedUntil.Time.Equal(want) {
		t.Fatalf("snoozedUntil: want %v, got %v", want, d.Status.SnoozedUntil)
	}
	if got := s.counts(t, "alice"); got.Total != 1 || got.Snoozed != 1 {
		t.Fatalf("counts: %+v", got)
	}
}

func TestBulkRefusesBadSpecs(t *testing.T) {
	s := newBulkSetup(t, 1)
	for _, spec := range []inboxv1.BulkActionSpec{
		{Operation: "DeleteAll"},
		{Operation: inboxv1.BulkMarkRead, FieldSelector: "spec.title=x"},
		{Operation: inboxv1.BulkMarkRead, LabelSelector: "a in (("},
		{Operation: inboxv1.BulkSnooze},
		{Operation: inboxv1.BulkMarkRead, Snooze: &inboxv1.SnoozeUntil{Preset: "1h"}},
		{Operation: inboxv1.BulkSnooze, Snooze: &inboxv1.SnoozeUntil{Preset: "soon"}},
	} {
		if _, err := s.run(t, "alice", spec); !apierrors.IsInvalid(err) {
			t.Fatalf("%+v: want 422, got %v", spec, err)
		}
	}
}
