//go:build bench

package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// itemTrace is one inbox item's way from the client's create to the
// subscriber's SSE event. Every time is read on this machine's one clock:
// the bench's (create, watch, stream) and the controller's (attempt start,
// completion, written into the delivery's status as microseconds).
type itemTrace struct {
	User                   string
	Create, CreateReturned time.Time
	// DeliverySeen is when a plain watch first saw the ChannelDelivery.
	DeliverySeen             time.Time
	AttemptStart, Completion time.Time
	// SucceededSeen is when the plain watch saw it Succeeded; Event when
	// the subscriber's SSE stream carried the item.
	SucceededSeen, Event time.Time
}

// hop is one step of the way, over every traced item.
type hop struct {
	Name     string
	P50, P99 time.Duration
}

// hopSteps name the steps between consecutive times of an itemTrace.
var hopSteps = []struct {
	name     string
	from, to func(t *itemTrace) time.Time
}{
	{"the client's create of the Notification (request and response)", func(t *itemTrace) time.Time { return t.Create }, func(t *itemTrace) time.Time { return t.CreateReturned }},
	{"→ the ChannelDelivery exists (the controller's Notification watch and queue, fan-out, the create, the watch event)", func(t *itemTrace) time.Time { return t.CreateReturned }, func(t *itemTrace) time.Time { return t.DeliverySeen }},
	{"→ its attempt starts (the in-app delivery queue)", func(t *itemTrace) time.Time { return t.DeliverySeen }, func(t *itemTrace) time.Time { return t.AttemptStart }},
	{"→ the attempt ends (in-app: nothing to send)", func(t *itemTrace) time.Time { return t.AttemptStart }, func(t *itemTrace) time.Time { return t.Completion }},
	{"→ a watch sees it Succeeded (the status write, the watch event)", func(t *itemTrace) time.Time { return t.Completion }, func(t *itemTrace) time.Time { return t.SucceededSeen }},
	{"→ the SSE event at the subscriber (the inbox server's watch, its hub, kube-apiserver's aggregator proxy)", func(t *itemTrace) time.Time { return t.SucceededSeen }, func(t *itemTrace) time.Time { return t.Event }},
}

// traceHops completes the traces with the controller's times from the
// deliveries (read once, after the run), writes them as CSV when
// HERALD_BENCH_PROFILE names a directory, and returns each step's p50/p99.
func (h *harness) traceHops(ns string, traces []itemTrace) []hop {
	byUser := map[string]*itemTrace{}
	for i := range traces {
		byUser[traces[i].User] = &traces[i]
	}
	opts := []client.ListOption{client.InNamespace(ns), client.Limit(500)}
	for cont := ""; ; {
		var list notifyv1.ChannelDeliveryList
		if err := h.c.List(context.Background(), &list, append(opts, client.Continue(cont))...); err != nil {
			h.t.Fatal(err)
		}
		for _, d := range list.Items {
			t := byUser[d.Spec.Recipient.Username]
			if t == nil {
				continue
			}
			if len(d.Status.History) > 0 {
				t.AttemptStart = d.Status.History[0].StartTime.Time
			}
			if d.Status.CompletionTime != nil {
				t.Completion = d.Status.CompletionTime.Time
			}
		}
		if cont = list.Continue; cont == "" {
			break
		}
	}
	if dir := os.Getenv("HERALD_BENCH_PROFILE"); dir != "" {
		var b strings.Builder
		b.WriteString("user,create,create_returned,delivery_seen,attempt_start,completion,succeeded_seen,sse_event\n")
		for _, t := range traces {
			fmt.Fprintf(&b, "%s,%d,%d,%d,%d,%d,%d,%d\n", t.User, t.Create.UnixMicro(), t.CreateReturned.UnixMicro(), t.DeliverySeen.UnixMicro(),
				t.AttemptStart.UnixMicro(), t.Completion.UnixMicro(), t.SucceededSeen.UnixMicro(), t.Event.UnixMicro())
		}
		if err := os.WriteFile(filepath.Join(dir, ns+"-trace.csv"), []byte(b.String()), 0o644); err != nil {
			h.t.Fatal(err)
		}
	}
	var hops []hop
	for _, step := range hopSteps {
		var ds []time.Duration
		for i := range traces {
			from, to := step.from(&traces[i]), step.to(&traces[i])
			if from.IsZero() || to.IsZero() {
				continue
			}
			ds = append(ds, to.Sub(from))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		name := step.name
		if len(ds) == 0 {
			// Items delivered on create have no attempt and no status
			// write: the step did not happen, it did not take 0s.
			name += " — no item had this step (delivered on create)"
		}
		hops = append(hops, hop{Name: name, P50: pct(ds, 0.5), P99: pct(ds, 0.99)})
	}
	return hops
}

// hopsMarkdown is the report's table of the steps.
func hopsMarkdown(hops []hop) string {
	if len(hops) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("Where create → SSE event spends its time (each step from the previous one; p50 and p99 of each step taken separately, so they do not add up to the total's p99):\n\n")
	b.WriteString("| step | p50 | p99 |\n| --- | --- | --- |\n")
	for _, h := range hops {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", h.Name, h.P50.Round(100*time.Microsecond), h.P99.Round(100*time.Microsecond))
	}
	return b.String() + "\n"
}
