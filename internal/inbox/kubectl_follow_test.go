package inbox_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/cli-runtime/pkg/genericiooptions"

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
		// Timed from before the delivery is even created: stricter than
		// from its success.
		delivered := time.Now()
		createItem(ns, "deploy-done", "follow-alice", nil)
		var line timedLine
		Eventually(func() bool {
			var ok bool
			line, ok = out.find("deploy-done")
			return ok
		}).Should(BeTrue())
		Expect(line.text).To(HavePrefix("NEW"))
		Expect(line.at.Sub(delivered)).To(BeNumerically("<", time.Second), "printed %s after the delivery", line.at.Sub(delivered))
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
})
