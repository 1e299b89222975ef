//go:build !unix

package mailpit

import "os/exec"

// setProcAttr is a no-op without Unix process groups and parent-death
// signals; Stop/Close still end the child on every normal path.
func setProcAttr(*exec.Cmd, bool) {}
