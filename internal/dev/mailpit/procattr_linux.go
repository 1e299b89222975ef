package mailpit

import (
	"os/exec"
	"syscall"
)

// setProcAttr asks the kernel to kill Mailpit when its parent (the test
// binary, herald dev) dies, so a panicking, killed or timed-out run does not
// leave servers holding ports. (Pdeathsig follows the OS thread that started
// the child; the Go runtime does not retire threads that are not locked, so
// in practice it follows the process.) With ownGroup Mailpit gets its own
// process group.
func setProcAttr(cmd *exec.Cmd, ownGroup bool) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: ownGroup, Pdeathsig: syscall.SIGKILL}
}
