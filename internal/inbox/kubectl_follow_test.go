package inbox_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	heraldenvtest "github.com/herald-dev/herald/internal/dev/testutil/envtest"
	"github.com/herald-dev/herald/internal/kubectlherald"
)

// timedWriter keeps what is written and when each line arrived.
type timedWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines []timedLine
}

type timedLine struct {
	text string
	at   time.Time
}

func (w *timedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			// An incomplete line waits for the rest.
			w.buf.Reset()
			w.buf.WriteString(line)
			break
		}
		w.lines = append(w.lines, timedLine{text: strings.TrimSuffix(line, "\n"), at: now})
	}
	return len(p), nil
}

// find returns the first line containing s.
func (w *timedWriter) find(s string) (timedLine, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.lines {
		if strings.Contains(l.text, s) {
			return l, true
		}
	}
	return timedLine{}, false
}

var _ = Describe("kubectl herald inbox --follow", func() {
	It("prints a new item within a second of its delivery, through kube-apiserver's aggregation layer", func() {
		ns := newNamespace()
		kubeconfig, _, err := heraldenvtest.AdminKubeconfig(testEnv, "kubectl-herald-follow", GinkgoT().TempDir())
		Expect(err).NotTo(HaveOccurred())
		out := &timedWriter{}
		errOut := &timedWriter{}
		cmd := kubectlherald.NewCommand(genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: out, ErrOut: errOut})
		cmd.SetArgs([]string{"--kubeconfig", kubeconfig, "--as", "follow-alice", "--as-group", usersGroup, "-n", ns, "inbox", "--follow"})
		ctx, cancel := context.WithCancel(suiteCtx)
		done := make(chan error, 1)
		go func() { done <- cmd.ExecuteContext(ctx) }()
		DeferCleanup(func() {
			cancel()
			Eventually(done).Should(Receive())
		})

		By("the stream's first event, the empty inbox")
		Eventually(func() bool { _, ok := out.find("No items."); return ok }).Should(BeTrue(), "stderr: %s", errOut.lines)

		By("an in-app delivery to the user")
		// The delivery is created Pending, then delivered (Succeeded), as
		// the in-app reconciler does; timed from just before the write
		// that delivers it (the test client's own rate limit may hold
		// the create).
		d := newDelivery(ns, "deploy-done", "follow-alice")
		Expect(k8sClient.Create(suiteCtx, d)).To(Succeed())
		d.Status.Phase = notifyv1.DeliverySucceeded
		d.Status.Attempts = 1
		now := metav1.NowMicro()
		d.Status.CompletionTime = &now
		delivered := time.Now()
		Expect(k8sClient.Status().Update(suiteCtx, d)).To(Succeed())
		written := time.Now()
		var line timedLine
		Eventually(func() bool {
			var ok bool
			line, ok = out.find("deploy-done")
			return ok
		}).Should(BeTrue())
		Expect(line.text).To(HavePrefix("NEW"))
		Expect(line.at.Sub(delivered)).To(BeNumerically("<", time.Second), "printed %s after the delivery began, %s after its writes returned; output: %v",
			line.at.Sub(delivered), line.at.Sub(written), out.lines)
		AddReportEntry("kubectl herald inbox --follow latency", line.at.Sub(delivered).String())

		By("another user's delivery does not appear")
		createItem(ns, "not-yours", "follow-bob", nil)
		Consistently(func() bool { _, ok := out.find("not-yours"); return ok }, 500*time.Millisecond).Should(BeFalse())
	})

	It("ends with a clear error when the caller may not read an inbox", func() {
		ns := newNamespace()
		kubeconfig, _, err := heraldenvtest.AdminKubeconfig(testEnv, "kubectl-herald-refused", GinkgoT().TempDir())
		Expect(err).NotTo(HaveOccurred())
		var out bytes.Buffer
		cmd := kubectlherald.NewCommand(genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: &out, ErrOut: &out})
		// Not in the group the inbox role is bound to.
		cmd.SetArgs([]string{"--kubeconfig", kubeconfig, "--as", "outsider", "--as-group", "nobody", "-n", ns, "inbox", "--follow"})
		err = cmd.ExecuteContext(suiteCtx)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("403"))
	})

	It("lists, shows, marks read, acknowledges and answers items as the caller", func() {
		ns := newNamespace()
		kubeconfig, _, err := heraldenvtest.AdminKubeconfig(testEnv, "kubectl-herald-items", GinkgoT().TempDir())
		Expect(err).NotTo(HaveOccurred())
		run := func(args ...string) (string, error) {
			var out bytes.Buffer
			cmd := kubectlherald.NewCommand(genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: &out, ErrOut: &out})
			cmd.SetArgs(append([]string{"--kubeconfig", kubeconfig, "--as", "items-kim", "--as-group", usersGroup, "-n", ns}, args...))
			err := cmd.ExecuteContext(suiteCtx)
			return out.String(), err
		}
		createItem(ns, "ship-it", "items-kim", func(d *notifyv1.ChannelDelivery) {
			d.Spec.Content.Type = notifyv1.TypeApproval
			d.Spec.Content.Actions = []notifyv1.Action{{ID: "approve", Label: "Approve"}, {ID: "reject", Label: "Reject"}}
		})
		Eventually(func() (string, error) { return run("inbox") }).Should(ContainSubstring("ship-it"))
		out, err := run("inbox")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("unread,awaiting answer"))

		out, err = run("__complete", "inbox", "read", "")
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(out).To(ContainSubstring("ship-it\n"), "completion offers the caller's items")

		out, err = run("inbox", "read", "ship-it")
		Expect(err).NotTo(HaveOccurred(), out)
		out, err = run("inbox", "ack", "ship-it")
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(out).To(ContainSubstring("ship-it acknowledged"))
		Eventually(func() (string, error) { return run("inbox") }).Should(ContainSubstring("read,acknowledged,awaiting answer"))
		out, err = run("inbox", "answer", "ship-it", "maybe")
		Expect(err).To(HaveOccurred(), "an action the item does not offer")
		out, err = run("inbox", "answer", "ship-it", "approve", "--comment", "go")
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(out).To(ContainSubstring(`answered "approve"`))

		out, err = run("inbox", "get", "ship-it", "-o", "json")
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(out).To(ContainSubstring(`"kind": "InboxItem"`))
		Expect(out).To(ContainSubstring(`"read": true`))
		Expect(out).To(ContainSubstring(`"acknowledged": true`))
		Expect(out).To(ContainSubstring(`"action": "approve"`))

		_, err = run("inbox", "get", "not-mine")
		Expect(err).To(MatchError(ContainSubstring("not found")))
	})
})
