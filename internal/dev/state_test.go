//go:build linux

package dev

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestPortsArePersistedAndMovedWhenTaken(t *testing.T) {
	dir := t.TempDir()
	s, resumed, err := openState(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.unlock()
	if resumed {
		t.Fatal("a new state directory reports resumed")
	}
	first, moved, err := s.ports(Ports{})
	if err != nil {
		t.Fatal(err)
	}
	if len(moved) != 0 {
		t.Fatalf("moved on first start: %v", moved)
	}
	seen := map[int]bool{}
	for _, f := range first.fields() {
		if *f.port == 0 || seen[*f.port] {
			t.Fatalf("port of %s is %d (all: %+v)", f.name, *f.port, first)
		}
		seen[*f.port] = true
	}

	again, _, err := s.ports(Ports{})
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Fatalf("second call chose %+v, want the persisted %+v", again, first)
	}

	// Something else takes the web port: it moves, the others stay.
	l, err := net.Listen("tcp", net.JoinHostPort(loopback, strconv.Itoa(first.Web)))
	if err != nil {
		t.Skipf("cannot hold port %d for the test: %v", first.Web, err)
	}
	defer l.Close()
	third, moved, err := s.ports(Ports{})
	if err != nil {
		t.Fatal(err)
	}
	if third.Web == first.Web || third.APIServer != first.APIServer || third.Etcd != first.Etcd {
		t.Fatalf("after taking the web port: %+v (was %+v)", third, first)
	}
	if len(moved) != 1 || !strings.Contains(moved[0], "inbox web page port") {
		t.Fatalf("moved = %v", moved)
	}

	// An explicitly requested port that is taken is an error, not a move.
	if _, _, err := s.ports(Ports{Web: first.Web}); err == nil {
		t.Fatal("asking for a taken port succeeded")
	}
}

func TestStateDirectoryIsLocked(t *testing.T) {
	dir := t.TempDir()
	s, _, err := openState(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := openState(dir, false); err == nil || !strings.Contains(err.Error(), "in use by another `herald dev` (pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second open: %v", err)
	}
	if err := ResetState(dir); err == nil {
		t.Fatal("reset of a locked state directory succeeded")
	}
	s.unlock()
	if err := os.MkdirAll(filepath.Join(dir, "etcd"), 0o700); err != nil {
		t.Fatal(err)
	}
	s2, resumed, err := openState(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if !resumed {
		t.Fatal("a directory with etcd data is not reported as resumed")
	}
	s2.unlock()
	if err := ResetState(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("state directory still there after reset: %v", err)
	}
}

func TestReapOrphansEndsOnlyOwnProcesses(t *testing.T) {
	dir := t.TempDir()
	s, _, err := openState(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.unlock()
	// One process whose command line names the state directory (as etcd's
	// --data-dir does), one that does not.
	ours := exec.Command("sh", "-c", "sleep 60; :", s.path("etcd"))
	other := exec.Command("sleep", "60")
	for _, c := range []*exec.Cmd{ours, other} {
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer c.Process.Kill()
	}
	oursDone := make(chan struct{})
	go func() { _ = ours.Wait(); close(oursDone) }()
	s.recordPID("etcd", ours.Process.Pid)
	s.recordPID("mailpit", other.Process.Pid)

	reaped := s.reapOrphans()
	if len(reaped) != 1 || !strings.HasPrefix(reaped[0], "etcd (pid ") {
		t.Fatalf("reaped %v", reaped)
	}
	select {
	case <-oursDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the orphan with the state directory in its command line is still running")
	}
	if err := other.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("an unrelated process was signalled: %v", err)
	}
	if files, _ := filepath.Glob(s.path("run", "*.pid")); len(files) != 0 {
		t.Fatalf("pid files left: %v", files)
	}
}
