package dev

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// child is a process started by `herald dev` itself (envtest starts the
// control plane).
type child struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
}

func (e *Env) startChild(name, logFile string, argv ...string) (*child, error) {
	log, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child has its own copy
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = childAttr()
	// Mailpit reads its whole configuration from MP_* variables as well.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MP_") && !strings.HasPrefix(kv, "HERALD_DEV_SHIM_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.exited) }()
	e.state.recordPID(name, cmd.Process.Pid)
	e.onStop(func() error {
		c.stop(10 * time.Second)
		e.state.forgetPID(name)
		return nil
	})
	return c, nil
}

// stop sends SIGTERM, then SIGKILL after grace, and waits for the exit.
func (c *child) stop(grace time.Duration) {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// startMailpit runs Mailpit as the email sink: SMTP without TLS or
// authentication on the fixed SMTP port, the web UI and API on the fixed
// HTTP port, messages kept in the state directory across restarts.
func (e *Env) startMailpit(ctx context.Context) error {
	if err := os.MkdirAll(e.state.path("mailpit"), 0o700); err != nil {
		return err
	}
	c, err := e.startChild("mailpit", e.state.path("logs", "mailpit.log"),
		e.opts.Mailpit,
		"--smtp", net.JoinHostPort(loopback, strconv.Itoa(e.Ports.MailpitSMTP)),
		"--listen", net.JoinHostPort(loopback, strconv.Itoa(e.Ports.MailpitHTTP)),
		"--database", e.state.path("mailpit", "mailpit.db"),
		"--smtp-auth-accept-any", "--smtp-auth-allow-insecure",
		"--disable-version-check",
		"--smtp-disable-rdns",
	)
	if err != nil {
		return err
	}
	// Ready when both the API and the SMTP listener answer.
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: time.Second}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return poll(ctx, func() error {
		select {
		case <-c.exited:
			return stopPolling{fmt.Errorf("mailpit exited during start-up; see %s", e.state.path("logs", "mailpit.log"))}
		default:
		}
		resp, err := hc.Get(e.MailpitURL() + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("mailpit readyz: %s", resp.Status)
		}
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(loopback, strconv.Itoa(e.Ports.MailpitSMTP)), time.Second)
		if err != nil {
			return err
		}
		return conn.Close()
	})
}

// stopPolling ends poll at once with its error.
type stopPolling struct{ error }

// poll calls f until it returns nil, a stopPolling error, or ctx ends,
// backing off from 10ms to 200ms between calls.
func poll(ctx context.Context, f func() error) error {
	delay := 10 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		var stop stopPolling
		if errors.As(err, &stop) {
			return stop.error
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}
