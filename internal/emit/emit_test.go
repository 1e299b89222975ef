package emit

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// A child Notification goes to its owner's shard, whatever its template's
// labels say: the owner's controller must see its children.
func TestOwnedNotificationFollowsItsOwnersShard(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := notifyv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		owner, tmpl map[string]string
		want        string
		has         bool
	}{
		{"owner sharded", map[string]string{notifyv1.LabelShardKey: "a"}, nil, "a", true},
		{"owner wins over the template", map[string]string{notifyv1.LabelShardKey: "a"}, map[string]string{notifyv1.LabelShardKey: "b"}, "a", true},
		{"unsharded owner, template names a shard", nil, map[string]string{notifyv1.LabelShardKey: "b"}, "", false},
		{"neither", nil, nil, "", false},
	} {
		owner := &notifyv1.NotificationSchedule{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns", UID: "u", Labels: tc.owner}}
		n, err := OwnedNotification(owner, scheme, "child", notifyv1.ObjectMetaTemplate{Labels: tc.tmpl}, notifyv1.NotificationSpec{})
		if err != nil {
			t.Fatal(err)
		}
		got, has := n.Labels[notifyv1.LabelShardKey]
		if got != tc.want || has != tc.has {
			t.Errorf("%s: shard label %q (present %v), want %q (present %v)", tc.name, got, has, tc.want, tc.has)
		}
	}
}
