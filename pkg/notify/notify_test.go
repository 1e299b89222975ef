package notify_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/pkg/notify"
)

func newClient(t *testing.T) client.Client {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(s).Build()
}

var dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func TestName(t *testing.T) {
	keys := []string{
		"backup-failed/db-0/2026-11-28",
		"Backup Failed: DB/0",
		"backup-failed-db-0",
		"DB/0",
		"db-0",
		"db 0",
		"???",
		"",
		strings.Repeat("very-long-key/", 40),
		"ünïcödé/ключ",
	}
	seen := map[string]string{}
	for _, k := range keys {
		n := notify.Name(k)
		if len(n) > 63 || !dns1123Label.MatchString(n) {
			t.Errorf("Name(%q) = %q is not a DNS label of at most 63 characters", k, n)
		}
		if n != notify.Name(k) {
			t.Errorf("Name(%q) is not stable", k)
		}
		if other, dup := seen[n]; dup {
			t.Errorf("keys %q and %q share the name %q", k, other, n)
		}
		seen[n] = k
	}
	if n := notify.Name("backup-failed/db-0/2026-11-28"); !strings.HasPrefix(n, "backup-failed-db-0-2026-11-28-") {
		t.Errorf("the readable part is lost: %q", n)
	}
}

func TestSendIsIdempotent(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	send := func(message string) (*v1alpha1.Notification, error) {
		return notify.New("shop", "deploy/shop/1.2.3").
			To("alice").ToRoles("sre").
			On(v1alpha1.ChannelInApp, v1alpha1.ChannelEmail).
			Type(v1alpha1.TypeWarning).Category("deployments").
			Title("shop 1.2.3").Message(message).
			Label("team", "web").
			Send(ctx, c)
	}
	first, err := send("first")
	if err != nil {
		t.Fatal(err)
	}
	second, err := send("second")
	if err != nil {
		t.Fatalf("second send: %v", err)
	}
	if first.Name != second.Name || first.UID != second.UID {
		t.Fatalf("second send returned another object: %s/%s vs %s/%s", first.Name, first.UID, second.Name, second.UID)
	}
	if second.Spec.Message != "first" {
		t.Fatalf("the existing notification must be returned unchanged, got message %q", second.Spec.Message)
	}
	var list v1alpha1.NotificationList
	if err := c.List(ctx, &list, client.InNamespace("shop")); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Fatalf("want 1 notification, got %d", len(list.Items))
	}
	n := list.Items[0]
	if n.Name != notify.Name("deploy/shop/1.2.3") || n.Annotations[notify.AnnotationKey] != "deploy/shop/1.2.3" || n.Labels["team"] != "web" {
		t.Fatalf("unexpected metadata: %+v", n.ObjectMeta)
	}
	if got := n.Spec.Channels; len(got) != 2 || n.Spec.Audience.Users[0] != "alice" || n.Spec.Type != v1alpha1.TypeWarning {
		t.Fatalf("unexpected spec: %+v", n.Spec)
	}
}

func TestSendRefusesANameTakenByAnotherObject(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	squatter := &v1alpha1.Notification{ObjectMeta: metav1.ObjectMeta{Name: notify.Name("k"), Namespace: "ns"}}
	if err := c.Create(ctx, squatter); err != nil {
		t.Fatal(err)
	}
	_, err := notify.New("ns", "k").To("alice").On(v1alpha1.ChannelInApp).Message("hi").Send(ctx, c)
	if !errors.Is(err, notify.ErrNameTaken) {
		t.Fatalf("want ErrNameTaken, got %v", err)
	}
}

func TestSendSetsTheOwner(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "release", Namespace: "ns", UID: "1234"}}
	n, err := notify.New("ns", "release/approval").
		ToRoles("approvers").On(v1alpha1.ChannelInApp).
		Message("Approve?").
		Approval(v1alpha1.Action{ID: "approve", Label: "Approve", Outcome: v1alpha1.OutcomeApprove}).
		OwnedBy(owner).
		Send(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(n.OwnerReferences) != 1 || n.OwnerReferences[0].UID != "1234" || n.OwnerReferences[0].Controller == nil || !*n.OwnerReferences[0].Controller {
		t.Fatalf("want a controller reference to the owner, got %+v", n.OwnerReferences)
	}
	if n.Spec.Type != v1alpha1.TypeApproval || len(n.Spec.Actions) != 1 {
		t.Fatalf("approval not set: %+v", n.Spec)
	}
}

func TestBuildRejectsIncompleteNotifications(t *testing.T) {
	tests := []struct {
		name string
		b    *notify.Builder
		want string
	}{
		{"no namespace", notify.New("", "k").To("a").On(v1alpha1.ChannelInApp).Message("m"), "namespace is required"},
		{"no key", notify.New("ns", "").To("a").On(v1alpha1.ChannelInApp).Message("m"), "key is required"},
		{"no audience", notify.New("ns", "k").On(v1alpha1.ChannelInApp).Message("m"), "audience is required"},
		{"no channel", notify.New("ns", "k").To("a").Message("m"), "channel is required"},
		{"no content", notify.New("ns", "k").To("a").On(v1alpha1.ChannelInApp), "Message (or a Template) is required"},
		{"both", notify.New("ns", "k").To("a").On(v1alpha1.ChannelInApp).Message("m").Template("t", nil), "not both"},
		{"approval without actions", notify.New("ns", "k").To("a").On(v1alpha1.ChannelInApp).Message("m").Type(v1alpha1.TypeApproval), "at least one action"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.b.Build()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %v", tc.want, err)
			}
		})
	}
	n, err := notify.New("ns", "k").ToRoles("sre").On(v1alpha1.ChannelEmail).Template("deploy", map[string]string{"app": "shop"}).Param("version", "2").Build()
	if err != nil {
		t.Fatal(err)
	}
	if n.Spec.TemplateRef.Name != "deploy" || n.Spec.Params["app"] != "shop" || n.Spec.Params["version"] != "2" {
		t.Fatalf("template not set: %+v", n.Spec)
	}
}
