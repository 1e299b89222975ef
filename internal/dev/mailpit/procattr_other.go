//go:build !linux

package mailpit

import "os/exec"

// setProcAttr is a no-op where there is no parent-death signal; Stop/Close
// still end the child on every normal path.
func setProcAttr(*exec.Cmd) {}
