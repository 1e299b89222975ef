//go:build unix && !linux

package mailpit

import (
	"os/exec"
	"syscall"
)

// setProcAttr only sets the process group: there is no parent-death signal
// here, so Stop/Close end the child on every normal path and herald dev ends
// one left behind at its next start.
func setProcAttr(cmd *exec.Cmd, ownGroup bool) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: ownGroup}
}
