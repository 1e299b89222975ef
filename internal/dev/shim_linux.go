package dev

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// The control plane is started by controller-runtime's envtest, which gives
// etcd and kube-apiserver their own process group (so a terminal's Ctrl-C
// does not reach them before `herald dev` stops them in order) but no
// parent-death signal: if `herald dev` were killed, they would live on and
// hold the state directory's ports and etcd data. envtest takes only a
// binary path, so the path it gets is a shim: a symlink named like the real
// binary that points at this executable. This init function recognises the
// shim by its directory, asks the kernel to kill the process when its
// parent dies (PR_SET_PDEATHSIG), records its pid, and replaces itself with
// the real binary; the parent-death signal survives exec.
const (
	shimEnvPrefix = "HERALD_DEV_SHIM_"
	envShimDir    = shimEnvPrefix + "DIR"
	envShimTarget = shimEnvPrefix + "TARGET_DIR"
	envShimParent = shimEnvPrefix + "PARENT"
)

func init() {
	dir := os.Getenv(envShimDir)
	if dir == "" || filepath.Dir(os.Args[0]) != dir {
		return
	}
	os.Exit(runShim(dir))
}

func runShim(dir string) int {
	name := filepath.Base(os.Args[0])
	target := filepath.Join(os.Getenv(envShimTarget), name)
	// The signal is a property of the calling thread and must be set on
	// the one that calls execve.
	runtime.LockOSThread()
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0); errno != 0 {
		fmt.Fprintf(os.Stderr, "herald dev shim: prctl: %v\n", errno)
		return 1
	}
	// The parent may have died before prctl took effect.
	if want, err := strconv.Atoi(os.Getenv(envShimParent)); err == nil && os.Getppid() != want {
		return 1
	}
	if !slices.Contains(os.Args[1:], "--help") {
		_ = os.WriteFile(filepath.Join(filepath.Dir(dir), name+".pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, shimEnvPrefix) {
			env = append(env, kv)
		}
	}
	err := syscall.Exec(target, append([]string{target}, os.Args[1:]...), env)
	fmt.Fprintf(os.Stderr, "herald dev shim: exec %s: %v\n", target, err)
	return 127
}

// shimBinaries makes dir/<name> a shim for realDir/<name> for each name and
// returns the directory to hand to envtest instead of realDir.
func shimBinaries(dir, realDir string, names ...string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	for _, n := range names {
		link := filepath.Join(dir, n)
		_ = os.Remove(link)
		if err := os.Symlink(self, link); err != nil {
			return "", err
		}
	}
	// Children inherit these; they are read only by a process started
	// through a link in dir.
	os.Setenv(envShimDir, dir)
	os.Setenv(envShimTarget, realDir)
	os.Setenv(envShimParent, strconv.Itoa(os.Getpid()))
	return dir, nil
}
