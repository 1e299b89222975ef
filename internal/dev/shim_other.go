//go:build !linux

package dev

// shimEnvPrefix starts the names of the shim's environment variables
// (shim_linux.go); there are none here, but children are spared them all
// the same.
const shimEnvPrefix = "HERALD_DEV_SHIM_"

// shimBinaries is a no-op where there is no parent-death signal: the
// binaries are started directly, and a `herald dev` that is killed leaves
// them running (a later start ends them, see state.reapOrphans).
func shimBinaries(_, realDir string, _ ...string) (string, error) { return realDir, nil }
