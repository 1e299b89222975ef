package notification

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/audience"
	"github.com/herald-dev/herald/internal/retry"
)

func TestRecipientSnapshotHoldsWhatTheChannelUses(t *testing.T) {
	rc := &notifyv1.Recipient{
		ObjectMeta: metav1.ObjectMeta{Name: "alice"},
		Spec: notifyv1.RecipientSpec{Username: "alice", DisplayName: "Alice", Email: "alice@example.com",
			Phone: "+4915112345671", WebhookURL: "https://hooks.example.com/a", Timezone: "Europe/Berlin",
			Slack:    &notifyv1.SlackAddress{UserID: "U024BE7LH"},
			Teams:    &notifyv1.TeamsAddress{WebhookURLSecretRef: notifyv1.SecretKeyReference{Name: "room", Key: "url"}},
			Telegram: &notifyv1.TelegramAddress{ChatID: "42"}},
	}
	base := notifyv1.RecipientSnapshot{Name: "alice", Username: "alice", DisplayName: "Alice"}
	want := map[notifyv1.Channel]notifyv1.RecipientSnapshot{
		notifyv1.ChannelInApp:    base,
		notifyv1.ChannelEmail:    with(base, func(s *notifyv1.RecipientSnapshot) { s.Email, s.Timezone = "alice@example.com", "Europe/Berlin" }),
		notifyv1.ChannelWhatsApp: with(base, func(s *notifyv1.RecipientSnapshot) { s.Phone, s.Timezone = "+4915112345671", "Europe/Berlin" }),
		notifyv1.ChannelWebhook: with(base, func(s *notifyv1.RecipientSnapshot) {
			s.Email, s.Phone, s.WebhookURL, s.Timezone = "alice@example.com", "+4915112345671", "https://hooks.example.com/a", "Europe/Berlin"
		}),
		notifyv1.ChannelSlack: with(base, func(s *notifyv1.RecipientSnapshot) {
			s.Slack, s.Timezone = &notifyv1.SlackAddress{UserID: "U024BE7LH"}, "Europe/Berlin"
		}),
		notifyv1.ChannelTeams: with(base, func(s *notifyv1.RecipientSnapshot) {
			s.Teams, s.Timezone = &notifyv1.TeamsAddress{WebhookURLSecretRef: notifyv1.SecretKeyReference{Name: "room", Key: "url"}}, "Europe/Berlin"
		}),
		notifyv1.ChannelTelegram: with(base, func(s *notifyv1.RecipientSnapshot) {
			s.Telegram, s.Timezone = &notifyv1.TelegramAddress{ChatID: "42"}, "Europe/Berlin"
		}),
	}
	for _, ch := range notifyv1.Channels {
		if got := recipientSnapshot(rc, ch); !reflect.DeepEqual(got, want[ch]) {
			t.Errorf("%s: snapshot %+v, want %+v", ch, got, want[ch])
		}
	}
}

func with(s notifyv1.RecipientSnapshot, f func(*notifyv1.RecipientSnapshot)) notifyv1.RecipientSnapshot {
	f(&s)
	return s
}

// unitReconciler is a Reconciler over fake clients: cached is
// what the cache holds, live what the API server holds.
func unitReconciler(t *testing.T, live ...client.Object) (r *Reconciler, cached client.Client) {
	scheme := runtime.NewScheme()
	if err := notifyv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cached = fake.NewClientBuilder().WithScheme(scheme).
		WithIndex(&notifyv1.ChannelDelivery{}, DeliveryIndex, func(o client.Object) []string {
			return []string{o.(*notifyv1.ChannelDelivery).Spec.Notification}
		}).Build()
	return &Reconciler{
		Client:            cached,
		APIReader:         fake.NewClientBuilder().WithScheme(scheme).WithObjects(live...).Build(),
		FanOutParallelism: 1,
		DefaultRetry:      retry.Policy{Strategy: retry.Exponential, MaxAttempts: 4, InitialDelay: time.Second, MaxDelay: time.Minute},
		DefaultTimeout:    30 * time.Second,
	}, cached
}

func TestInAppDeliveriesCarryNoRetryPolicy(t *testing.T) {
	r, _ := unitReconciler(t)
	n := &notifyv1.Notification{ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "ns", UID: "u"}}
	rp := retry.Resolve(nil, r.DefaultRetry).Spec()
	timeout := &metav1.Duration{Duration: r.DefaultTimeout}
	if d := r.newDelivery(n, notifyv1.ChannelInApp, "alice", notifyv1.RenderedContent{}, rp, timeout); d.Spec.Retry != nil || d.Spec.Timeout != nil {
		t.Errorf("in-app delivery has retry %v and timeout %v, want neither", d.Spec.Retry, d.Spec.Timeout)
	}
	if d := r.newDelivery(n, notifyv1.ChannelEmail, "alice", notifyv1.RenderedContent{}, rp, timeout); d.Spec.Retry == nil || d.Spec.Timeout == nil {
		t.Errorf("email delivery lost its retry policy or timeout: %v, %v", d.Spec.Retry, d.Spec.Timeout)
	}
}

// A Recipient created a moment before its Notification may not be in the
// cache yet; it must not be skipped as unknown for that.
func TestDispatchChecksUnknownUsersPastTheCache(t *testing.T) {
	// alice exists on the API server but has not reached the cache.
	alice := &notifyv1.Recipient{ObjectMeta: metav1.ObjectMeta{Name: "alice", Namespace: "ns"}, Spec: notifyv1.RecipientSpec{Username: "alice"}}
	r, cached := unitReconciler(t, alice)
	n := &notifyv1.Notification{
		ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "ns", UID: "u"},
		Spec: notifyv1.NotificationSpec{Type: notifyv1.TypeInformational, Message: "hi",
			Audience: notifyv1.Audience{Users: []string{"alice", "mallory"}}, Channels: []notifyv1.Channel{notifyv1.ChannelInApp}},
	}
	if _, err := r.dispatch(context.Background(), n, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := n.Status.Unresolved; len(got) != 1 || got[0] != "mallory" {
		t.Errorf("unresolved %v, want [mallory]", got)
	}
	var d notifyv1.ChannelDelivery
	if err := cached.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: DeliveryName("n", notifyv1.ChannelInApp, "alice")}, &d); err != nil {
		t.Fatal(err)
	}
	if d.Spec.Skip != nil {
		t.Errorf("alice's delivery is skipped: %+v", d.Spec.Skip)
	}
}

// Each delivery carries only what its channel sends: a WhatsApp text at
// the size limit must not make the email delivery too large.
func TestDeliveriesCarryOnlyTheirChannelsContent(t *testing.T) {
	r, _ := unitReconciler(t)
	n := &notifyv1.Notification{ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "ns", UID: "u"}}
	c := notifyv1.RenderedContent{Type: notifyv1.TypeInformational, Title: "t", Message: "m",
		Actions:  []notifyv1.Action{{ID: "ok", Label: "OK"}},
		Email:    &notifyv1.EmailContent{Subject: "s", Text: "x", HTML: "<p>x</p>"},
		WhatsApp: &notifyv1.WhatsAppContent{Text: strings.Repeat("w", 1<<20)}, WebhookPayload: `{"a":1}`,
		Slack: &notifyv1.SlackContent{Text: "s"}, Teams: &notifyv1.TeamsContent{Card: "{}"}, Telegram: &notifyv1.TelegramContent{Text: "t"}}
	for _, ch := range notifyv1.Channels {
		got := r.newDelivery(n, ch, "alice", c, nil, nil).Spec.Content
		if got.Title != "t" || got.Message != "m" || got.Type != c.Type {
			t.Errorf("%s: lost title, message or type: %+v", ch, got)
		}
		if (got.Email != nil) != (ch == notifyv1.ChannelEmail) || (got.WhatsApp != nil) != (ch == notifyv1.ChannelWhatsApp) ||
			(got.WebhookPayload != "") != (ch == notifyv1.ChannelWebhook) ||
			(got.Slack != nil) != (ch == notifyv1.ChannelSlack) || (got.Teams != nil) != (ch == notifyv1.ChannelTeams) ||
			(got.Telegram != nil) != (ch == notifyv1.ChannelTelegram) ||
			// Slack and Teams list an approval's choices beside the inbox link.
			(len(got.Actions) > 0) != (ch == notifyv1.ChannelInApp || ch == notifyv1.ChannelWebhook || ch == notifyv1.ChannelSlack || ch == notifyv1.ChannelTeams) {
			t.Errorf("%s: carries another channel's content: email %v, whatsapp %v, payload %q, actions %v",
				ch, got.Email != nil, got.WhatsApp != nil, got.WebhookPayload, got.Actions)
		}
	}
}

func rejectingReconciler(t *testing.T, create func(*notifyv1.ChannelDelivery) error, objs ...client.Object) (*Reconciler, client.Client) {
	scheme := runtime.NewScheme()
	if err := notifyv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithIndex(&notifyv1.ChannelDelivery{}, DeliveryIndex, func(o client.Object) []string {
			return []string{o.(*notifyv1.ChannelDelivery).Spec.Notification}
		}).
		WithInterceptorFuncs(interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if d, ok := obj.(*notifyv1.ChannelDelivery); ok {
				if err := create(d); err != nil {
					return err
				}
			}
			return c.Create(ctx, obj, opts...)
		}}).Build()
	return &Reconciler{Client: c, APIReader: c, FanOutParallelism: 2, Recorder: events.NewFakeRecorder(100),
		DefaultRetry: retry.Policy{Strategy: retry.Fixed, MaxAttempts: 1, InitialDelay: time.Second, MaxDelay: time.Second}}, c
}

func threeRecipients(users ...string) []client.Object {
	var out []client.Object
	for _, u := range users {
		out = append(out, &notifyv1.Recipient{ObjectMeta: metav1.ObjectMeta{Name: u, Namespace: "ns"}, Spec: notifyv1.RecipientSpec{Username: u}})
	}
	return out
}

// A create the API server refuses for good ends that one delivery, with
// a reason and an Event; the others are created and the notification
// can finish.
func TestRejectedCreateEndsOneDelivery(t *testing.T) {
	gr := schema.GroupResource{Group: notifyv1.GroupVersion.Group, Resource: "channeldeliveries"}
	r, c := rejectingReconciler(t, func(d *notifyv1.ChannelDelivery) error {
		if d.Spec.Recipient.Name == "bob" {
			return apierrors.NewInvalid(notifyv1.GroupVersion.WithKind("ChannelDelivery").GroupKind(), d.Name,
				field.ErrorList{field.TooLong(field.NewPath("spec", "content", "message"), "", 100)})
		}
		if d.Spec.Recipient.Name == "carol" {
			return apierrors.NewForbidden(gr, d.Name, errors.New("exceeded quota: herald, requested: count/channeldeliveries"))
		}
		return nil
	}, threeRecipients("alice", "bob", "carol")...)
	n := &notifyv1.Notification{
		ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "ns", UID: "u", CreationTimestamp: metav1.Now()},
		Spec: notifyv1.NotificationSpec{Type: notifyv1.TypeInformational, Message: "hi",
			Audience: notifyv1.Audience{Users: []string{"alice", "bob", "carol"}}, Channels: []notifyv1.Channel{notifyv1.ChannelInApp}},
	}
	before := n.Status.DeepCopy()
	if _, err := r.dispatch(context.Background(), n, time.Now()); err != nil {
		t.Fatalf("a permanent create error must not fail the fan-out: %v", err)
	}
	if got := n.Status.Rejected; len(got) != 2 || got[0].Recipient != "bob" || got[0].Reason != notifyv1.ReasonDeliveryRejected ||
		!strings.Contains(got[0].Message, "spec.content.message") || got[1].Recipient != "carol" || !strings.Contains(got[1].Message, "exceeded quota") {
		t.Fatalf("rejected = %+v, want bob (invalid) and carol (quota)", got)
	}
	var list notifyv1.ChannelDeliveryList
	if err := c.List(context.Background(), &list); err != nil || len(list.Items) != 1 || list.Items[0].Spec.Recipient.Name != "alice" {
		t.Fatalf("deliveries %v (%v), want alice's only", list.Items, err)
	}
	r.announce(n, before)
	ev := drain(r.Recorder.(*events.FakeRecorder))
	if len(ev) != 2 || !strings.Contains(ev[0], `"bob"`) || !strings.Contains(ev[0], "spec.content.message") || !strings.Contains(ev[1], "exceeded quota") {
		t.Errorf("events %q, want a Warning naming bob and the API server's message, and one for carol", ev)
	}
	// alice's delivery succeeds: the notification finishes, partially.
	list.Items[0].Status.Phase = notifyv1.DeliverySucceeded
	if err := c.Update(context.Background(), &list.Items[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := r.aggregate(context.Background(), n, time.Now()); err != nil {
		t.Fatal(err)
	}
	if n.Status.Phase != notifyv1.NotificationPartiallyDelivered || n.Status.Deliveries.Failed != 2 || n.Status.Deliveries.Total != 3 {
		t.Errorf("phase %s, deliveries %+v; want PartiallyDelivered with 2 failed of 3", n.Status.Phase, n.Status.Deliveries)
	}
}

// Transient errors are retried: the fan-out returns them.
func TestTransientCreateErrorIsRetried(t *testing.T) {
	for _, err := range []error{apierrors.NewInternalError(errors.New("etcd leader changed")), apierrors.NewTimeoutError("slow", 1),
		apierrors.NewConflict(schema.GroupResource{}, "x", errors.New("conflict")), apierrors.NewServiceUnavailable("down")} {
		r, _ := rejectingReconciler(t, func(*notifyv1.ChannelDelivery) error { return err }, threeRecipients("alice")...)
		n := &notifyv1.Notification{
			ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "ns", UID: "u", CreationTimestamp: metav1.Now()},
			Spec: notifyv1.NotificationSpec{Type: notifyv1.TypeInformational, Message: "hi",
				Audience: notifyv1.Audience{Users: []string{"alice"}}, Channels: []notifyv1.Channel{notifyv1.ChannelInApp}},
		}
		if _, got := r.dispatch(context.Background(), n, time.Now()); got == nil || len(n.Status.Rejected) > 0 {
			t.Errorf("%v: dispatch returned %v with rejected %v; want the error back and nothing rejected", err, got, n.Status.Rejected)
		}
	}
}

// A delivery name held by a delivery of a deleted Notification of the same
// name is not counted as the new one's: it waits, boundedly, then counts
// the delivery as failed.
func TestOldDeliveriesOfTheSameNameAreNotOurs(t *testing.T) {
	old := &notifyv1.Notification{ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "ns", UID: "old"}}
	n := &notifyv1.Notification{
		ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "ns", UID: "new", CreationTimestamp: metav1.Now()},
		Spec: notifyv1.NotificationSpec{Type: notifyv1.TypeInformational, Message: "hi",
			Audience: notifyv1.Audience{Users: []string{"alice", "bob"}}, Channels: []notifyv1.Channel{notifyv1.ChannelInApp}},
	}
	r, c := rejectingReconciler(t, func(*notifyv1.ChannelDelivery) error { return nil }, threeRecipients("alice", "bob")...)
	stale := r.newDelivery(old, notifyv1.ChannelInApp, "alice", notifyv1.RenderedContent{}, nil, nil)
	stale.OwnerReferences[0].Kind = "Notification" // the fake scheme has no GVK on a typed object without TypeMeta
	stale.Status.Phase = notifyv1.DeliverySucceeded
	if err := c.Create(context.Background(), stale); err != nil {
		t.Fatal(err)
	}
	now := n.CreationTimestamp.Time
	res, err := r.dispatch(context.Background(), n, now)
	if err != nil {
		t.Fatal(err)
	}
	cond := meta.FindStatusCondition(n.Status.Conditions, notifyv1.ConditionDispatched)
	if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != notifyv1.ReasonDeliveryNameTaken || res.RequeueAfter <= 0 || res.RequeueAfter > oldDeliveriesWait {
		t.Fatalf("condition %+v, requeue %v; want Dispatched False (DeliveryNameTaken) and a bounded requeue", cond, res.RequeueAfter)
	}
	// Past the wait, the held delivery counts as failed and the
	// notification finishes.
	if _, err := r.dispatch(context.Background(), n, now.Add(oldDeliveriesWait+time.Second)); err != nil {
		t.Fatal(err)
	}
	if !meta.IsStatusConditionTrue(n.Status.Conditions, notifyv1.ConditionDispatched) || len(n.Status.Rejected) != 1 ||
		n.Status.Rejected[0].Recipient != "alice" || n.Status.Rejected[0].Reason != notifyv1.ReasonDeliveryNameTaken {
		t.Fatalf("conditions %+v, rejected %+v; want dispatched with alice's delivery rejected (DeliveryNameTaken)", n.Status.Conditions, n.Status.Rejected)
	}
	var bob notifyv1.ChannelDelivery
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: DeliveryName("n", notifyv1.ChannelInApp, "bob")}, &bob); err != nil {
		t.Fatal(err)
	}
	bob.Status.Phase = notifyv1.DeliverySucceeded
	if err := c.Update(context.Background(), &bob); err != nil {
		t.Fatal(err)
	}
	if _, err := r.aggregate(context.Background(), n, now); err != nil {
		t.Fatal(err)
	}
	if n.Status.Phase != notifyv1.NotificationPartiallyDelivered || n.Status.Deliveries.Succeeded != 1 || n.Status.Deliveries.Failed != 1 {
		t.Errorf("phase %s, deliveries %+v; the old succeeded delivery must not count as the new one's", n.Status.Phase, n.Status.Deliveries)
	}
}

func drain(r *events.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// Only an in-app delivery that is due, has an inbox to go to and is
// neither skipped nor expired is delivered by its creation; every other
// keeps the attempt that records its outcome.
func TestDeliveredOnCreate(t *testing.T) {
	r, _ := unitReconciler(t)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	later := metav1.NewTime(now.Add(time.Hour))
	earlier := metav1.NewTime(now.Add(-time.Minute))
	alice := notifyv1.Recipient{ObjectMeta: metav1.ObjectMeta{Name: "alice", Namespace: "ns"}, Spec: notifyv1.RecipientSpec{Username: "alice", Email: "alice@example.com"}}
	noUser := notifyv1.Recipient{ObjectMeta: metav1.ObjectMeta{Name: "room", Namespace: "ns"}, Spec: notifyv1.RecipientSpec{Email: "room@example.com"}}
	optedOut := *alice.DeepCopy()
	optedOut.Spec.Preferences.OptOut = []notifyv1.Channel{notifyv1.ChannelInApp}
	for _, tc := range []struct {
		name      string
		channel   notifyv1.Channel
		recipient notifyv1.Recipient
		spec      func(*notifyv1.NotificationSpec)
		want      bool
	}{
		{name: "in-app, due now", channel: notifyv1.ChannelInApp, recipient: alice, want: true},
		{name: "in-app, expiring later", channel: notifyv1.ChannelInApp, recipient: alice, spec: func(s *notifyv1.NotificationSpec) { s.ExpiresAt = &later }, want: true},
		{name: "email", channel: notifyv1.ChannelEmail, recipient: alice},
		{name: "in-app, deliverAfter later", channel: notifyv1.ChannelInApp, recipient: alice, spec: func(s *notifyv1.NotificationSpec) { s.DeliverAfter = &later }},
		{name: "in-app, already expired", channel: notifyv1.ChannelInApp, recipient: alice, spec: func(s *notifyv1.NotificationSpec) { s.ExpiresAt = &earlier }},
		{name: "in-app, recipient without a user name", channel: notifyv1.ChannelInApp, recipient: noUser},
		{name: "in-app, opted out", channel: notifyv1.ChannelInApp, recipient: optedOut},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &notifyv1.Notification{ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "ns", UID: "u"},
				Spec: notifyv1.NotificationSpec{Channels: []notifyv1.Channel{tc.channel}, Title: "t"}}
			if tc.spec != nil {
				tc.spec(&n.Spec)
			}
			ds := r.plan(n, notifyv1.RenderedContent{Title: "t"}, audience.Resolution{Recipients: []notifyv1.Recipient{tc.recipient}}, now)
			if len(ds) != 1 {
				t.Fatalf("planned %d deliveries, want 1", len(ds))
			}
			if got := ds[0].Spec.DeliveredOnCreate; got != tc.want {
				t.Errorf("deliveredOnCreate = %v, want %v (skip %+v, notBefore %v)", got, tc.want, ds[0].Spec.Skip, ds[0].Spec.NotBefore)
			}
		})
	}
}
