// Package controllerproc runs `herald controller` as a separate process
// for benchmarks and fault tests: its CPU time and memory are its own, and
// it can be killed the way a node kills a pod.
package controllerproc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Process is a running controller.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs `herald controller` (bin/herald, built by `make build`) from
// the repository root with the kubeconfig and extra controller flags.
func Start(root, kubeconfig string, args ...string) (*Process, error) {
	// The tests' sinks listen on loopback, which the egress policy
	// refuses by default; nothing else is allowed.
	all := append([]string{"--metrics-bind-address=0", "--health-probe-bind-address=0", "--zap-log-level=error", "--egress-allow=127.0.0.0/8,::1"}, args...)
	return StartCommand(root, kubeconfig, "controller", all...)
}

// StartCommand runs another herald sub-command (such as apiserver) the same
// way.
func StartCommand(root, kubeconfig, subcommand string, args ...string) (*Process, error) {
	bin := filepath.Join(root, "bin", "herald")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s not found: run 'make build' first", bin)
	}
	return StartBinary(bin, kubeconfig, subcommand, args...)
}

// StartBinary runs a sub-command of the herald binary bin (such as one a
// test built with -tags nodev) the same way.
func StartBinary(bin, kubeconfig, subcommand string, args ...string) (*Process, error) {
	cmd := exec.Command(bin, append([]string{subcommand}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// The process dies with the test process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Args returns the command line, for reports.
func (p *Process) Args() string { return strings.Join(p.cmd.Args[1:], " ") }

// Kill ends the process at once (SIGKILL: no graceful shutdown) and waits
// for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Stop asks the process to end (SIGTERM, as the kubelet does first) and
// waits for it, up to limit; it reports whether the process ended in time.
func (p *Process) Stop(limit time.Duration) bool {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(limit):
		return false
	}
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// CPU returns the process's user plus system CPU time.
func (p *Process) CPU() time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	rest := string(data[strings.LastIndexByte(string(data), ')')+2:])
	fields := strings.Fields(rest)
	var utime, stime int64
	fmt.Sscan(fields[11], &utime)
	fmt.Sscan(fields[12], &stime)
	const userHZ = 100
	return time.Duration(utime+stime) * time.Second / userHZ
}

// ResetPeakRSS starts a new peak-memory measurement (Linux clear_refs 5).
func (p *Process) ResetPeakRSS() {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0)
}

// PeakRSS returns the resident set high-water mark in bytes.
func (p *Process) PeakRSS() int64 { return p.status("VmHWM:") }

// RSS returns the resident set size in bytes.
func (p *Process) RSS() int64 { return p.status("VmRSS:") }

// status reads a size in kB from /proc/PID/status.
func (p *Process) status(field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb * 1024
		}
	}
	return 0
}
