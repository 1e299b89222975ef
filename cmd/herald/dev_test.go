//go:build linux && !nodev

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-dev/herald/cmd/herald/internal/controller"
)

// TestMain lets the tests run this binary as `herald`: with
// HERALD_TEST_RUN_MAIN=1 it is the command, not the tests.
func TestMain(m *testing.M) {
	if os.Getenv("HERALD_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// devProcess is `herald dev` running as a child of the test.
type devProcess struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
	err  error
}

func startDev(t *testing.T, stateDir string) *devProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "dev", "--state-dir", stateDir, "--build-missing=false")
	cmd.Env = append(os.Environ(), "HERALD_TEST_RUN_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	// Its own process group: the test's SIGINT goes to it alone, as a
	// terminal's Ctrl-C goes to the foreground process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &devProcess{cmd: cmd, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		var once sync.Once
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if strings.HasPrefix(sc.Text(), "Ctrl-C stops everything") {
				once.Do(func() { close(ready) })
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	select {
	case <-ready:
	case <-p.done:
		t.Fatalf("herald dev exited before it was ready (%v):\n%s", p.err, p.output())
	case <-time.After(3 * time.Minute):
		t.Fatalf("herald dev not ready within 3 minutes:\n%s", p.output())
	}
	return p
}

func (p *devProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *devProcess) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("herald dev did not exit within %s:\n%s", timeout, p.output())
	}
}

// children reads the pids herald dev recorded for etcd, kube-apiserver and
// Mailpit.
func children(t *testing.T, stateDir string) map[string]int {
	t.Helper()
	pids := map[string]int{}
	for _, name := range []string{"etcd", "kube-apiserver", "mailpit"} {
		b, err := os.ReadFile(filepath.Join(stateDir, "run", name+".pid"))
		if err != nil {
			t.Fatalf("pid of %s: %v", name, err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		pids[name] = pid
	}
	return pids
}

// running reports whether pid is a live process started for stateDir.
func running(pid int, stateDir string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), stateDir) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}

func waitGone(t *testing.T, pids map[string]int, stateDir string, timeout time.Duration) {
	t.Helper()
	var left []string
	if wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		left = nil
		for name, pid := range pids {
			if running(pid, stateDir) {
				left = append(left, fmt.Sprintf("%s (pid %d)", name, pid))
			}
		}
		return len(left) == 0, nil
	}) != nil {
		t.Fatalf("still running after %s: %v", timeout, left)
	}
}

func kubeClient(t *testing.T, stateDir string) client.Client {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(stateDir, "kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: controller.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDevSignals runs `herald dev` as a real process: killed with SIGKILL
// it leaves no child behind (the parent-death signal), started again it
// resumes with the same etcd data, and Ctrl-C (SIGINT) stops it cleanly
// with every child gone.
func TestDevSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		// As `make dev` and `make test` run it: envtest prefers this
		// variable to any directory it is given.
		bins, err := filepath.Abs("../../bin/k8s")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(bins, "kube-apiserver")); err != nil {
			t.Skip("no kube-apiserver: run `make envtest-bins` (make test does)")
		}
		t.Setenv("KUBEBUILDER_ASSETS", bins)
	}
	ctx := context.Background()
	state := filepath.Join(t.TempDir(), "state")

	first := startDev(t, state)
	if !strings.Contains(first.output(), "export KUBECONFIG=") || !strings.Contains(first.output(), "kubectl get inboxitems --as alice") {
		t.Errorf("the banner lacks the next commands:\n%s", first.output())
	}
	kube := kubeClient(t, state)
	if err := kube.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept", Namespace: "demo"}}); err != nil {
		t.Fatal(err)
	}
	pids := children(t, state)
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.wait(t, 30*time.Second)
	waitGone(t, pids, state, 15*time.Second)

	second := startDev(t, state)
	if !strings.Contains(second.output(), "resumed") {
		t.Errorf("the second start does not say it resumed:\n%s", second.output())
	}
	kube = kubeClient(t, state) // new certificates
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "demo", Name: "kept"}, &corev1.ConfigMap{}); err != nil {
		t.Fatalf("the ConfigMap made before the kill: %v", err)
	}
	pids = children(t, state)
	start := time.Now()
	if err := second.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	second.wait(t, 90*time.Second)
	t.Logf("Ctrl-C to exit: %s", time.Since(start).Round(time.Millisecond))
	if second.err != nil {
		t.Fatalf("herald dev exited with %v after SIGINT:\n%s", second.err, second.output())
	}
	if !strings.Contains(second.output(), "herald dev: stopped") {
		t.Errorf("no stop message:\n%s", second.output())
	}
	for name, pid := range pids {
		if running(pid, state) {
			t.Errorf("%s (pid %d) still runs after Ctrl-C", name, pid)
		}
	}
	if files, _ := filepath.Glob(filepath.Join(state, "run", "*.pid")); len(files) != 0 {
		t.Errorf("pid files left after a clean stop: %v", files)
	}
}
