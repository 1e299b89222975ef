//go:build !linux

package dev

import "syscall"

// shimBinaries is a no-op where there is no parent-death signal: the
// binaries are started directly, and a `herald dev` that is killed leaves
// them running (a later start ends them, see state.reapOrphans).
func shimBinaries(_, realDir string, _ ...string) (string, error) { return realDir, nil }

func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
