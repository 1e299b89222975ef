package dev

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Ports are the loopback ports of one state directory. They are chosen once,
// when the directory is created, and kept in ports.json so that a second
// start serves everything on the same addresses: the kubeconfig, the
// Mailpit and inbox page URLs and the providers' URLs stay valid.
type Ports struct {
	Etcd        int `json:"etcd"`
	APIServer   int `json:"apiServer"`
	Inbox       int `json:"inbox"`
	Web         int `json:"web"`
	MailpitSMTP int `json:"mailpitSMTP"`
	MailpitHTTP int `json:"mailpitHTTP"`
	WhatsApp    int `json:"whatsapp"`
	Webhook     int `json:"webhook"`
	Slack       int `json:"slack"`
	Teams       int `json:"teams"`
	Telegram    int `json:"telegram"`
}

// fields lists the ports with their names, for choosing and checking them.
func (p *Ports) fields() []struct {
	name string
	port *int
} {
	return []struct {
		name string
		port *int
	}{
		{"etcd", &p.Etcd}, {"kube-apiserver", &p.APIServer}, {"inbox API server", &p.Inbox},
		{"inbox web page", &p.Web}, {"Mailpit SMTP", &p.MailpitSMTP}, {"Mailpit web UI", &p.MailpitHTTP},
		{"WhatsApp sink", &p.WhatsApp}, {"webhook sink", &p.Webhook},
		{"Slack sink", &p.Slack}, {"Teams sink", &p.Teams}, {"Telegram sink", &p.Telegram},
	}
}

// state is the layout of the state directory.
type state struct {
	dir  string
	lock *os.File
}

func (s *state) path(elem ...string) string {
	return filepath.Join(append([]string{s.dir}, elem...)...)
}

// openState creates the directory (or resets it) and takes its lock, so
// that two `herald dev` never share one etcd data directory.
func openState(dir string, reset bool) (*state, bool, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, false, err
	}
	s := &state{dir: abs}
	if reset {
		if err := ResetState(abs); err != nil {
			return nil, false, err
		}
	}
	_, statErr := os.Stat(s.path("etcd"))
	resumed := statErr == nil
	for _, d := range []string{"", "logs", "pki", "run"} {
		if err := os.MkdirAll(s.path(d), 0o700); err != nil {
			return nil, false, err
		}
	}
	if err := s.takeLock(); err != nil {
		return nil, false, err
	}
	return s, resumed, nil
}

func (s *state) takeLock() error {
	f, err := os.OpenFile(s.path("lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid, _ := os.ReadFile(s.path("lock"))
		f.Close()
		return fmt.Errorf("%s is in use by another `herald dev` (pid %s); stop it first or pass another --state-dir", s.dir, strings.TrimSpace(string(pid)))
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	s.lock = f
	return nil
}

func (s *state) unlock() {
	if s.lock != nil {
		_ = syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
		_ = s.lock.Close()
		s.lock = nil
	}
}

// ports loads ports.json, picks free ports for any that are unset, and
// replaces a persisted port that something else holds now (noting it in
// moved). override sets ports the caller asked for explicitly.
func (s *state) ports(override Ports) (Ports, []string, error) {
	var p Ports
	if b, err := os.ReadFile(s.path("ports.json")); err == nil {
		if err := json.Unmarshal(b, &p); err != nil {
			return p, nil, fmt.Errorf("reading %s: %w", s.path("ports.json"), err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return p, nil, err
	}
	ov := override.fields()
	var moved []string
	// Hold every checked port until all are known, so that the kernel
	// cannot hand one out twice.
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for i, f := range p.fields() {
		if want := *ov[i].port; want != 0 {
			*f.port = want
		}
		if *f.port != 0 {
			l, err := net.Listen("tcp", net.JoinHostPort(loopback, strconv.Itoa(*f.port)))
			if err == nil {
				held = append(held, l)
				continue
			}
			if *ov[i].port != 0 {
				return p, nil, fmt.Errorf("the %s port %d was asked for but is in use: %w", f.name, *f.port, err)
			}
			moved = append(moved, fmt.Sprintf("%s port %d is in use, moved", f.name, *f.port))
		}
		l, err := net.Listen("tcp", net.JoinHostPort(loopback, "0"))
		if err != nil {
			return p, nil, fmt.Errorf("finding a free port: %w", err)
		}
		held = append(held, l)
		*f.port = l.Addr().(*net.TCPAddr).Port
		if len(moved) > 0 && strings.HasSuffix(moved[len(moved)-1], "moved") {
			moved[len(moved)-1] += fmt.Sprintf(" to %d", *f.port)
		}
	}
	b, _ := json.MarshalIndent(p, "", "  ")
	if err := os.WriteFile(s.path("ports.json"), append(b, '\n'), 0o600); err != nil {
		return p, nil, err
	}
	return p, moved, nil
}

// recordPID remembers a child process, so that a later start can end it
// if this process died without stopping it.
func (s *state) recordPID(name string, pid int) {
	_ = os.WriteFile(s.path("run", name+".pid"), []byte(strconv.Itoa(pid)+"\n"), 0o600)
}

func (s *state) forgetPID(name string) { _ = os.Remove(s.path("run", name+".pid")) }

// reapOrphans ends child processes that a previous run of this state
// directory left behind (it was killed before it could stop them and the
// parent-death signal did not reach them). A process is ended only when its
// pid was recorded here and its command line names this state directory,
// so an unrelated process that reused the pid is left alone.
func (s *state) reapOrphans() []string {
	files, _ := filepath.Glob(s.path("run", "*.pid"))
	var reaped []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 {
			_ = os.Remove(f)
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.Contains(string(cmdline), s.dir) {
			if p, err := os.FindProcess(pid); err == nil && p.Signal(syscall.SIGKILL) == nil {
				reaped = append(reaped, fmt.Sprintf("%s (pid %d)", strings.TrimSuffix(filepath.Base(f), ".pid"), pid))
				waitGone(pid, 5*time.Second)
			}
		}
		_ = os.Remove(f)
	}
	return reaped
}

// waitGone waits until pid has exited (its /proc entry is gone or it is a
// zombie that its new parent has not reaped yet), or timeout passes.
func waitGone(pid int, timeout time.Duration) {
	_ = wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true, nil
		}
		// The state is the field after the parenthesised command name.
		i := strings.LastIndexByte(string(stat), ')')
		return i > 0 && i+2 < len(stat) && stat[i+2] == 'Z', nil
	})
}

// ResetState deletes the state directory dir, unless a running
// `herald dev` holds it.
func ResetState(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	s := &state{dir: dir}
	if err := s.takeLock(); err != nil {
		return err
	}
	s.unlock()
	return os.RemoveAll(dir)
}
