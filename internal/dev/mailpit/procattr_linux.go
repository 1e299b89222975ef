package mailpit

import (
	"os/exec"
	"syscall"
)

// setProcAttr asks the kernel to kill Mailpit when the test binary dies, so a
// panicking or timed-out test run does not leave servers holding ports.
// (Pdeathsig follows the OS thread that started the child; the Go test
// runner does not retire threads, so in practice it follows the process.)
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
