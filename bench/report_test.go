//go:build bench

package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
)

// writes counts requests the API server served, by
// "resource/subresource VERB", read from kube-apiserver's own
// apiserver_request_total metric: it sees every client, the controller
// process included.
type writes map[string]float64

// apiCounts are the API server's request counters at one moment: writes to
// Herald's queue (notifications, deliveries, events) and reads (GET, LIST)
// of any resource, which a controller serving from its cache should hardly
// make.
type apiCounts struct {
	writes writes
	reads  writes
}

func (c apiCounts) minus(before apiCounts) apiCounts {
	return apiCounts{writes: c.writes.minus(before.writes), reads: c.reads.minus(before.reads)}
}

func (h *harness) apiWrites() apiCounts {
	cs, err := kubernetes.NewForConfig(h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	out := apiCounts{writes: writes{}, reads: writes{}}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		labels, value, ok := strings.Cut(line[len("apiserver_request_total{"):], "} ")
		if !ok {
			continue
		}
		l := map[string]string{}
		for _, kv := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			l[k] = strings.Trim(v, `"`)
		}
		v, _ := strconv.ParseFloat(value, 64)
		key := l["resource"]
		if l["subresource"] != "" {
			key += "/" + l["subresource"]
		}
		key += " " + l["verb"]
		switch l["verb"] {
		case "POST", "PUT", "PATCH", "DELETE", "APPLY":
			if l["resource"] == "notifications" || l["resource"] == "channeldeliveries" || l["resource"] == "events" {
				out.writes[key] += v
			}
		case "GET", "LIST":
			if l["resource"] != "" {
				out.reads[key] += v
			}
		}
	}
	return out
}

func (w writes) minus(before writes) writes {
	out := writes{}
	for k, v := range w {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

func (w writes) total() float64 {
	t := 0.0
	for _, v := range w {
		t += v
	}
	return t
}

func (w writes) String() string {
	var parts []string
	for k, v := range w {
		parts = append(parts, fmt.Sprintf("%s=%.0f", k, v))
	}
	if len(parts) == 0 {
		return "none"
	}
	sortStrings(parts)
	return strings.Join(parts, ", ")
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

type runResult struct {
	Name string
	// Bound is raw creates/s at 32 goroutines measured right before the run.
	Bound         float64
	Deliveries    int
	Elapsed       time.Duration
	Latency       []time.Duration
	Writes        writes
	Reads         writes
	ClientCreates int
	CPU           time.Duration
	PeakRSS       int64
	Sink          *[2]int
}

type report struct {
	costs          writeCosts
	started        time.Time
	bounds         []boundResult
	runs           []runResult
	inbox          *inboxResult
	controllerArgs string
}

type boundResult struct {
	name string
	rate float64
}

func newReport() *report { return &report{started: time.Now()} }

func (r *report) bound(name string, rate float64) {
	r.bounds = append(r.bounds, boundResult{name, rate})
	fmt.Printf("bound: %-36s %8.0f\n", name, rate)
}

func (r *report) run(res runResult) {
	r.runs = append(r.runs, res)
	fmt.Println(r.runLines(res))
	fmt.Println(detailLine(res))
}

func pct(l []time.Duration, p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	i := int(float64(len(l)-1) * p)
	return l[i]
}

func (r *report) runLines(res runResult) string {
	rate := float64(res.Deliveries) / res.Elapsed.Seconds()
	controllerWrites := res.Writes.total() - float64(res.ClientCreates)
	perDelivery := controllerWrites / float64(res.Deliveries)
	bound := res.Bound / perDelivery
	floor := "n/a | n/a"
	if t, ok := r.costs.floor(res.Writes); ok && t > 0 {
		floorRate := float64(res.Deliveries) / t.Seconds()
		floor = fmt.Sprintf("%.0f/s | %.0f%%", floorRate, 100*rate/floorRate)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| %s | %.0f/s | **%.1f** | %.2f | %.0f/s | %.0f%% | %s | %s / %s / %s | %.1fs | %.0f MiB |",
		res.Name, rate, deliveryCost(res), perDelivery, bound, 100*rate/bound, floor,
		pct(res.Latency, 0.5).Round(time.Millisecond), pct(res.Latency, 0.95).Round(time.Millisecond), pct(res.Latency, 0.99).Round(time.Millisecond),
		res.CPU.Seconds(), float64(res.PeakRSS)/(1<<20))
	return b.String()
}

// deliveryCost is how many small-object creates one delivery costs the
// control plane end to end: the raw create rate measured right before the
// run divided by the run's deliveries per second. Unlike the ratio, whose
// bound divides by the controller's writes per delivery, it falls when a
// delivery needs fewer or cheaper writes, and it includes everything else
// the run costs on the same cores (the controller, its watches and the
// bench's own creates).
func deliveryCost(res runResult) float64 {
	rate := float64(res.Deliveries) / res.Elapsed.Seconds()
	if rate == 0 {
		return 0
	}
	return res.Bound / rate
}

func detailLine(res runResult) string {
	s := fmt.Sprintf("- %s: raw creates just before: %.0f/s; API writes %s; reads %s", res.Name, res.Bound, res.Writes, res.Reads)
	if res.Sink != nil {
		s += fmt.Sprintf("; the sink saw %d distinct deliveries in %d requests", res.Sink[0], res.Sink[1])
	}
	return s
}

func machine() string {
	model := ""
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, model, _ = strings.Cut(l, ": ")
				break
			}
		}
	}
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.TrimSpace(strings.TrimPrefix(strings.Split(string(data), "\n")[0], "MemTotal:"))
	}
	return fmt.Sprintf("%d CPUs (%s), %s memory, %s, %s/%s", runtime.NumCPU(), model, mem, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmark %s\n\n", r.started.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Machine: %s  \n", machine())
	if rev, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		fmt.Fprintf(&b, "Commit: %s  \n", strings.TrimSpace(string(rev)))
	}
	fmt.Fprintf(&b, "Controller: `herald %s`\n\n", r.controllerArgs)
	b.WriteString("## The control plane alone (before the controller starts)\n\n")
	b.WriteString("A small custom resource that nothing watches (BenchObject) for the bound; Notifications and ChannelDeliveries shaped like an in-app run's for the write costs behind the floor.\n\n")
	b.WriteString("| operation | per second |\n| --- | --- |\n")
	for _, x := range r.bounds {
		fmt.Fprintf(&b, "| %s | %.0f |\n", x.name, x.rate)
	}
	b.WriteString("\n## End to end\n\n")
	b.WriteString("Delivery cost for a run = raw creates/s of the small resource at 32 goroutines, measured just before the run, ÷ deliveries/s: how many small creates one delivery costs the control plane end to end (lower is better).  \n")
	b.WriteString("Bound for a run = raw creates/s of the small resource at 32 goroutines, measured just before the run, ÷ controller writes per delivery; ratio = deliveries/s ÷ bound.  \n")
	b.WriteString("Floor for a run = deliveries ÷ the time the run's own writes (the bench's creates included) take on this control plane alone, from the write costs above; of floor = deliveries/s ÷ floor.\n\n")
	b.WriteString("| run | deliveries/s | delivery cost | controller writes per delivery | bound | ratio | floor | of floor | latency p50 / p95 / p99 | controller CPU | controller peak RSS |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, res := range r.runs {
		b.WriteString(r.runLines(res) + "\n")
	}
	b.WriteString("\n")
	for _, res := range r.runs {
		b.WriteString(detailLine(res) + "\n")
	}
	if in := r.inbox; in != nil {
		b.WriteString("\n## Inbox\n\n")
		b.WriteString("Latency = notification created → its item's SSE event at the subscriber, through kube-apiserver's aggregator. ")
		b.WriteString("Bound = notification created → the delivery Succeeded as a plain watch on kube-apiserver sees it (the inbox cannot be earlier); ratio = latency ÷ bound.\n\n")
		b.WriteString("| run | all connected in | latency p50 / p99 | bound p50 / p99 | ratio p50 / p99 | server RSS started / connected / peak | per subscriber |\n| --- | --- | --- | --- | --- | --- | --- |\n")
		b.WriteString(inboxLine(*in) + "\n\n")
		fmt.Fprintf(&b, "- The server held the %d deliveries of the earlier runs when it started; each of the %d streams carried exactly its own item.\n\n", in.Deliveries, in.Subscribers)
		b.WriteString(hopsMarkdown(in.Hops))
	}
	return b.String()
}

func (r *report) write(t *testing.T, root string) {
	md := r.markdown()
	fmt.Println(md)
	dir := filepath.Join(root, "bench", "results")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	name := r.started.UTC().Format("2006-01-02T1504")
	if label := os.Getenv("HERALD_BENCH_LABEL"); label != "" {
		name += "-" + label
	}
	path := filepath.Join(dir, name+".md")
	if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("results written to %s", path)
}
