package notification

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/retry"
)

// A Notification's deliveries carry its shard label, so the shard that
// handles the Notification also handles them; without one they carry none.
func TestDeliveriesInheritTheShardLabel(t *testing.T) {
	r, _ := unitReconciler(t)
	rp := retry.Resolve(nil, r.DefaultRetry).Spec()
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   string
		has    bool
	}{
		{"sharded", map[string]string{notifyv1.LabelShardKey: "shard1", "team": "a"}, "shard1", true},
		{"unsharded", map[string]string{"team": "a"}, "", false},
	} {
		n := &notifyv1.Notification{ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "ns", UID: "u", Labels: tc.labels}}
		for _, ch := range []notifyv1.Channel{notifyv1.ChannelInApp, notifyv1.ChannelWebhook} {
			d := r.newDelivery(n, ch, "alice", notifyv1.RenderedContent{}, rp, nil)
			got, has := d.Labels[notifyv1.LabelShardKey]
			if got != tc.want || has != tc.has {
				t.Errorf("%s %s delivery: shard label %q (present %v), want %q (present %v)", tc.name, ch, got, has, tc.want, tc.has)
			}
			if _, leaked := d.Labels["team"]; leaked {
				t.Errorf("%s %s delivery copied a label other than the shard's", tc.name, ch)
			}
		}
	}
}
