//go:build bench

package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// TestStatusSizeCost measures what the zero counters of a Notification's
// status cost its status write, on one control plane, alternating: the
// status a single-recipient in-app Notification gets when it finishes,
// written once with every counter (as the API types wrote them until
// 2026-12-01) and once without the counters that are zero (pending,
// sending, skipped, expired), as their `omitempty` writes them now. Each
// write is a merge patch of /status, as internal/patch sends it.
//
//	KUBEBUILDER_ASSETS=$PWD/bin/k8s go test -tags bench -run TestStatusSizeCost -v ./bench/
func TestStatusSizeCost(t *testing.T) {
	h := writeCostHarness(t)
	n := envInt("HERALD_BENCH_BOUND_N", 1000)
	rounds := envInt("HERALD_BENCH_ROUNDS", 5)
	counts := func(zeros bool) string {
		if zeros {
			return `"total":1,"pending":0,"sending":0,"succeeded":1,"failed":0,"skipped":0,"expired":0`
		}
		return `"total":1,"succeeded":1,"failed":0`
	}
	status := func(zeros bool) []byte {
		now := time.Now().UTC().Format(time.RFC3339)
		return []byte(fmt.Sprintf(`{"status":{"phase":"Delivered","recipients":1,"deliveries":{%s},"channels":[{"channel":"inApp",%s}],`+
			`"acknowledgement":{"acknowledged":0,"required":1},"dispatchTime":%q,"completionTime":%q,"observedGeneration":1,"conditions":[`+
			`{"type":"Dispatched","status":"True","observedGeneration":1,"lastTransitionTime":%q,"reason":"Dispatched","message":"1 deliveries for 1 recipients on 1 channels"},`+
			`{"type":"Acknowledged","status":"False","observedGeneration":1,"lastTransitionTime":%q,"reason":"AwaitingAcknowledgement","message":"0 of 1 recipients acknowledged (acknowledge: Any)"},`+
			`{"type":"Delivered","status":"True","observedGeneration":1,"lastTransitionTime":%q,"reason":"AllDelivered","message":"1 delivered, 0 skipped by preference"}]}}`,
			counts(zeros), counts(zeros), now, now, now, now, now))
	}
	rates := map[bool][]float64{}
	sizes := map[bool]int{}
	for round := 0; round < rounds; round++ {
		for _, zeros := range []bool{true, false} {
			ns := h.namespace(fmt.Sprintf("status-%d-%v", round, zeros))
			objs := make([]*notifyv1.Notification, n)
			for i := range objs {
				objs[i] = h.notification(ns, fmt.Sprintf("n%05d", i), notifyv1.ChannelInApp, notifyv1.Audience{Users: []string{"r0"}})
			}
			parallel(32, n, func(i int) error { return h.c.Create(context.Background(), objs[i]) })
			body := status(zeros)
			d := parallel(32, n, func(i int) error {
				return h.c.Status().Patch(context.Background(), objs[i], client.RawPatch("application/merge-patch+json", body), client.FieldOwner("herald-controller"))
			})
			rates[zeros] = append(rates[zeros], float64(n)/d.Seconds())
			// Read as unstructured: the typed object would write the zeros
			// back in when serialized again.
			stored := &unstructured.Unstructured{}
			stored.SetGroupVersionKind(notifyv1.GroupVersion.WithKind("Notification"))
			if err := h.c.Get(context.Background(), client.ObjectKeyFromObject(objs[0]), stored); err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(stored.Object)
			if err != nil {
				t.Fatal(err)
			}
			sizes[zeros] = len(b)
			if err := h.c.DeleteAllOf(context.Background(), &notifyv1.Notification{}, client.InNamespace(ns)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, zeros := range []bool{true, false} {
		var s []string
		var sum float64
		for _, r := range rates[zeros] {
			s = append(s, fmt.Sprintf("%.0f", r))
			sum += r
		}
		name := map[bool]string{true: "with zero counters", false: "without them"}[zeros]
		t.Logf("Notification status patch %-20s %s /s (mean %.0f); stored object %d bytes", name, strings.Join(s, ", "), sum/float64(len(s)), sizes[zeros])
	}
}
